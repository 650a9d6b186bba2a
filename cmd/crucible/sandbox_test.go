package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSandboxServeAuth checks that sandbox serve refuses an address other
// than loopback without an API key, and a key variable that is not set.
func TestSandboxServeAuth(t *testing.T) {
	_, stderr, err := run(t, "sandbox", "serve", "--addr", "0.0.0.0:0")
	if err == nil || !strings.Contains(stderr, "--api-key-env") || !strings.Contains(stderr, "--insecure-no-auth") {
		t.Errorf("non-loopback without a key: %v\n%s", err, stderr)
	}
	_, stderr, err = run(t, "sandbox", "serve", "--addr", "127.0.0.1:0", "--api-key-env", "CRUCIBLE_TEST_NO_SUCH_VAR")
	if err == nil || !strings.Contains(stderr, "CRUCIBLE_TEST_NO_SUCH_VAR") {
		t.Errorf("unset key variable: %v\n%s", err, stderr)
	}
}

// TestGenerateSendsSandboxKey runs generate --code-execution against a
// sandbox server that wants a key, and a busy answer first.
func TestGenerateSendsSandboxKey(t *testing.T) {
	var calls, busy atomic.Int32
	sb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sb-key" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"process_status": "failed", "stderr": "no key"}`))
			return
		}
		if r.Method != http.MethodPost {
			return // DELETE /sessions/...
		}
		if busy.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"process_status": "failed", "stderr": "sandbox: too many sessions"}`))
			return
		}
		calls.Add(1)
		w.Write([]byte(`{"process_status": "completed", "stdout": "42\n", "stderr": "", "new_session_created": true}`))
	}))
	defer sb.Close()
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Prompt string }
		json.NewDecoder(r.Body).Decode(&req)
		reply, stop := "<llm-code>\nprint(6 * 7)\n", "</llm-code>"
		if strings.Contains(req.Prompt[strings.LastIndex(req.Prompt, "What is 6 times 7?"):], "<llm-code-output>") {
			reply, stop = "\nSo the answer is \\boxed{42}.", ""
		}
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"text": reply, "finish_reason": "stop", "stop_reason": stop}}})
		w.Write(b)
	}))
	defer model.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"id":"p","problem":"What is 6 times 7?"}`+"\n"), 0o644)
	out := filepath.Join(dir, "out.jsonl")
	t.Setenv("CRUCIBLE_TEST_SANDBOX_KEY", "sb-key")
	_, stderr, err := run(t, "generate", "--input", in, "--output", out, "--base-url", model.URL, "--model", "m",
		"--prompt", "math/code", "--completion", "--code-execution", "--sandbox-url", sb.URL,
		"--sandbox-api-key-env", "CRUCIBLE_TEST_SANDBOX_KEY")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	b, _ := os.ReadFile(out)
	if calls.Load() != 1 || !strings.Contains(string(b), `<llm-code-output>\n42\n</llm-code-output>`) {
		t.Errorf("%d executions; output:\n%s", calls.Load(), b)
	}
}
