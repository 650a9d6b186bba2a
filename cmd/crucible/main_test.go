package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/sandbox"
)

// TestMain lets the test binary stand in for the crucible binary: tests run
// it as a subprocess with CRUCIBLE_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if sandbox.MaybeRunChild() {
		return
	}
	if os.Getenv("CRUCIBLE_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crucible returns a command running the CLI with args.
func crucible(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CRUCIBLE_TEST_MAIN=1")
	return cmd
}

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := crucible(args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// slowServer plays an OpenAI-compatible server that takes a while per
// request and answers "gen-<seed>". It records the body sent for each seed
// and fails the test if a seed is ever sent with a different body.
type slowServer struct {
	t      *testing.T
	mu     sync.Mutex
	bodies map[int64][]byte
	count  int
	// With holdShard set, requests for the rows of that shard wait until
	// held is closed: the shard keeps running, whatever the machine's speed.
	holdShard *record.Shard
	held      chan struct{}
}

var problemID = regexp.MustCompile(`What is (\d+)\+`)

func (s *slowServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Seed int64 `json:"seed"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.t.Errorf("bad request body %q", body)
	}
	s.mu.Lock()
	if prev, ok := s.bodies[req.Seed]; ok && !bytes.Equal(prev, body) {
		s.t.Errorf("seed %d sent with different bodies:\n%s\n%s", req.Seed, prev, body)
	}
	s.bodies[req.Seed] = body
	s.count++
	s.mu.Unlock()
	if m := problemID.FindSubmatch(body); s.holdShard != nil && m != nil && s.holdShard.Contains("r"+string(m[1])) {
		select {
		case <-s.held:
		case <-r.Context().Done():
			return
		}
	}
	time.Sleep(time.Duration(5+rand.IntN(40)) * time.Millisecond)
	fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":"gen-%d"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3}}`, req.Seed)
}

func writeInput(t *testing.T, dir string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"id":"r%d","problem":"What is %d+%d?","extra":{"k":[%d]}}`+"\n", i, i, i, i)
	}
	p := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGenerateSurvivesSIGKILL(t *testing.T) {
	srv := &slowServer{t: t, bodies: map[int64][]byte{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	const rows, samples = 40, 4
	in := writeInput(t, dir, rows)
	out := filepath.Join(dir, "out.jsonl")
	args := []string{"generate", "--input", in, "--output", out, "--base-url", ts.URL, "--model", "m",
		"--samples", fmt.Sprint(samples), "--temperature", "0.7", "--seed", "11", "--concurrency", "8"}

	kills := 0
	for round := 0; round < 12 && kills < 6; round++ {
		cmd := crucible(args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rand.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			kills++
		} else if err == nil {
			break // it finished before the kill
		}
	}
	if kills == 0 {
		t.Fatal("no run was killed mid-way; the server is too fast for this test")
	}
	if _, stderr, err := run(t, args...); err != nil {
		t.Fatalf("final run: %v\n%s", err, stderr)
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[record.Key]int{}
	data, _ := io.ReadAll(f)
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		row, err := record.ParseRow([]byte(line))
		if err != nil {
			t.Fatalf("output line %d: %v", i+1, err)
		}
		k := record.KeyOf(row)
		seen[k]++
		gen, _ := row.String("generation")
		if want := fmt.Sprintf("gen-%d", record.Seed(k.ID, k.Sample, 11)); gen != want {
			t.Errorf("%v: generation %q, want %q", k, gen, want)
		}
		if raw := string(row.Raw("extra")); raw != fmt.Sprintf(`{"k":[%s]}`, strings.TrimPrefix(k.ID, "r")) {
			t.Errorf("%v: input field lost: %s", k, raw)
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
	if _, ok, _ := record.ReadManifest(out); !ok {
		t.Error("no manifest after the complete run")
	}
	t.Logf("%d kills, %d requests for %d pairs", kills, srv.count, rows*samples)
}

func TestGenerateBadInput(t *testing.T) {
	ok := &slowServer{t: t, bodies: map[int64][]byte{}}
	good := httptest.NewServer(ok)
	defer good.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"choices": [ this is not json`)
	}))
	defer garbage.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	cases := []struct {
		name    string
		input   string
		url     string
		wantErr []string // substrings of stderr; nil: success expected
		kept    int      // rows that must be in the output
	}{
		{"malformed line", "{\"id\":\"a\",\"problem\":\"1\"}\n{\"id\":\"b\",\"problem\":\"2\"}\n{\"id\":\"c\",\"problem\":\n{\"id\":\"d\",\"problem\":\"4\"}\n",
			good.URL, []string{"in.jsonl:3:", "invalid JSON"}, 2},
		{"missing prompt field", "{\"id\":\"a\",\"problem\":\"1\"}\n{\"id\":\"b\",\"question\":\"2\"}\n",
			good.URL, []string{"in.jsonl:2:", `row "b"`, `missing field "problem"`}, 1},
		{"duplicate id", "{\"id\":\"a\",\"problem\":\"1\"}\n{\"id\":\"a\",\"problem\":\"2\"}\n",
			good.URL, []string{"in.jsonl:2:", "duplicate row id"}, 1},
		{"unreachable server", "{\"id\":\"a\",\"problem\":\"1\"}\n{\"id\":\"b\",\"problem\":\"2\"}\n",
			deadURL, []string{"all 2 requests failed", "connection refused"}, 2},
		{"garbage JSON", "{\"id\":\"a\",\"problem\":\"1\"}\n",
			garbage.URL, []string{"all 1 requests failed", "invalid JSON"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.jsonl")
			os.WriteFile(in, []byte(c.input), 0o644)
			out := filepath.Join(dir, "out.jsonl")
			// Something already written must survive the failing run.
			os.WriteFile(out, []byte("{\"id\":\"old\",\"sample\":0,\"generation\":\"kept\"}\n"), 0o644)
			_, stderr, err := run(t, "generate", "--input", in, "--output", out, "--base-url", c.url, "--model", "m",
				"--concurrency", "1", "--max-retries", "1", "--log-level", "error")
			if err == nil {
				t.Fatalf("succeeded; stderr:\n%s", stderr)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Errorf("crashed:\n%s", stderr)
			}
			b, _ := os.ReadFile(out)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if lines[0] != "{\"id\":\"old\",\"sample\":0,\"generation\":\"kept\"}" {
				t.Errorf("earlier output lost: %q", lines[0])
			}
			if len(lines)-1 != c.kept {
				t.Errorf("%d new rows, want %d:\n%s", len(lines)-1, c.kept, b)
			}
			if _, ok, _ := record.ReadManifest(out); ok && c.kept != len(lines)-1 {
				t.Error("manifest written for an incomplete output")
			}
		})
	}
}
