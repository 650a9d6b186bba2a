package main

import (
	"encoding/json"
	"fmt"
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
	want := map[string]string{
		"a": `"predicted_answer":"\\frac{1}{2}","is_correct":true`,
		"b": `"predicted_answer":"9","is_correct":true`,
		"c": `"predicted_answer":null,"is_correct":false`,
		"d": `"predicted_answer":"7","is_correct":false`,
	}
	rows := rowsByID(t, out)
	for id, w := range want {
		if !strings.Contains(rows[id], w) {
			t.Errorf("row %s lacks %s: %s", id, w, rows[id])
		}
	}
	// --guess-answer takes the last number of prose.
	out2 := filepath.Join(dir, "out2.jsonl")
	run(t, "grade", "--input", in, "--output", out2, "--guess-answer")
	if r := rowsByID(t, out2)["c"]; !strings.Contains(r, `"predicted_answer":"4","is_correct":true`) {
		t.Errorf("guess: %s", r)
	}
	// A named policy does the same and is recorded on the row; a flag
	// overrides one part of it; an unknown policy is refused.
	out3 := filepath.Join(dir, "out3.jsonl")
	if _, stderr, err := run(t, "grade", "--input", in, "--output", out3, "--policy", "math-verify"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if r := rowsByID(t, out3)["c"]; !strings.Contains(r, `"predicted_answer":"4","is_correct":true,"grade_policy":"math-verify"`) {
		t.Errorf("math-verify: %s", r)
	}
	if _, stderr, err := run(t, "grade", "check", "--policy", "strict", "0.5", "1/2"); err != nil {
		t.Errorf("strict 0.5 = 1/2 (exact): %v %s", err, stderr)
	}
	if _, _, err := run(t, "grade", "check", "--policy", "strict", "--reduced-fractions=false", "649", "3245/5"); err != nil {
		t.Errorf("strict with --reduced-fractions=false: %v", err)
	}
	if _, _, err := run(t, "grade", "check", "--policy", "strict", "649", "3245/5"); err == nil {
		t.Error("strict accepted an unreduced fraction")
	}
	if _, stderr, err := run(t, "grade", "check", "--policy", "lenient", "1", "1"); err == nil || !strings.Contains(stderr, "want default, math-verify, nemo-skills, strict") {
		t.Errorf("unknown policy: %v %s", err, stderr)
	}
	// A rerun skips what the output holds; a shard takes its slice.
	if _, stderr, err := run(t, "grade", "--input", in, "--output", out); err != nil || !strings.Contains(stderr, "graded 0 rows") {
		t.Errorf("rerun: %v %s", err, stderr)
	}
	n := 0
	for i := range 2 {
		o := filepath.Join(dir, fmt.Sprintf("shard%d.jsonl", i))
		if _, stderr, err := run(t, "grade", "--input", in, "--output", o, "--shard", fmt.Sprintf("%d/2", i), "--concurrency", "1"); err != nil {
			t.Fatalf("%v %s", err, stderr)
		}
		n += len(rowsByID(t, o))
	}
	if n != 4 {
		t.Errorf("shards hold %d rows, want 4", n)
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

// rowsByID reads a JSONL output into its lines keyed by the rows' id.
func rowsByID(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct{ ID string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rows[r.ID] = line
	}
	return rows
}
