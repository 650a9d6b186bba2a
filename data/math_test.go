package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/record"
)

// mathFile is a problem file of the MATH release.
type mathFile struct {
	Problem  string `json:"problem"`
	Level    string `json:"level"`
	Type     string `json:"type"`
	Solution string `json:"solution"`
}

// mathSmall are the problems testdata/math_small.py converts by the
// README's rule into testdata/math_small.jsonl (the test split).
var mathSmall = map[string]mathFile{
	"test/algebra/1.json":  {"Café — is $\\pi \\le 2$?\u2028Say \"yes\".", "Level 1", "Algebra", "No, so $\\boxed{\\frac{1}{2}}$."},
	"test/algebra/10.json": {"Tab\there", "Level 2", "Algebra", "Boxed the old way: \\fbox{5}"},
	"test/algebra/2.json":  {"Ctrl \x01 and \\ backslash\r\n", "Level 3", "Algebra", "First $\\boxed{1}$, then $\\boxed{x^{2}+\\{y\\}}$ \U0001F600."},
	"test/geometry/3.json": {"Empty box", "Level ?", "Geometry", "Nothing: $\\boxed{}$"},
	"train/algebra/1.json": {"A train problem", "Level 1", "Algebra", "$\\boxed{7}$"},
}

// mathTar builds an archive shaped like the MATH release: prefix +
// <split>/<subject>/<n>.json files written as the release writes them
// (indented JSON), in reverse name order, among a README, folders and macOS
// metadata files; gzipped when gz.
func mathTar(t *testing.T, prefix string, probs map[string]mathFile, gz bool) []byte {
	return mathTarRaw(t, prefix, probs, nil, gz)
}

// mathTarRaw is mathTar with extra files as they are.
func mathTarRaw(t *testing.T, prefix string, probs map[string]mathFile, raw map[string]string, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, body []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.WriteHeader(&tar.Header{Name: prefix, Mode: 0o755, Typeflag: tar.TypeDir})
	add(prefix+"README.md", []byte("MATH"))
	add(prefix+"test/algebra/._1.json", []byte{0, 5, 22, 7, 0, 2})
	var names []string
	for n := range probs {
		names = append(names, n)
	}
	sortDesc(names)
	for _, n := range names {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "    ")
		enc.Encode(probs[n])
		add(prefix+n, b.Bytes())
	}
	for n, b := range raw {
		add(prefix+n, []byte(b))
	}
	tw.Close()
	if !gz {
		return buf.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(buf.Bytes())
	zw.Close()
	return z.Bytes()
}

func sortDesc(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] > s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "archive")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConvertMATH(t *testing.T) {
	golden, err := os.ReadFile("testdata/math_small.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	train := `{"problem": "A train problem", "level": "Level 1", "type": "Algebra", "solution": "$\\boxed{7}$", "answer": "7", "unique_id": "train/algebra/1.json"}` + "\n"
	for _, tc := range []struct {
		name, split string
		archive     []byte
		want        string
		wantErr     string
	}{
		{name: "tar", split: "test", archive: mathTar(t, "MATH/", mathSmall, false), want: string(golden)},
		{name: "tar.gz of a repository snapshot", split: "test", archive: mathTar(t, "agents-e8c4e3c/src/agents/datasets/data/math/", mathSmall, true), want: string(golden)},
		{name: "train split", split: "train", archive: mathTar(t, "MATH/", mathSmall, false), want: train},
		{name: "an HTML page", split: "test", archive: []byte("<html>moved</html>"), wantErr: "reading the archive"},
		{name: "no problems", split: "test", archive: mathTar(t, "MATH/", nil, false), wantErr: "not the MATH release"},
		{name: "not a problem", split: "test", archive: mathTarRaw(t, "MATH/", nil, map[string]string{"test/algebra/1.json": `{"question": "q"}`}, false),
			wantErr: "test/algebra/1.json: not a MATH problem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := convertMATH(tc.split)(writeTemp(t, tc.archive), &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("converted:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}

func TestLastBoxed(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`$\boxed{2}$`, "2"},
		{`$\boxed{1}$ and $\boxed{\frac{a}{b}}$`, `\frac{a}{b}`},
		{`\fbox{3}`, "3"},
		{`\boxed{1} then \fbox{2}`, "1"}, // \boxed is looked for first
		{`\boxed{}`, ""},
		{`\boxed{\{1,2\}}`, `\{1,2\}`},
		{`no box`, ""},
		{`\boxed{unclosed`, ""},
		{`is $\boxed 9$.`, "9"},
		{`= \boxed {17}.$$ or $\boxed{17}$`, "17"},
		{`= \boxed {17}.`, "17"},
	} {
		if got := lastBoxed(tc.in); got != tc.want {
			t.Errorf("lastBoxed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// mathServer serves archives by path and counts requests.
type mathServer struct {
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
}

func (s *mathServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	b, ok := s.files[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestGetMATH: `data get math` against a local server: the first source is
// gone, the mirror's archive converts to the pinned content, which Status
// then accepts; a pin the conversion does not reproduce leaves nothing; a
// file placed by hand that is not the pinned one is refused with the reason
// and kept.
func TestGetMATH(t *testing.T) {
	golden, _ := os.ReadFile("testdata/math_small.jsonl")
	srv := &mathServer{files: map[string][]byte{"/mirror/snapshot.tar.gz": mathTar(t, "agents/math/", mathSmall, true)}, hits: map[string]int{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	b := Benchmark{Name: "math", File: "math/test.jsonl", URL: ts.URL + "/gone/MATH.tar", Mirrors: []string{ts.URL + "/mirror/snapshot.tar.gz"},
		SHA256: shaHex(golden), Size: int64(len(golden)), Convert: convertMATH("test")}
	dir := t.TempDir()
	if st := b.Status(dir); st.OK || st.State != "missing" || !strings.Contains(st.Reason, "crucible data get math") {
		t.Fatalf("before: %+v", st)
	}
	p, err := Get(context.Background(), nil, b, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, golden) {
		t.Fatalf("converted file differs from the golden one")
	}
	if st := b.Status(dir); !st.OK || st.State != "present" || st.Path != p {
		t.Fatalf("after: %+v", st)
	}
	if srv.hits["/gone/MATH.tar"] != 1 || srv.hits["/mirror/snapshot.tar.gz"] != 1 {
		t.Errorf("requests %v", srv.hits)
	}
	if _, err := os.Stat(filepath.Join(dir, ".sources")); err == nil {
		t.Errorf("archives left behind in %s", filepath.Join(dir, ".sources"))
	}

	// A pin the source does not reproduce: an error, and no file.
	bad := b
	bad.File, bad.SHA256 = "math/other.jsonl", strings.Repeat("0", 64)
	if _, err := Get(context.Background(), nil, bad, dir); err == nil || !strings.Contains(err.Error(), "is not the pinned data") {
		t.Fatalf("err = %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "math", "other.jsonl*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}

	// Files placed by hand that are not the pinned one.
	for _, tc := range []struct{ name, content, reason string }{
		{"wrong size", "junk", "has 4 bytes, want"},
		{"same size, other bytes", strings.Repeat("x", len(golden)), "has sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "math"), 0o755)
			os.WriteFile(b.Path(dir), []byte(tc.content), 0o644)
			st := b.Status(dir)
			if st.OK || st.State != "not accepted" || !strings.Contains(st.Reason, tc.reason) || !strings.Contains(st.Reason, "--benchmark") {
				t.Fatalf("status %+v", st)
			}
			if _, err := Get(context.Background(), nil, b, dir); err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v", err)
			}
			if got, _ := os.ReadFile(b.Path(dir)); string(got) != tc.content {
				t.Error("a file placed by hand was overwritten")
			}
		})
	}
}

// TestSharedMATHReproducesPin: a MATH-release tar built from the pinned
// files in ../shared/data converts back to exactly the pinned bytes.
func TestSharedMATHReproducesPin(t *testing.T) {
	shared := filepath.Join("..", "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(shared, "math", "test.jsonl")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("../shared/data missing in CI")
		}
		t.Skip("../shared/data not present")
	}
	probs := map[string]mathFile{}
	for _, name := range []string{"test.jsonl", "train.jsonl"} {
		in, err := record.Open(filepath.Join(shared, "math", name))
		if err != nil {
			t.Fatal(err)
		}
		for in.Next() {
			r := in.Row()
			var f mathFile
			f.Problem, _ = r.String("problem")
			f.Level, _ = r.String("level")
			f.Type, _ = r.String("type")
			f.Solution, _ = r.String("solution")
			id, _ := r.String("unique_id")
			probs[id] = f
		}
		in.Close()
	}
	ts := httptest.NewServer(&mathServer{files: map[string][]byte{"/MATH.tar": mathTar(t, "MATH/", probs, false)}, hits: map[string]int{}})
	defer ts.Close()
	dir := t.TempDir()
	for _, name := range []string{"math", "math-train"} {
		b, _ := Lookup(name)
		b.URL, b.Mirrors = ts.URL+"/MATH.tar", nil
		if _, err := Get(context.Background(), nil, b, dir); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st := b.Status(dir); !st.OK {
			t.Fatalf("%s: %+v", name, st)
		}
	}
}
