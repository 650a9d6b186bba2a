package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCurateCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	long := strings.Repeat("We add the numbers one by one and check each step. ", 6)
	os.WriteFile(in, []byte(strings.Join([]string{
		`{"id":"a","problem":"What is 1+1?","generation":"` + long + `So \\boxed{2}.","is_correct":true,"problem_source":"math"}`,
		`{"id":"a","problem":"What is 1+1?","generation":"` + long + `So \\boxed{3}.","is_correct":false,"problem_source":"math"}`,
		`{"id":"b","problem":"What is 2+2?","generation":"` + long + `So \\boxed{4}. Or \\boxed{5}.","is_correct":true,"problem_source":"gsm8k"}`,
	}, "\n")+"\n"), 0o644)
	cfg := filepath.Join(dir, "steps.yaml")
	os.WriteFile(cfg, []byte("steps:\n  - filter: correct\n  - filter: multi_boxed\n"), 0o644)
	out := filepath.Join(dir, "sft.jsonl")
	_, stderr, err := run(t, "curate", "--input", in, "--output", out, "--config", cfg, "--format", "messages",
		"--removed", filepath.Join(dir, "removed.jsonl"), "--report", filepath.Join(dir, "report.json"), "--log-level", "error")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	b, _ := os.ReadFile(out)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], `{"messages":[{"role":"user","content":"What is 1+1?"}`) {
		t.Fatalf("output %s", b)
	}
	var rep struct {
		RowsIn, RowsOut int `json:"-"`
		Funnel          []struct {
			Step    string
			Removed int
		}
	}
	rb, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	json.Unmarshal(rb, &rep)
	if len(rep.Funnel) != 2 || rep.Funnel[0].Removed != 1 || rep.Funnel[1].Removed != 1 {
		t.Fatalf("report %s", rb)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.md")); err != nil {
		t.Fatal("no markdown report")
	}
	rm, _ := os.ReadFile(filepath.Join(dir, "removed.jsonl"))
	if !strings.Contains(string(rm), `"removed_by":"multi_boxed"`) || !strings.Contains(string(rm), `"removed_reason":"incorrect answer"`) {
		t.Fatalf("removed %s", rm)
	}

	// Bad config and bad input: clear errors naming line, nothing written.
	os.WriteFile(cfg, []byte("steps:\n  - filter: correct\n  - dedupe: {}\n"), 0o644)
	_, stderr, err = run(t, "curate", "--input", in, "--output", filepath.Join(dir, "x.jsonl"), "--config", cfg)
	if err == nil || !strings.Contains(stderr, "line 3") || !strings.Contains(stderr, `unknown step "dedupe"`) {
		t.Fatalf("bad config: %v %s", err, stderr)
	}
	os.WriteFile(cfg, []byte("steps:\n  - filter: correct\n"), 0o644)
	os.WriteFile(in, []byte("{\"id\":\"a\"}\n{oops\n"), 0o644)
	_, stderr, err = run(t, "curate", "--input", in, "--output", filepath.Join(dir, "x.jsonl"), "--config", cfg)
	if err == nil || !strings.Contains(stderr, "in.jsonl:2:") {
		t.Fatalf("bad input: %v %s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.jsonl")); err == nil {
		t.Fatal("output written despite errors")
	}
}

// TestCurateTokenLengthAndNeMoFormat filters by token counts from a real
// tokenizer and renders the nemo format with its chat template.
func TestCurateTokenLengthAndNeMoFormat(t *testing.T) {
	tok := filepath.Join("..", "..", "..", "shared", "fixtures", "tokenizers", "bpe_qwen2")
	if _, err := os.Stat(tok); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tokenizer fixture missing in CI")
		}
		t.Skip("no tokenizer fixture")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(strings.Join([]string{
		`{"id":"short","problem":"1+1?","generation":"It is \\boxed{2}.","expected_answer":"2"}`,
		`{"id":"long","problem":"2+2?","generation":"` + strings.Repeat("four ", 400) + `\\boxed{4}","expected_answer":"4"}`,
	}, "\n")+"\n"), 0o644)
	cfg := filepath.Join(dir, "steps.yaml")
	os.WriteFile(cfg, []byte("steps:\n  - filter: {field: solution, max_tokens: 100}\n"), 0o644)
	out := filepath.Join(dir, "out.jsonl")
	if _, stderr, err := run(t, "curate", "--input", in, "--output", out, "--config", cfg, "--tokenizer", tok, "--format", "nemo"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n`) || !strings.Contains(lines[0], `"output":"It is \\boxed{2}.<|im_end|>`) {
		t.Fatalf("nemo output:\n%s", b)
	}
	rm, _ := os.ReadFile(filepath.Join(dir, "out.removed.jsonl"))
	if !strings.Contains(string(rm), `tokens > 100`) {
		t.Fatalf("removed: %s", rm)
	}
	// Without a tokenizer, a token filter is a clear error.
	_, stderr, err := run(t, "curate", "--input", in, "--output", filepath.Join(dir, "x.jsonl"), "--config", cfg)
	if err == nil || !strings.Contains(stderr, "need a tokenizer") {
		t.Fatalf("%v %s", err, stderr)
	}
}

// TestCurateChecksFormatFirst: a bad --format stops curate before it reads
// a row (it used to fail after every step had run).
func TestCurateChecksFormatFirst(t *testing.T) {
	dir := t.TempDir()
	in := writeInput(t, dir, 3)
	cfg := filepath.Join(dir, "steps.yaml")
	os.WriteFile(cfg, []byte("steps:\n  - where: 'true'\n"), 0o644)
	out := filepath.Join(dir, "out.jsonl")
	_, stderr, err := run(t, "curate", "--input", in, "--output", out, "--config", cfg, "--format", "bogus")
	if err == nil || !strings.Contains(stderr, `unknown export format "bogus"`) || strings.Contains(stderr, "read ") {
		t.Fatalf("%v: %s", err, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("curate left files behind: %v", entries)
	}
}
