package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReasoningModel: a reasoning server returns the chain of thought apart
// from the answer (vLLM's reasoning, reasoning_content elsewhere, null
// content when cut inside the reasoning). Rows keep it, and the answer is
// graded from the content only.
func TestReasoningModel(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case strings.Contains(string(b), "row a"): // the reasoning mentions a wrong number
			io.WriteString(w, `{"choices":[{"message":{"role":"assistant","reasoning":"maybe 41? no: 6*7","content":"The answer is \\boxed{42}."},"finish_reason":"stop"}]}`)
		case strings.Contains(string(b), "row b"):
			io.WriteString(w, `{"choices":[{"message":{"role":"assistant","reasoning_content":"7+1","content":"\\boxed{8}"},"finish_reason":"stop"}]}`)
		default: // cut by length inside the reasoning
			io.WriteString(w, `{"choices":[{"message":{"role":"assistant","reasoning":"the answer is 5 because","content":null},"finish_reason":"length"}]}`)
		}
	}))
	defer ts.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"id":"a","problem":"row a","expected_answer":"42"}
{"id":"b","problem":"row b","expected_answer":"8"}
{"id":"c","problem":"row c","expected_answer":"5"}
`), 0o644)
	for _, join := range []bool{false, true} {
		out := filepath.Join(dir, fmt.Sprintf("gen-%v.jsonl", join))
		args := []string{"generate", "--input", in, "--output", out, "--base-url", ts.URL, "--model", "m"}
		if join {
			args = append(args, "--join-reasoning")
		}
		if _, stderr, err := run(t, args...); err != nil {
			t.Fatalf("generate: %v\n%s", err, stderr)
		}
		graded := filepath.Join(dir, fmt.Sprintf("graded-%v.jsonl", join))
		if _, stderr, err := run(t, "grade", "--input", out, "--output", graded, "--policy", "math-verify"); err != nil {
			t.Fatalf("grade: %v\n%s", err, stderr)
		}
		rows := rowsByID(t, graded)
		wantGen := map[string]string{"a": `"generation":"The answer is \\boxed{42}."`, "b": `"generation":"\\boxed{8}"`, "c": `"generation":""`}
		if join {
			wantGen = map[string]string{"a": `"generation":"<think>maybe 41? no: 6*7</think>The answer is \\boxed{42}."`,
				"b": `"generation":"<think>7+1</think>\\boxed{8}"`, "c": `"generation":"<think>the answer is 5 because</think>"`}
		}
		for id, want := range map[string][]string{
			"a": {wantGen["a"], `"reasoning":"maybe 41? no: 6*7"`, `"is_correct":true`},
			"b": {wantGen["b"], `"reasoning":"7+1"`, `"is_correct":true`},
			// Cut inside the reasoning: no answer, even though the reasoning names one.
			"c": {wantGen["c"], `"reasoning":"the answer is 5 because"`, `"finish_reason":"length"`, `"predicted_answer":null`, `"is_correct":false`},
		} {
			for _, w := range want {
				if !strings.Contains(rows[id], w) {
					t.Errorf("join=%v row %s lacks %s: %s", join, id, w, rows[id])
				}
			}
		}
	}
}
