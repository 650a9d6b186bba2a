package synth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/record"
)

// chatReq is what the scripted server reads from a request.
type chatReq struct {
	Messages []backend.Message `json:"messages"`
	Seed     int64             `json:"seed"`
}

func (r chatReq) last() string { return r.Messages[len(r.Messages)-1].Content }

// reply is a scripted answer: text, or an HTTP error status.
type reply struct {
	text   string
	status int
}

// scripted is a local OpenAI-compatible server that answers like a model
// would, by a script over the request.
type scripted struct {
	t      *testing.T
	srv    *httptest.Server
	script func(chatReq) reply

	mu     sync.Mutex
	bodies map[string]int // sha256 of request body -> times seen
	calls  int
	// onCall, when set, runs before each answer (e.g. to cancel a run).
	onCall func(n int)
}

func newScripted(t *testing.T, script func(chatReq) reply) *scripted {
	s := &scripted{t: t, script: script, bodies: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) handle(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256(body)
	s.mu.Lock()
	s.bodies[hex.EncodeToString(sum[:])]++
	s.calls++
	n := s.calls
	hook := s.onCall
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	var req chatReq
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	rep := s.script(req)
	if rep.status != 0 {
		w.WriteHeader(rep.status)
		fmt.Fprintf(w, `{"error":{"message":"scripted failure %d"}}`, rep.status)
		return
	}
	out, _ := json.Marshal(map[string]any{
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": rep.text}}},
		"usage": map[string]any{"prompt_tokens": 10, "completion_tokens": len(strings.Fields(rep.text))},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func (s *scripted) backend() backend.Backend {
	be, err := openai.New(openai.Options{BaseURLs: []string{s.srv.URL}, Model: "scripted", MaxRetries: 1,
		BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	if err != nil {
		s.t.Fatal(err)
	}
	return be
}

func (s *scripted) setOnCall(f func(int)) {
	s.mu.Lock()
	s.onCall = f
	s.mu.Unlock()
}

func (s *scripted) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// bodySet returns the distinct request bodies seen.
func (s *scripted) bodySet() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.bodies {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeJSONL(t *testing.T, rows ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// readRows reads a JSONL output into rows keyed by "id#sample".
func readRows(t *testing.T, path string) map[string]*record.Row {
	t.Helper()
	in, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := map[string]*record.Row{}
	for in.Next() {
		k := record.KeyOf(in.Row())
		key := fmt.Sprintf("%s#%d", k.ID, k.Sample)
		if _, dup := out[key]; dup {
			t.Fatalf("%s: duplicate key %s", path, key)
		}
		out[key] = in.Row()
	}
	if err := in.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sortedLines returns a file's lines, sorted.
func sortedLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	sort.Strings(lines)
	return lines
}

func str(t *testing.T, r *record.Row, key string) string {
	t.Helper()
	s, ok := r.Text(key)
	if !ok {
		t.Fatalf("row %s has no %s: %s", r.ID(), key, r.AppendJSON(nil))
	}
	return s
}

// checkResume runs a pipeline again and checks that it writes nothing and
// sends no request.
func checkResume(t *testing.T, s *scripted, run func() (*Report, error)) {
	t.Helper()
	before := s.callCount()
	rep, err := run()
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	for _, st := range rep.Stages {
		if st.Written != 0 {
			t.Errorf("rerun: step %s wrote %d rows", st.Name, st.Written)
		}
	}
	if n := s.callCount() - before; n != 0 {
		t.Errorf("rerun sent %d requests", n)
	}
}

// checkInterrupted cancels a run after some requests, reruns it, and checks
// that the outputs equal those of an uninterrupted run in another folder
// (as sets of lines), and that the requests were the same bytes.
func checkInterrupted(t *testing.T, script func(chatReq) reply, cancelAfter int, outputs []string, run func(ctx context.Context, be backend.Backend, dir string) error) {
	t.Helper()
	clean := newScripted(t, script)
	cleanDir := t.TempDir()
	if err := run(context.Background(), clean.backend(), cleanDir); err != nil {
		t.Fatalf("clean run: %v", err)
	}
	cut := newScripted(t, script)
	cutDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cut.setOnCall(func(n int) {
		if n == cancelAfter {
			cancel()
		}
	})
	if err := run(ctx, cut.backend(), cutDir); err == nil {
		t.Fatalf("interrupted run: want an error after cancel")
	}
	cut.setOnCall(nil)
	if err := run(context.Background(), cut.backend(), cutDir); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	for _, o := range outputs {
		a := strings.ReplaceAll(strings.Join(sortedLines(t, filepath.Join(cleanDir, o)), "\n"), clean.srv.URL, "SERVER")
		b := strings.ReplaceAll(strings.Join(sortedLines(t, filepath.Join(cutDir, o)), "\n"), cut.srv.URL, "SERVER")
		if a != b {
			t.Errorf("%s differs after interrupt+resume:\nclean:\n%s\nresumed:\n%s", o, a, b)
		}
	}
	if a, b := clean.bodySet(), cut.bodySet(); strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("interrupted+resumed run sent different requests: %d distinct vs %d", len(b), len(a))
	}
}
