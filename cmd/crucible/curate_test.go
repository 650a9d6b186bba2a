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
