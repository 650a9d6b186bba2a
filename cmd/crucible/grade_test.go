package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGradeCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(strings.Join([]string{
		`{"id":"a","generation":"so \\boxed{\\frac{1}{2}}","expected_answer":"0.5"}`,
		`{"id":"b","generation":"The answer is $9$.","expected_answer":"\\boxed{9}"}`,
		`{"id":"c","generation":"We get 3 and then 4, I think.","expected_answer":"4"}`,
		`{"id":"d","generation":"\\boxed{7}","expected_answer":"8"}`,
	}, "\n")+"\n"), 0o644)
	out := filepath.Join(dir, "out.jsonl")
	if _, stderr, err := run(t, "grade", "--input", in, "--output", out); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	b, _ := os.ReadFile(out)
	want := []string{
		`"predicted_answer":"\\frac{1}{2}","is_correct":true`,
		`"predicted_answer":"9","is_correct":true`,
		`"predicted_answer":null,"is_correct":false`,
		`"predicted_answer":"7","is_correct":false`,
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i, w := range want {
		if i >= len(lines) || !strings.Contains(lines[i], w) {
			t.Errorf("row %d lacks %s:\n%s", i, w, b)
		}
	}
	// --guess-answer takes the last number of prose.
	out2 := filepath.Join(dir, "out2.jsonl")
	run(t, "grade", "--input", in, "--output", out2, "--guess-answer")
	b, _ = os.ReadFile(out2)
	if !strings.Contains(strings.Split(string(b), "\n")[2], `"predicted_answer":"4","is_correct":true`) {
		t.Errorf("guess: %s", b)
	}
	// grade check: exit status carries the verdict.
	for _, c := range []struct {
		gold, pred, out string
		code            int
	}{{`\frac{1}{2}`, "0.5", "equal", 0}, {"1/2004!", "1/2006!", "not equal", 1}, {"$x=5$", `\boxed{5}`, "equal", 0}} {
		stdout, _, err := run(t, "grade", "check", c.gold, c.pred)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if strings.TrimSpace(stdout) != c.out || code != c.code {
			t.Errorf("check %s %s: %q exit %d", c.gold, c.pred, stdout, code)
		}
	}
}
