package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerateCodeExecution runs `crucible generate --code-execution` with
// the in-process sandbox against a model that writes one code block, then
// the answer once it sees the block's output.
func TestGenerateCodeExecution(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Prompt   string                     `json:"prompt"`
			Messages []struct{ Content string } `json:"messages"`
			Stop     []string                   `json:"stop"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		text := req.Prompt
		for _, m := range req.Messages {
			text += m.Content
		}
		reply := "Let's compute.\n<llm-code>\nx = 6 * 7\nprint(x)\n"
		stop := "</llm-code>"
		// Only what follows the problem counts: the few-shot examples
		// have code outputs too.
		if strings.Contains(text[strings.LastIndex(text, "What is 6 times 7?"):], "<llm-code-output>") {
			reply, stop = "\nSo the answer is \\boxed{42}.", ""
		}
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{
			"text": reply, "message": map[string]any{"content": reply}, "finish_reason": "stop", "stop_reason": stop}}})
		w.Write(b)
	}))
	defer srv.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"id":"p","problem":"What is 6 times 7?"}`+"\n"), 0o644)
	out := filepath.Join(dir, "out.jsonl")
	_, stderr, err := run(t, "generate", "--input", in, "--output", out, "--base-url", srv.URL, "--model", "m",
		"--prompt", "math/code", "--code-execution", "--max-code-executions", "3", "--completion")
	if err != nil {
		if strings.Contains(stderr, "unsafe-no-isolation") && os.Getenv("CI") != "true" {
			t.Skip("no user namespaces here")
		}
		t.Fatalf("%v\n%s", err, stderr)
	}
	b, _ := os.ReadFile(out)
	s := string(b)
	for _, want := range []string{`<llm-code-output>\n42\n</llm-code-output>`, `\\boxed{42}`, `"code_executions":1`, `"code_errors":0`} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %s:\n%s", want, s)
		}
	}
	_ = fmt.Sprint
}
