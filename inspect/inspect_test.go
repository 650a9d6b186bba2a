package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/curate"
	"github.com/crucible-ml/crucible/record"
)

const xss = `<script>alert(1)</script>`

// fixtureRun writes a run folder as `crucible run` leaves it: solve
// (generate) -> grade -> keep (curate), with a manifest, a code-execution
// solution, math, and one generation holding a script tag.
func fixtureRun(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	for _, s := range []string{"solve", "grade", "keep"} {
		os.MkdirAll(filepath.Join(dir, s), 0o755)
	}
	var gen, graded strings.Builder
	subjects := []string{"Algebra", "Geometry"}
	for p := range 6 {
		for s := range 4 {
			correct := (p+s)%3 != 1
			ans := fmt.Sprint(p + 1)
			if !correct {
				ans = fmt.Sprint(p + 100)
			}
			text := fmt.Sprintf("We need $x^2 = %d$ so\n\n$$\\frac{a_1}{b_2}$$\n\nThe answer is \\boxed{%s}.", p, ans)
			if p == 0 && s == 0 {
				text = "Let's compute.\n<llm-code>\nx = 6 * 7\nprint(x)\n</llm-code>\n<llm-code-output>\n42\n</llm-code-output>\nSo the answer is \\boxed{1}."
			}
			if p == 1 && s == 1 {
				text = "Evil " + xss + " and <img src=x onerror=alert(2)> \\boxed{2}"
			}
			row := map[string]any{"id": fmt.Sprintf("p%d", p), "problem": fmt.Sprintf("What is $%d+1$?", p), "expected_answer": fmt.Sprint(p + 1),
				"subject": subjects[p%2], "level": fmt.Sprintf("Level %d", p%3+1), "sample": s, "generation": text,
				"finish_reason": "stop", "num_generated_tokens": 20 + 10*s + p}
			b, _ := json.Marshal(row)
			gen.Write(b)
			gen.WriteByte('\n')
			row["predicted_answer"], row["is_correct"] = ans, correct
			b, _ = json.Marshal(row)
			graded.Write(b)
			graded.WriteByte('\n')
		}
	}
	os.WriteFile(filepath.Join(dir, "solve", "output.jsonl"), []byte(gen.String()), 0o644)
	gradeOut := filepath.Join(dir, "grade", "output.jsonl")
	os.WriteFile(gradeOut, []byte(graded.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "grade", "stage.log"), []byte("graded 24 rows\n"), 0o644)
	steps := filepath.Join(dir, "steps.yaml")
	os.WriteFile(steps, []byte("steps:\n  - filter: correct\n  - where: 'sample != 1'\n"), 0o644)
	p, err := curate.LoadPipeline(steps)
	if err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "keep", "output.jsonl")
	if _, err := curate.RunFile(context.Background(), p, curate.FileOptions{Input: gradeOut, Output: keep}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	m := RunManifest{Name: "demo", Version: "test", Config: "name: demo\n", Updated: now, Stages: map[string]*StageManifest{
		"solve": {Status: "done", Command: []string{"crucible", "generate"}, Output: filepath.Join(dir, "solve", "output.jsonl"), Rows: 24, Started: now.Add(-3 * time.Second), Seconds: 1.5},
		"grade": {Status: "done", Command: []string{"crucible", "grade"}, Output: gradeOut, Rows: 24, Started: now.Add(-2 * time.Second), Seconds: 0.5},
		"keep":  {Status: "done", Command: []string{"crucible", "curate"}, Output: keep, Rows: 12, Started: now.Add(-time.Second), Seconds: 0.2},
	}}
	b, _ := json.MarshalIndent(m, "", "  ")
	os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)
	return dir
}

func newTestServer(t *testing.T, o Options) *httptest.Server {
	t.Helper()
	if o.CacheDir == "" {
		o.CacheDir = t.TempDir()
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, ts *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

func TestHandlers(t *testing.T) {
	dir := fixtureRun(t)
	ts := newTestServer(t, Options{Roots: []string{dir}})
	code, body := get(t, ts, "/")
	if code != 200 {
		t.Fatalf("/: %d", code)
	}
	mustContain(t, "overview", body, "demo", `data-stage="solve"`, `data-stage="grade"`, `data-stage="keep"`, "generate", "curate", ">done<", "/eval?f=0%3Agrade%2Foutput.jsonl", "/curate?f=0%3Akeep%2Foutput.jsonl", "stage.log")

	code, body = get(t, ts, "/rows?f=0:grade/output.jsonl")
	if code != 200 {
		t.Fatalf("rows: %d %s", code, body)
	}
	mustContain(t, "rows", body, "rows 1–24 of 24 matching", "predicted_answer", "What is $0")

	_, body = get(t, ts, "/rows?f=0:grade/output.jsonl&where="+url.QueryEscape("is_correct == false && subject == 'Algebra'"))
	mustContain(t, "filtered rows", body, "of 4 matching")
	_, body = get(t, ts, "/rows?f=0:grade/output.jsonl&q=llm&limit=5")
	mustContain(t, "search", body, "rows 1–1 of 1 matching")
	_, body = get(t, ts, "/rows?f=0:grade/output.jsonl&where="+url.QueryEscape("is_correct ==="))
	mustContain(t, "bad expression", body, `id="query-error"`)

	code, body = get(t, ts, "/row?f=0:grade/output.jsonl&n=0")
	if code != 200 {
		t.Fatalf("row: %d", code)
	}
	mustContain(t, "solution", body, `<code class="language-python">x = 6 * 7`, `<code class="language-output">42`, `id="predicted">1<`, "verdict-ok", "num_generated_tokens", "finish_reason")

	_, body = get(t, ts, "/row?f=0:grade/output.jsonl&n=4")
	mustContain(t, "math", body, `<span class="math inline">x^2 = 1</span>`, `<span class="math display">\frac{a_1}{b_2}</span>`)

	_, body = get(t, ts, "/group?f=0:grade/output.jsonl&id=p2")
	if n := strings.Count(body, "sample "); n < 4 {
		t.Errorf("group shows %d samples, want 4", n)
	}

	_, body = get(t, ts, "/eval?f=0:grade/output.jsonl")
	mustContain(t, "eval", body, "pass@4", "majority@2", "<svg", "accuracy by subject", "accuracy by level", "correct vs wrong", "no_answer", "/rows?f=0%3Agrade%2Foutput.jsonl&amp;where=subject")
	_, body = get(t, ts, "/eval?f=0:grade/output.jsonl&f=0:solve/output.jsonl")
	mustContain(t, "eval compare", body, "grade pass@k", "solve pass@k")

	_, body = get(t, ts, "/curate?f=0:keep/output.jsonl")
	mustContain(t, "curate", body, "curation funnel", "removed by correct", "removed by where", "removed_by&amp;value=correct")
	_, body = get(t, ts, "/rows?f=0:keep/output.removed.jsonl&field=removed_by&value=where")
	mustContain(t, "removed rows", body, "of 4 matching")
	_, body = get(t, ts, "/row?f=0:keep/output.removed.jsonl&n=0")
	mustContain(t, "removed row", body, `id="removal"`, "removed_reason")

	code, body = get(t, ts, "/log?f=0:grade/stage.log")
	if code != 200 || !strings.Contains(body, "graded 24 rows") {
		t.Errorf("log: %d", code)
	}
	code, body = get(t, ts, "/api/status?f=0:")
	var st struct {
		Live   bool
		Stages []struct {
			Name, Status string
			Lines        int
		}
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 || len(st.Stages) != 3 || st.Live || st.Stages[1].Lines != 24 {
		t.Errorf("status: %d %v %+v", code, err, st)
	}
	code, _ = get(t, ts, "/assets/katex/katex.min.js")
	if code != 200 {
		t.Errorf("katex: %d", code)
	}
	code, _ = get(t, ts, "/assets/katex/fonts/KaTeX_Main-Regular.woff2")
	if code != 200 {
		t.Errorf("katex font: %d", code)
	}
}

func TestPairsView(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 15 {
		fmt.Fprintf(&b, `{"id":"q%d","prompt":"Say *hi* %d","chosen":"hi $x$","rejected":"%s","chosen_reward":%d.5,"rejected_reward":1}`+"\n", i, i, "<b>no</b>", i)
	}
	p := filepath.Join(dir, "pairs.jsonl")
	os.WriteFile(p, []byte(b.String()), 0o644)
	ts := newTestServer(t, Options{Roots: []string{p}})
	_, body := get(t, ts, "/run?f=0:")
	mustContain(t, "overview", body, "/pairs?f=0%3A")
	_, body = get(t, ts, "/pairs?f=0:pairs.jsonl")
	mustContain(t, "pairs", body, "15 pairs", "reward margin", "margin 0.5", "&lt;b&gt;no&lt;/b&gt;", "<em>hi</em>")
}

func TestPathsOutsideRootsAreRefused(t *testing.T) {
	dir := fixtureRun(t)
	secret := filepath.Join(filepath.Dir(dir), "secret.jsonl")
	os.WriteFile(secret, []byte(`{"id":"s","problem":"secret"}`+"\n"), 0o644)
	os.Symlink(secret, filepath.Join(dir, "grade", "link.jsonl"))
	ts := newTestServer(t, Options{Roots: []string{dir, filepath.Join(dir, "grade", "output.jsonl")}})
	for _, f := range []string{"0:../secret.jsonl", "0:grade/../../secret.jsonl", "0:/etc/passwd", "0:" + secret,
		"9:", "x:grade/output.jsonl", "0:grade/link.jsonl", `0:..\secret.jsonl`, "1:../keep/output.jsonl", "1:other.jsonl"} {
		for _, path := range []string{"/rows", "/row", "/eval", "/log", "/curate"} {
			code, body := get(t, ts, path+"?f="+url.QueryEscape(f)+"&n=0")
			if code != http.StatusForbidden {
				t.Errorf("%s f=%s: %d, want 403", path, f, code)
			}
			if strings.Contains(body, `"problem":"secret"`) || strings.Contains(body, ">secret<") {
				t.Errorf("%s f=%s leaked the file", path, f)
			}
		}
	}
	// The file root serves itself and the files named after it.
	if code, _ := get(t, ts, "/rows?f=1:output.jsonl"); code != 200 {
		t.Errorf("file root: %d", code)
	}
	if code, _ := get(t, ts, "/rows?f=0:grade/output.jsonl"); code != 200 {
		t.Errorf("inside: %d", code)
	}
}

func TestRowFieldsAreEscaped(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "evil.jsonl")
	big := strings.Repeat("long text ", 5000)
	rows := []map[string]any{{"id": xss, "problem": xss, "generation": "x " + xss + " y\n\n" + xss + "\n\n![i](http://example.invalid/x.png)",
		"reasoning": xss, "predicted_answer": xss, "expected_answer": xss, "is_correct": false, "note": xss, "removed_reason": xss,
		"big": big, xss: 1}}
	var b strings.Builder
	for _, r := range rows {
		j, _ := json.Marshal(r)
		b.Write(j)
		b.WriteByte('\n')
	}
	os.WriteFile(p, []byte(b.String()), 0o644)
	ts := newTestServer(t, Options{Roots: []string{p}})
	for _, path := range []string{"/run?f=0:", "/rows?f=0:evil.jsonl", "/row?f=0:evil.jsonl&n=0", "/row?f=0:evil.jsonl&n=0&full=1",
		"/group?f=0:evil.jsonl&id=" + url.QueryEscape(xss), "/rows?f=0:evil.jsonl&q=" + url.QueryEscape(xss), "/eval?f=0:evil.jsonl"} {
		code, body := get(t, ts, path)
		if code != 200 {
			t.Errorf("%s: %d", path, code)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "src=\"http") {
			t.Errorf("%s: unescaped row HTML in the page", path)
		}
	}
	_, body := get(t, ts, "/row?f=0:evil.jsonl&n=0")
	mustContain(t, "solution", body, "&lt;script&gt;alert(1)&lt;/script&gt;", "[image: http://example.invalid/x.png]", "show all")
	if strings.Count(body, "long text") > maxField/9 {
		t.Errorf("big field not truncated")
	}
	_, body = get(t, ts, "/row?f=0:evil.jsonl&n=0&full=1")
	if strings.Count(body, "long text") < 5000 {
		t.Errorf("show all does not show all")
	}
	resp, _ := ts.Client().Get(ts.URL + "/rows?f=0:evil.jsonl")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	resp.Body.Close()
}

func TestReportIsSelfContained(t *testing.T) {
	dir := fixtureRun(t)
	var b strings.Builder
	if err := WriteReport(context.Background(), &b, dir, ReportOptions{CacheDir: t.TempDir(), Version: "test"}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	mustContain(t, "report", page, "<svg", "pass@k and majority@k vs k", "curation funnel", "accuracy by subject", "demo")
	// Every src, href, url() and @import in tags and styles: none may point
	// anywhere.
	tag := regexp.MustCompile(`<[a-zA-Z][^>]*>|<style>[^<]*</style>`)
	attr := regexp.MustCompile(`(?i)\b(src|href|action|srcset|xlink:href)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)|url\(([^)]*)\)|@import`)
	var ms [][]string
	for _, tg := range tag.FindAllString(page, -1) {
		ms = append(ms, attr.FindAllStringSubmatch(tg, -1)...)
	}
	if len(tag.FindAllString(page, -1)) < 50 {
		t.Fatalf("found too few tags")
	}
	for _, m := range ms {
		v := strings.ToLower(m[2] + m[3])
		if strings.Contains(v, "http") || strings.Contains(v, "//") || m[0] == "@import" || (m[1] != "" && !strings.HasPrefix(strings.Trim(v, `"'`), "#")) {
			t.Errorf("external reference in the report: %s", m[0])
		}
	}
	for _, tag := range []string{"<script", "<link", "<iframe", "<img"} {
		if strings.Contains(strings.ToLower(page), tag) {
			t.Errorf("report has %s", tag)
		}
	}
	if strings.Contains(page, xss) {
		t.Errorf("report has unescaped row HTML")
	}
}

func TestAPIKey(t *testing.T) {
	dir := fixtureRun(t)
	ts := newTestServer(t, Options{Roots: []string{dir}, APIKey: "s3cret"})
	if code, _ := get(t, ts, "/run?f=0:"); code != http.StatusUnauthorized {
		t.Errorf("no key: %d", code)
	}
	if code, _ := get(t, ts, "/assets/app.js"); code != http.StatusUnauthorized {
		t.Errorf("assets without key: %d", code)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/run?f=0:", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := ts.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bearer: %v %v", err, resp.StatusCode)
	}
	resp.Body.Close()
	// ?key= once sets a cookie; the redirect drops the key from the address.
	c := &http.Client{Jar: &cookieJar{}}
	resp, err = c.Get(ts.URL + "/run?f=0:&key=s3cret")
	if err != nil || resp.StatusCode != 200 || strings.Contains(resp.Request.URL.RawQuery, "key") {
		t.Fatalf("key link: %v %v %v", err, resp.StatusCode, resp.Request.URL)
	}
	resp.Body.Close()
	if code, _ := get(t, ts, "/run?f=0:&key=wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d", code)
	}
}

type cookieJar struct{ cs []*http.Cookie }

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) { j.cs = append(j.cs, cs...) }
func (j *cookieJar) Cookies(*url.URL) []*http.Cookie          { return j.cs }

func TestNonLoopbackNeedsKey(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true, "0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false, "example.com:80": false} {
		if Loopback(addr) != want {
			t.Errorf("Loopback(%s) = %v", addr, !want)
		}
	}
	s, err := New(Options{Roots: []string{t.TempDir()}, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ListenAndServe(context.Background(), "0.0.0.0:0", nil); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Errorf("non-loopback without key: %v", err)
	}
}

func TestLiveRunPolls(t *testing.T) {
	dir := fixtureRun(t)
	b, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	m := RunManifest{}
	json.Unmarshal(b, &m)
	m.Stages["keep"].Status = "running"
	b, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)
	ts := newTestServer(t, Options{Roots: []string{dir}})
	_, body := get(t, ts, "/run?f=0:")
	mustContain(t, "live overview", body, `data-poll="/api/status?f=0%3A"`)
	_, body = get(t, ts, "/api/status?f=0:")
	if !strings.Contains(body, `"live":true`) {
		t.Errorf("status: %s", body)
	}
	// Rows appended to an output show up on the next request.
	out := filepath.Join(dir, "solve", "output.jsonl")
	f, _ := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"id":"new","problem":"appended"}` + "\n" + `{"id":"torn"`)
	f.Close()
	_, body = get(t, ts, "/rows?f=0:solve/output.jsonl&o=20")
	mustContain(t, "grown file", body, "of 25 matching", "appended")
}

func TestMarkdown(t *testing.T) {
	for in, wants := range map[string][]string{
		`a $x_1 * y_2$ b`:           {`<span class="math inline">x_1 * y_2</span>`},
		"$$\\sum_{i=1}^n i$$":       {`<span class="math display">\sum_{i=1}^n i</span>`},
		`\(a<b\) and \[c\]`:         {`<span class="math inline">a&lt;b</span>`, `<span class="math display">c</span>`},
		"costs $5 and $10 total":    {"costs $5 and $10 total"},
		"```python\nx = '$a$'\n```": {`x = '$a$'`},
		"<llm-code>\nprint(1)\n</llm-code>\n<llm-code-output>\n1\n</llm-code-output>": {`language-python">print(1)`, `language-output">1`},
		xss:                        {"&lt;script&gt;alert(1)&lt;/script&gt;"},
		"a <b onclick=x>b</b>":     {"&lt;b onclick=x&gt;"},
		"[x](javascript:alert(1))": {`<a href="">x</a>`},
	} {
		got := string(Markdown(in))
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Errorf("Markdown(%q) = %q, lacks %q", in, got, w)
			}
		}
		if strings.Contains(got, "<script") || strings.Contains(got, "<b ") {
			t.Errorf("Markdown(%q) passes HTML through: %q", in, got)
		}
	}
}

func TestParquetFile(t *testing.T) {
	dir := t.TempDir()
	var rows []*record.Row
	for i := range 30 {
		r, _ := record.ParseRow([]byte(fmt.Sprintf(`{"id":"p%d","problem":"What is %d?","generation":"It is %d","is_correct":%t}`, i, i, i, i%2 == 0)))
		rows = append(rows, r)
	}
	p := filepath.Join(dir, "out.parquet")
	if _, err := curate.NewDataset(rows).Export(p, curate.ExportOptions{Format: "rows"}); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Options{Roots: []string{p}})
	_, body := get(t, ts, "/rows?f=0:&where="+url.QueryEscape("is_correct"))
	mustContain(t, "parquet rows", body, "of 15 matching", "What is 28?")
	_, body = get(t, ts, "/row?f=0:&n=3")
	mustContain(t, "parquet row", body, "It is 3")
}
