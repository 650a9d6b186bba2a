package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/record"
)

// faultServer plays an OpenAI-compatible server that misbehaves the way
// production ones do: about faultPct% of attempts (chosen by a seeded hash of
// the request's seed and its attempt number, so the run is reproducible) get
// one of the fault classes below; /v1/models fails its first calls, as vLLM
// does while it warms up. A request is never faulted after maxFaulty
// attempts, so that a client with enough retries always succeeds; the test
// checks it needs them.
type faultServer struct {
	t       *testing.T
	salt    uint64
	stall   time.Duration
	killAt  int // closes reached after this many answers (0: never)
	reached chan struct{}
	answers int

	mu       sync.Mutex
	attempts map[int64]int
	byClass  map[string]int
	models   int
	requests int
}

const (
	faultPct  = 20
	maxFaulty = 3
)

var faultClasses = []string{"503", "429", "dropped", "cut_body", "html_200", "empty_choices", "stall"}

func (s *faultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/v1/models" {
		s.mu.Lock()
		s.models++
		n := s.models
		s.mu.Unlock()
		switch n {
		case 1:
			w.WriteHeader(503) // warming up
		case 2:
			io.WriteString(w, "<html>starting</html>")
		default:
			io.WriteString(w, `{"object":"list","data":[{"id":"m","object":"model"}]}`)
		}
		return
	}
	var req struct {
		Seed int64 `json:"seed"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.t.Errorf("bad request body %q", body)
		return
	}
	s.mu.Lock()
	attempt := s.attempts[req.Seed]
	s.attempts[req.Seed]++
	s.requests++
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%d", s.salt, req.Seed, attempt)
	x := h.Sum64()
	class := ""
	if attempt < maxFaulty && x%100 < faultPct {
		class = faultClasses[(x/100)%uint64(len(faultClasses))]
		s.byClass[class]++
	}
	s.mu.Unlock()
	switch class {
	case "503":
		w.WriteHeader(503)
		io.WriteString(w, `{"error":{"message":"overloaded"}}`)
	case "429":
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(429)
	case "dropped":
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	case "cut_body":
		w.Header().Set("Content-Length", "300")
		io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"gen-`)
	case "html_200":
		io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	case "empty_choices":
		io.WriteString(w, `{"id":"x","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":0}}`)
	case "stall":
		select {
		case <-time.After(s.stall):
		case <-r.Context().Done():
		}
	default:
		fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":"gen-%d"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3}}`, req.Seed)
		s.mu.Lock()
		s.answers++
		if s.answers == s.killAt {
			close(s.reached)
		}
		s.mu.Unlock()
	}
}

func newFaultServer(t *testing.T, salt uint64, killAt int) (*faultServer, *httptest.Server) {
	s := &faultServer{t: t, salt: salt, stall: 5 * time.Second, killAt: killAt, reached: make(chan struct{}),
		attempts: map[int64]int{}, byClass: map[string]int{}}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// checkExactlyOnce reads the output and checks every (id, sample) is there
// once, with the right generation and no error.
func checkExactlyOnce(t *testing.T, out string, rows, samples int, seed int64) {
	t.Helper()
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[record.Key]int{}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		row, err := record.ParseRow([]byte(line))
		if err != nil {
			t.Fatalf("output line %d: %v", i+1, err)
		}
		k := record.KeyOf(row)
		seen[k]++
		if row.Has("error") {
			e, _ := row.String("error")
			t.Errorf("%v: error row: %s", k, e)
		}
		if gen, _ := row.String("generation"); gen != fmt.Sprintf("gen-%d", record.Seed(k.ID, k.Sample, seed)) {
			t.Errorf("%v: generation %q", k, gen)
		}
	}
	for i := range rows {
		for s := range samples {
			if n := seen[record.Key{ID: fmt.Sprintf("r%d", i), Sample: s}]; n != 1 {
				t.Errorf("r%d sample %d present %d times", i, s, n)
			}
		}
	}
	if len(seen) != rows*samples {
		t.Errorf("%d keys, want %d", len(seen), rows*samples)
	}
}

// TestGenerateAgainstFaults runs generate against a server where 20% of
// attempts fail in the ways production servers fail, /v1/models included;
// every (id, sample) must come out once, correct, with exit status 0.
func TestGenerateAgainstFaults(t *testing.T) {
	srv, ts := newFaultServer(t, 1, 0)
	dir := t.TempDir()
	const rows, samples, seed = 60, 4, 11
	in := writeInput(t, dir, rows)
	out := filepath.Join(dir, "out.jsonl")
	// No --model: the name comes from the faulty /v1/models.
	_, stderr, err := run(t, "generate", "--input", in, "--output", out, "--base-url", ts.URL,
		"--samples", fmt.Sprint(samples), "--temperature", "0.7", "--seed", fmt.Sprint(seed), "--concurrency", "16",
		"--retry-backoff", "1ms", "--request-timeout", "300ms", "--max-retries", "6")
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	checkExactlyOnce(t, out, rows, samples, seed)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	faults := 0
	for _, n := range srv.byClass {
		faults += n
	}
	for _, c := range faultClasses {
		if srv.byClass[c] == 0 {
			t.Errorf("no %s fault was injected: %v", c, srv.byClass)
		}
	}
	if !strings.Contains(stderr, "backend faults") || !strings.Contains(stderr, "retries=") {
		t.Errorf("the summary does not report the retries:\n%s", stderr)
	}
	t.Logf("%d pairs: %d requests, %d faults %v, %d /v1/models calls", rows*samples, srv.requests, faults, srv.byClass, srv.models)
}

// TestGenerateAgainstFaultsSurvivesSIGKILL kills generate once the faulty
// server has answered some requests; the rerun ends with every (id, sample)
// exactly once.
func TestGenerateAgainstFaultsSurvivesSIGKILL(t *testing.T) {
	srv, ts := newFaultServer(t, 2, 30)
	dir := t.TempDir()
	const rows, samples, seed = 40, 4, 5
	in := writeInput(t, dir, rows)
	out := filepath.Join(dir, "out.jsonl")
	args := []string{"generate", "--input", in, "--output", out, "--base-url", ts.URL, "--model", "m",
		"--samples", fmt.Sprint(samples), "--temperature", "0.7", "--seed", fmt.Sprint(seed), "--concurrency", "8",
		"--retry-backoff", "1ms", "--request-timeout", "300ms"}
	cmd := crucible(args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-srv.reached // a row count: kill after 30 answers of 160, mid-run
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("generate was not killed mid-run: %v", cmd.ProcessState)
	}
	if _, stderr, err := run(t, args...); err != nil {
		t.Fatalf("rerun: %v\n%s", err, stderr)
	}
	checkExactlyOnce(t, out, rows, samples, seed)
}
