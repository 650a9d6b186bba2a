package solve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/sandbox"
)

// TestMain lets the sandbox re-execute this test binary as its init.
func TestMain(m *testing.M) {
	if sandbox.MaybeRunChild() {
		return
	}
	os.Exit(m.Run())
}

// scriptedServer is an OpenAI-compatible completions server whose model
// writes code-interpreter solutions from a script: the problem name in the
// prompt picks the script, the number of code outputs already in the prompt
// picks the round. Like vLLM, it leaves the stop string out of the text and
// names it in stop_reason.
func scriptedServer(t *testing.T) *httptest.Server {
	scripts := map[string][]string{
		"state": {"Let x be 6*7.\n<llm-code>\nx = 6 * 7\nx\n</llm-code>", "<llm-code>\nprint(x + 1)\n</llm-code>", "So the answer is \\boxed{43}."},
		"error": {"<llm-code>\n1/0\n</llm-code>", "It failed. \\boxed{0}"},
		"flood": {"<llm-code>\nprint('y' * 5000)\n</llm-code>", "Done."},
		"loop":  {"<llm-code>\nprint(1)\n</llm-code>"}, // forever
		"fence": {"Compute.\n```python\nprint(2 + 2)\n```\n", "Four."},
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Prompt string   `json:"prompt"`
			Stop   []string `json:"stop"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.URL.Path != "/v1/completions" {
			http.Error(w, "bad request", 400)
			return
		}
		name := strings.Fields(strings.TrimPrefix(req.Prompt, "Q: "))[0]
		round := strings.Count(req.Prompt, "<llm-code-output>") + strings.Count(req.Prompt, "```output")
		script := scripts[name]
		text := script[min(round, len(script)-1)]
		finish, stopReason := "stop", any(nil)
		for _, s := range req.Stop {
			if i := strings.Index(text, s); i >= 0 {
				text, stopReason = text[:i], s
				break
			}
		}
		json.NewEncoder(w).Encode(map[string]any{
			"choices": []map[string]any{{"text": text, "finish_reason": finish, "stop_reason": stopReason}},
			"usage":   map[string]int{"prompt_tokens": 10, "completion_tokens": 5},
		})
	}))
}

func testPool(t *testing.T, maxSessions int) *sandbox.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := sandbox.NewPool(ctx, sandbox.Config{Preload: []string{}, WarmWorkers: 2, MaxSessions: maxSessions})
	if errors.Is(err, sandbox.ErrNoIsolation) && os.Getenv("CI") != "true" {
		t.Skipf("no sandbox isolation on this machine, and CI is not set: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestCodeExecutionEndToEnd(t *testing.T) {
	pool := testPool(t, 0)
	srv := scriptedServer(t)
	defer srv.Close()
	be, err := openai.New(openai.Options{BaseURLs: []string{srv.URL}, Model: "scripted", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	p, err := prompt.New("t", prompt.Config{User: "Q: {problem}\n"})
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(in, []byte(`{"id":"a","problem":"state"}
{"id":"b","problem":"error"}
{"id":"c","problem":"flood"}
{"id":"d","problem":"loop"}
`), 0o644)

	const (
		stateGen = "Let x be 6*7.\n<llm-code>\nx = 6 * 7\nx\n</llm-code>\n<llm-code-output>\n42\n</llm-code-output>\n" +
			"<llm-code>\nprint(x + 1)\n</llm-code>\n<llm-code-output>\n43\n</llm-code-output>\nSo the answer is \\boxed{43}."
		errOutput = "<llm-code>\n1/0\n</llm-code>\n<llm-code-output>\nTraceback (most recent call last):\n  File \"<cell>\", line 1, in <module>\nZeroDivisionError: division by zero\n</llm-code-output>\n"
		loopBlock = "<llm-code>\nprint(1)\n</llm-code>"
		loopOut   = loopBlock + "\n<llm-code-output>\n1\n</llm-code-output>\n"
	)
	tests := []struct {
		name   string
		ce     CodeExecution
		want   map[string]string // id -> generation
		counts map[string][2]int // id -> code_executions, code_errors
		pool   *sandbox.Pool     // default: pool
	}{
		{
			name: "errors shown to the model",
			ce:   CodeExecution{MaxExecutions: 3},
			want: map[string]string{
				"a": stateGen,
				"b": errOutput + "It failed. \\boxed{0}",
				"c": "<llm-code>\nprint('y' * 5000)\n</llm-code>\n<llm-code-output>\n" + strings.Repeat("y", 1000) + "<output cut>\n</llm-code-output>\nDone.",
				"d": loopOut + loopOut + loopOut + loopBlock,
			},
			counts: map[string][2]int{"a": {2, 0}, "b": {1, 1}, "c": {1, 0}, "d": {3, 0}},
		},
		{
			name:   "OpenMathInstruct-1: stop at the first error",
			ce:     CodeExecution{MaxExecutions: 3, StopOnError: true},
			want:   map[string]string{"a": stateGen, "b": errOutput},
			counts: map[string][2]int{"a": {2, 0}, "b": {1, 1}},
		},
	}
	// One session at a time: solutions wait for the sandbox, none fails.
	tests = append(tests, tests[0])
	tests[2].name, tests[2].pool = "one sandbox session for four solutions", testPool(t, 1)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ce := tt.ce
			ce.Backend, ce.Sandbox = be, pool
			if tt.pool != nil {
				ce.Sandbox = tt.pool
			}
			out := filepath.Join(t.TempDir(), "out.jsonl")
			st, err := Run(context.Background(), Options{Input: in, Output: out, Prompt: p, Completion: true,
				Backend: be, Generate: ce.Generate, Samples: 1, Seed: int64(i), Concurrency: 4})
			if err != nil || st.Errors != 0 {
				t.Fatalf("Run: %+v %v", st, err)
			}
			for k, row := range readKeys(t, out) {
				want, ok := tt.want[k.ID]
				if !ok {
					continue
				}
				if gen, _ := row.String("generation"); gen != want {
					t.Errorf("%s: generation\n%q\nwant\n%q", k.ID, gen, want)
				}
				n, _ := row.Int("code_executions")
				e, _ := row.Int("code_errors")
				if c := tt.counts[k.ID]; int(n) != c[0] || int(e) != c[1] {
					t.Errorf("%s: code_executions %d, code_errors %d, want %v", k.ID, n, e, c)
				}
			}
		})
	}
	if n := len(pool.Sessions()); n != 0 {
		t.Errorf("%d sandbox sessions left open", n)
	}
}

func TestCodeExecutionFences(t *testing.T) {
	pool := testPool(t, 0)
	srv := scriptedServer(t)
	defer srv.Close()
	be, err := openai.New(openai.Options{BaseURLs: []string{srv.URL}, Model: "scripted", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ce := &CodeExecution{Backend: be, Sandbox: pool, Tags: prompt.FenceTags}
	out := &record.Row{}
	resp, err := ce.Generate(context.Background(), &backend.Request{Prompt: "Q: fence\n"}, out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Compute.\n```python\nprint(2 + 2)\n```\n```output\n4\n```\nFour."; resp.Text != want {
		t.Errorf("generation %q, want %q", resp.Text, want)
	}
	if resp.CompletionTokens != 10 {
		t.Errorf("completion tokens %d, want the sum over rounds (10)", resp.CompletionTokens)
	}
}

func TestLastBlock(t *testing.T) {
	tests := []struct {
		text, code string
		ok         bool
	}{
		{"a <llm-code>\nx = 1\n</llm-code>", "\nx = 1\n", true}, // Generate drops the leading newline
		{"<llm-code>a</llm-code> out <llm-code>b</llm-code>", "b", true},
		{"<llm-code>a</llm-code> then text", "", false},
		{"no code </llm-code>", "", false},
		{"<llm-code>a</llm-code></llm-code>", "", false},
	}
	for _, tt := range tests {
		code, ok := lastBlock(tt.text, prompt.LLMCodeTags)
		if code != tt.code || ok != tt.ok {
			t.Errorf("lastBlock(%q) = %q, %v; want %q, %v", tt.text, code, ok, tt.code, tt.ok)
		}
	}
}

func TestContinueChat(t *testing.T) {
	orig := &backend.Request{Messages: []backend.Message{{Role: "user", Content: "Q"}}}
	r := *orig
	continueFrom(&r, orig, "so far")
	want := []backend.Message{{Role: "user", Content: "Q"}, {Role: "assistant", Content: "so far"}, {Role: "user", Content: "continue"}}
	if len(r.Messages) != 3 || r.Messages[1] != want[1] || r.Messages[2] != want[2] || len(orig.Messages) != 1 {
		t.Fatalf("messages %+v, want %+v", r.Messages, want)
	}
}

// scripted is a backend that replies from a list and, like OpenAI's API,
// names no stop string.
type scripted struct{ replies []string }

func (s *scripted) Generate(_ context.Context, r *backend.Request) (*backend.Response, error) {
	text := s.replies[0]
	s.replies = s.replies[1:]
	return &backend.Response{Text: text, FinishReason: backend.FinishStop, CompletionTokens: 1}, nil
}

func (s *scripted) Close() error { return nil }

// fakeSandbox echoes the code it ran.
type fakeSandbox struct{ ran []string }

func (f *fakeSandbox) Execute(_ context.Context, _, code string, _ sandbox.ExecOptions) (sandbox.Result, error) {
	f.ran = append(f.ran, code)
	return sandbox.Result{Status: sandbox.StatusCompleted, Stdout: "ran\n"}, nil
}

func (f *fakeSandbox) EndSession(context.Context, string) error { return nil }

func TestCodeEndNotEchoed(t *testing.T) {
	be := &scripted{replies: []string{"<llm-code>\nx = 1\n", "Done: </llm-code> is a tag."}}
	sb := &fakeSandbox{}
	ce := &CodeExecution{Backend: be, Sandbox: sb}
	resp, err := ce.Generate(context.Background(), &backend.Request{Prompt: "Q"}, &record.Row{})
	if err != nil {
		t.Fatal(err)
	}
	want := "<llm-code>\nx = 1\n</llm-code>\n<llm-code-output>\nran\n</llm-code-output>\nDone: </llm-code> is a tag."
	if resp.Text != want || len(sb.ran) != 1 || sb.ran[0] != "x = 1\n" {
		t.Fatalf("got %q (ran %q), want %q", resp.Text, sb.ran, want)
	}
}
