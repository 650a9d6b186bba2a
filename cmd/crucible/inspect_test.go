package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// inspectModel plays a model for the inspect pipeline: problem N ("What
// is N+N?") is answered 2N, or 2N+1 when the request's seed is a multiple
// of 3; problem 0 answers with code and its output, problem 1 with a
// script tag.
func inspectModel(t *testing.T) *httptest.Server {
	what := regexp.MustCompile(`What is (\d+)\+`)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Seed     int64 `json:"seed"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
			Prompt string `json:"prompt"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		text := req.Prompt
		for _, m := range req.Messages {
			text += m.Content
		}
		ms := what.FindAllStringSubmatch(text, -1)
		n := 0
		if len(ms) > 0 {
			n, _ = strconv.Atoi(ms[len(ms)-1][1])
		}
		ans := 2 * n
		if req.Seed%3 == 0 {
			ans++
		}
		reply := fmt.Sprintf("We add: $%d + %d = %d$, so\n\n$$x_{%d} = \\frac{%d}{1}$$\n\nThe answer is $\\boxed{%d}$.", n, n, ans, n, ans, ans)
		switch n {
		case 0:
			reply = "Let's compute.\n<llm-code>\nx = 6 * 7\nprint(x)\n</llm-code>\n<llm-code-output>\n42\n</llm-code-output>\n" + reply
		case 1:
			reply = "Careful: <script>alert(1)</script> and <img src=x onerror=alert(2)>\n\n" + reply
		}
		b, _ := json.Marshal(map[string]any{
			"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": reply}, "finish_reason": "stop"}},
			"usage":   map[string]any{"prompt_tokens": 10, "completion_tokens": 20 + n},
		})
		w.Write(b)
	}))
}

// inspectRun runs generate -> grade -> curate through `crucible run` and
// returns the run folder.
func inspectRun(t *testing.T) string {
	t.Helper()
	srv := inspectModel(t)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	var in strings.Builder
	subjects := []string{"Algebra", "Number Theory", "Prealgebra"}
	for i := range 6 {
		fmt.Fprintf(&in, `{"id":"q%d","problem":"What is %d+%d? Give $x$.","expected_answer":"%d","subject":"%s","level":"Level %d"}`+"\n",
			i, i, i, 2*i, subjects[i%3], i%5+1)
	}
	os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(in.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "steps.yaml"), []byte("steps:\n  - filter: correct\n  - where: 'sample != 3'\n"), 0o644)
	pipe := filepath.Join(dir, "pipe.yaml")
	os.WriteFile(pipe, []byte(fmt.Sprintf(`name: inspect-e2e
defaults:
  base-url: %s
  model: m
  concurrency: 2
  log-level: warn
stages:
  solve:
    command: generate
    input: %s
    flags: {samples: 4, temperature: 0.7, seed: 5}
  grade:
    command: grade
    input: solve
  keep:
    command: curate
    input: grade
    flags: {config: %s}
`, srv.URL, filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "steps.yaml"))), 0o644)
	runs := filepath.Join(dir, "runs")
	if _, stderr, err := run(t, "run", pipe, "--runs-dir", runs, "--launcher", "local"); err != nil {
		t.Fatalf("crucible run: %v\n%s", err, stderr)
	}
	return filepath.Join(runs, "inspect-e2e")
}

// startInspect starts `crucible inspect` on a free loopback port and
// returns its address once it prints it.
func startInspect(t *testing.T, args ...string) string {
	t.Helper()
	cmd := crucible(append([]string{"inspect", "--addr", "127.0.0.1:0", "--cache-dir", t.TempDir()}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "crucible inspect: "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return strings.TrimSpace(u)
		}
	}
	t.Fatalf("crucible inspect did not start: %s", stderr.String())
	return ""
}

func TestInspectCommand(t *testing.T) {
	dir := inspectRun(t)
	base := startInspect(t, dir)
	resp, err := http.Get(base + "run?f=0:")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
	resp, _ = http.Get(base + "rows?f=" + "0:../../in.jsonl")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("traversal: %d", resp.StatusCode)
	}

	// A non-loopback address needs a key, from a variable that is set.
	if _, stderr, err := run(t, "inspect", dir, "--addr", "0.0.0.0:0"); err == nil || !strings.Contains(stderr, "--api-key-env") {
		t.Errorf("0.0.0.0 without a key: %v %s", err, stderr)
	}
	if _, stderr, err := run(t, "inspect", dir, "--addr", "0.0.0.0:0", "--api-key-env", "CRUCIBLE_TEST_UNSET_KEY"); err == nil || !strings.Contains(stderr, "empty or unset") {
		t.Errorf("unset key variable: %v %s", err, stderr)
	}

	// report: one file, nothing outside it.
	out := filepath.Join(t.TempDir(), "report.html")
	if _, stderr, err := run(t, "report", dir, "--output", out); err != nil {
		t.Fatalf("report: %v\n%s", err, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"inspect-e2e", "<svg", "curation funnel", "pass@k and majority@k vs k"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	refs := regexp.MustCompile(`(?i)<[^>]*\b(src|href)\s*=\s*["']?[^"'\s>]*http`)
	if m := refs.FindString(page); m != "" || strings.Contains(page, "<script") {
		t.Errorf("report refers outside itself: %q", m)
	}
}

// TestInspectInBrowser clicks through a real run in headless Chromium with
// playwright-core (inspect/testdata/e2e.mjs). It needs /usr/bin/chromium
// (or $CHROMIUM), node, and CRUCIBLE_PLAYWRIGHT naming a node_modules
// folder with playwright-core; it skips without them unless CI=true.
// Screenshots go to $CRUCIBLE_SCREENSHOTS, else a temporary folder.
func TestInspectInBrowser(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	nodeModules := os.Getenv("CRUCIBLE_PLAYWRIGHT")
	node, nodeErr := exec.LookPath("node")
	_, chromeErr := os.Stat(chromium)
	_, pwErr := os.Stat(filepath.Join(nodeModules, "playwright-core", "package.json"))
	if nodeModules == "" || nodeErr != nil || chromeErr != nil || pwErr != nil {
		msg := fmt.Sprintf("needs chromium (%v), node (%v) and CRUCIBLE_PLAYWRIGHT=node_modules with playwright-core (%q: %v)", chromeErr, nodeErr, nodeModules, pwErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := inspectRun(t)
	base := startInspect(t, dir)
	shots := os.Getenv("CRUCIBLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("../../inspect/testdata/e2e.mjs")
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "URL="+base, "SHOTS="+shots, "CHROMIUM="+chromium, "CRUCIBLE_PLAYWRIGHT="+nodeModules)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "E2E OK") {
		t.Fatalf("browser test: %v", err)
	}
	for _, n := range []string{"overview", "rows", "solution", "eval", "funnel"} {
		if fi, err := os.Stat(filepath.Join(shots, n+".png")); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", n, err)
		}
	}
	t.Logf("screenshots in %s", shots)
}
