package synth

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/backend"
)

var studentRE = regexp.MustCompile(`Student answer: (.*)\s*$`)

// judgeScript judges math answers (crimson counts as red; purple gets an
// answer without a Judgement line; "lost" a server error) and pairs (it
// prefers the response holding GOOD; with two GOODs it always says A, so
// its verdicts disagree across orders; with TIE it says C).
func judgeScript(r chatReq) reply {
	p := r.last()
	if m := studentRE.FindStringSubmatch(p); m != nil {
		switch strings.TrimSpace(m[1]) {
		case "crimson":
			return reply{text: "Reasoning: crimson is a shade of red.\nJudgement: Yes"}
		case "blue":
			return reply{text: "Reasoning: different colours.\n\nJudgement: **No**"}
		case "purple":
			return reply{text: "Hard to say."}
		case "lost":
			return reply{status: http.StatusBadRequest}
		}
	}
	if i := strings.Index(p, "[response A]\n"); i >= 0 {
		j := strings.Index(p, "[response B]\n")
		a, b := p[i:j], p[j:]
		switch {
		case strings.Contains(a, "TIE"):
			return reply{text: "Both fine.\nVerdict: [[C]]"}
		case strings.Contains(a, "GOOD") && strings.Contains(b, "GOOD"):
			return reply{text: "Verdict: [[A]]"}
		case strings.Contains(a, "GOOD"):
			return reply{text: "A is right. Verdict: [[A]]"}
		case strings.Contains(b, "GOOD"):
			return reply{text: "B is right. Verdict: [[B]]"}
		}
		return reply{text: "no idea"}
	}
	return reply{status: http.StatusBadRequest}
}

func TestJudgeMath(t *testing.T) {
	in := writeJSONL(t,
		`{"id":"p1","problem":"Half?","expected_answer":"\\frac{1}{2}","generation":"It is \\boxed{0.5}.","sample":0}`,
		`{"id":"p1","problem":"Half?","expected_answer":"\\frac{1}{2}","generation":"I do not know.","sample":1}`,
		`{"id":"p1","problem":"Half?","expected_answer":"\\frac{1}{2}","generation":"x","predicted_answer":"3","sample":2}`,
		`{"id":"p2","problem":"Colour?","expected_answer":"red","predicted_answer":"crimson","sample":0}`,
		`{"id":"p2","problem":"Colour?","expected_answer":"red","predicted_answer":"blue","sample":1}`,
		`{"id":"p2","problem":"Colour?","expected_answer":"red","predicted_answer":"purple","sample":2}`,
		`{"id":"p2","problem":"Colour?","expected_answer":"red","predicted_answer":"lost","sample":3}`,
	)
	s := newScripted(t, judgeScript)
	out := filepath.Join(t.TempDir(), "judged.jsonl")
	run := func() (*Report, error) {
		return Judge(context.Background(), JudgeOptions{Common: Common{Backend: s.backend()}, Input: in, Output: out})
	}
	rep, err := run()
	if err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	tests := []struct {
		key, by string
		correct bool
	}{
		{"p1#0", "grader", true},
		{"p1#1", "no-answer", false},
		{"p1#2", "grader", false},
		{"p2#0", "llm", true},
		{"p2#1", "llm", false},
		{"p2#2", "llm", false},
	}
	for _, tt := range tests {
		r := rows[tt.key]
		if by := str(t, r, "judged_by"); by != tt.by {
			t.Errorf("%s: judged by %s, want %s", tt.key, by, tt.by)
		}
		if c, _ := r.Bool("judge_correct"); c != tt.correct {
			t.Errorf("%s: judge_correct %v, want %v", tt.key, c, tt.correct)
		}
		if yes, _ := ParseJudgement(str(t, r, "judgement")); yes != tt.correct {
			t.Errorf("%s: judgement text disagrees: %q", tt.key, str(t, r, "judgement"))
		}
	}
	if !rows["p2#2"].Has("judge_note") {
		t.Errorf("a judgement without a Judgement line should say so")
	}
	if !rows["p2#3"].Has("error") || rep.Errors != 1 {
		t.Errorf("the failed call should be recorded: %s", rows["p2#3"].AppendJSON(nil))
	}
	if s.callCount() != 4 {
		t.Errorf("%d calls, want 4 (the grader decides the others)", s.callCount())
	}
	checkResume(t, s, run)
}

func TestJudgeMathInterrupted(t *testing.T) {
	var lines []string
	for _, a := range []string{"crimson", "blue", "purple", "lost", "crimson", "blue"} {
		for s := range 2 {
			lines = append(lines, `{"id":"`+a+`","problem":"Colour?","expected_answer":"red","predicted_answer":"`+a+`","sample":`+string(rune('0'+s))+`}`)
		}
	}
	lines[8] = strings.Replace(lines[8], `"id":"crimson"`, `"id":"crimson2"`, 1)
	lines[9] = strings.Replace(lines[9], `"id":"crimson"`, `"id":"crimson2"`, 1)
	lines[10] = strings.Replace(lines[10], `"id":"blue"`, `"id":"blue2"`, 1)
	lines[11] = strings.Replace(lines[11], `"id":"blue"`, `"id":"blue2"`, 1)
	in := writeJSONL(t, lines...)
	checkInterrupted(t, judgeScript, 4, []string{"j.jsonl"}, func(ctx context.Context, be backend.Backend, dir string) error {
		_, err := Judge(ctx, JudgeOptions{Common: Common{Backend: be, Concurrency: 2}, Input: in, Output: filepath.Join(dir, "j.jsonl")})
		return err
	})
}

func TestJudgePairwise(t *testing.T) {
	in := writeJSONL(t,
		`{"id":"x1","prompt":"Q1","response_a":"GOOD answer","response_b":"meh"}`,
		`{"id":"x2","prompt":"Q2","response_a":"meh","response_b":"GOOD answer"}`,
		`{"id":"x3","prompt":"Q3","response_a":"GOOD one","response_b":"GOOD two"}`,
		`{"id":"x4","prompt":"Q4","response_a":"TIE","response_b":"TIE"}`,
		`{"id":"x5","prompt":"Q5","response_a":"?","response_b":"?"}`,
	)
	s := newScripted(t, judgeScript)
	out := filepath.Join(t.TempDir(), "pj.jsonl")
	run := func() (*Report, error) {
		return Judge(context.Background(), JudgeOptions{Common: Common{Backend: s.backend()}, Input: in, Output: out, Mode: JudgePairwise})
	}
	if _, err := run(); err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	want := map[string]string{"x1#0": "a", "x2#0": "b", "x3#0": "inconsistent", "x4#0": "tie", "x5#0": "inconsistent"}
	for k, v := range want {
		if got := str(t, rows[k], "preferred"); got != v {
			t.Errorf("%s: preferred %q, want %q", k, got, v)
		}
		if !rows[k].Has("judgement_ab") || !rows[k].Has("judgement_ba") {
			t.Errorf("%s: both orders should be recorded", k)
		}
	}
	if s.callCount() != 10 {
		t.Errorf("%d calls, want 10 (two per pair)", s.callCount())
	}
	checkResume(t, s, run)

	// Pairs from the judged rows: ties and inconsistent verdicts make none.
	pairs := filepath.Join(t.TempDir(), "pairs.jsonl")
	rep, err := Pairs(context.Background(), PairsOptions{Input: out, Output: pairs, By: PairsByJudge})
	if err != nil {
		t.Fatal(err)
	}
	pr := readRows(t, pairs)
	if len(pr) != 2 || str(t, pr["x2#0"], "chosen") != "GOOD answer" || str(t, pr["x2#0"], "rejected") != "meh" ||
		str(t, pr["x1#0"], "prompt") != "Q1" {
		t.Errorf("judge pairs: %v", pr)
	}
	if rep.Counts["no_pair_inconsistent"] != 2 || rep.Counts["no_pair_tie"] != 1 {
		t.Errorf("counts %v", rep.Counts)
	}
}

func TestParseJudgement(t *testing.T) {
	tests := []struct {
		text       string
		yes, found bool
	}{
		{"Judgement: Yes", true, true},
		{"judgement: no.", false, true},
		{"Judgment: YES", true, true},
		{"Judgement: Yes\n...\nJudgement: No", false, true},
		{"**Judgement:** Yes", true, true},
		{"Judgement: **Yes**", true, true},
		{"Yes", false, false},
	}
	for _, tt := range tests {
		if yes, found := ParseJudgement(tt.text); yes != tt.yes || found != tt.found {
			t.Errorf("ParseJudgement(%q) = %v, %v; want %v, %v", tt.text, yes, found, tt.yes, tt.found)
		}
	}
}

var rankRE = regexp.MustCompile(`(?s)\[response A\]\nr=(\d).*\[response B\]\nr=(\d)`)

// TestJudgePairwiseFromResponses judges every pair of k responses per
// prompt and picks one pair per prompt from the verdicts.
func TestJudgePairwiseFromResponses(t *testing.T) {
	script := func(r chatReq) reply {
		p := r.last()
		if strings.Contains(p, "BIAS") {
			return reply{text: "Verdict: [[A]]"} // position bias: inconsistent
		}
		m := rankRE.FindStringSubmatch(p)
		if m == nil {
			return reply{status: http.StatusBadRequest}
		}
		if m[1] > m[2] {
			return reply{text: "Verdict: [[A]]"}
		}
		return reply{text: "Verdict: [[B]]"}
	}
	in := writeJSONL(t,
		`{"id":"p1","problem":"Q1","generation":"r=1","sample":0}`,
		`{"id":"p1","problem":"Q1","generation":"r=3","sample":1}`,
		`{"id":"p1","problem":"Q1","generation":"r=2","sample":2}`,
		`{"id":"p1","problem":"Q1","generation":"r=9","sample":3,"error":"timeout"}`,
		`{"id":"p2","problem":"Q2","generation":"BIAS one","sample":0}`,
		`{"id":"p2","problem":"Q2","generation":"BIAS two","sample":1}`,
		`{"id":"p3","problem":"Q3","generation":"r=5","sample":0}`,
	)
	s := newScripted(t, script)
	dir := t.TempDir()
	judged := filepath.Join(dir, "judged.jsonl")
	run := func() (*Report, error) {
		return Judge(context.Background(), JudgeOptions{Common: Common{Backend: s.backend()}, Input: in, Output: judged, Mode: JudgePairwise})
	}
	if _, err := run(); err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, judged)
	if len(rows) != 4 { // p1: 3 pairs, p2: 1 pair, p3: none
		t.Fatalf("judged %d pairs, want 4: %v", len(rows), rows)
	}
	if s.callCount() != 8 {
		t.Errorf("%d calls, want 8", s.callCount())
	}
	checkResume(t, s, run)
	pairs := filepath.Join(dir, "pairs.jsonl")
	rep, err := Pairs(context.Background(), PairsOptions{Input: judged, Output: pairs, By: PairsByJudge})
	if err != nil {
		t.Fatal(err)
	}
	pr := readRows(t, pairs)
	p1 := pr["p1#0"]
	if len(pr) != 1 || p1 == nil {
		t.Fatalf("pairs: %v", pr)
	}
	for k, v := range map[string]string{"prompt": "Q1", "chosen": "r=3", "rejected": "r=1", "pair_wins": "2-0 of 3 verdicts", "chosen_sample": "1", "rejected_sample": "0"} {
		if got := str(t, p1, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if rep.Counts["no_pair_no_consistent_verdict"] != 1 {
		t.Errorf("counts %v", rep.Counts)
	}
}
