package synth

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// Judge modes.
const (
	JudgeMath         = "math"         // LLM judgement of a math answer
	JudgePairwise     = "pairwise"     // which of two responses is better, asked in both orders
	JudgeInstructions = "instructions" // IFEval checks, no model
)

// JudgeOptions configure Judge.
type JudgeOptions struct {
	Common
	Input, Output string
	Mode          string // JudgeMath (default), JudgePairwise or JudgeInstructions
	// ResponseField names the response judged in math and instructions
	// modes (default "generation").
	ResponseField string
	// Prompt replaces the built-in judge/math or judge/pairwise.
	Prompt *prompt.Prompt
	// MaxPairs caps the pairs judged per prompt when pairwise input holds k
	// responses per prompt (default 0: all k(k-1)/2).
	MaxPairs int
}

// candidates returns the pairwise input: o.Input when its rows are pairs,
// else a file of every pair of each prompt's responses.
func (o *JudgeOptions) candidates(ctx context.Context, rep *Report) (string, error) {
	in, err := record.Open(o.Input)
	if err != nil {
		return "", err
	}
	pairs := true
	if in.Next() {
		pairs = in.Row().Has("response_a")
	}
	in.Close()
	if err := in.Err(); err != nil {
		return "", err
	}
	if pairs {
		return o.Input, nil
	}
	wd, err := o.workDir(o.Output)
	if err != nil {
		return "", err
	}
	rows, err := readAll(o.Input)
	if err != nil {
		return "", err
	}
	sortRows(rows)
	out := filepath.Join(wd, "01-candidate-pairs.jsonl")
	err = writeRows(ctx, rep, "candidate-pairs", out, func(emit func(*record.Row) error) error {
		for start := 0; start < len(rows); {
			end := start
			for end < len(rows) && rows[end].ID() == rows[start].ID() {
				end++
			}
			var g []*record.Row
			for _, r := range rows[start:end] {
				if _, ok := r.Text(o.ResponseField); ok && !r.Has("error") {
					g = append(g, r)
				}
			}
			start = end
			n := 0
			for i := 0; i < len(g); i++ {
				for j := i + 1; j < len(g); j++ {
					if o.MaxPairs > 0 && n >= o.MaxPairs {
						break
					}
					c := inherit(g[i], g[i].ID(), perResponse...)
					if !c.Has("prompt") {
						for _, k := range []string{"problem", "question"} {
							if t, ok := g[i].Text(k); ok {
								c.Set("prompt", t)
								break
							}
						}
					}
					a, _ := g[i].Text(o.ResponseField)
					b, _ := g[j].Text(o.ResponseField)
					sa, _ := g[i].Int("sample")
					sb, _ := g[j].Int("sample")
					c.Set("response_a", a)
					c.Set("response_b", b)
					c.Set("sample_a", sa)
					c.Set("sample_b", sb)
					c.Set("sample", n)
					if err := emit(c); err != nil {
						return err
					}
					n++
				}
			}
		}
		return nil
	})
	return out, err
}

// Judge adds a verdict to every row (keyed by (id, sample), so solutions from
// generate can be judged directly).
//
// Math mode (NeMo-Skills' LLM judge): the row's predicted_answer (else the
// answer extracted from the response) is compared with expected_answer.
// With no answer, the judgement is "No" without a call; when the grader
// finds the answers equal, or both are plain numbers (rationals or
// decimals), the grader decides without a call; otherwise the model judges and its last "Judgement:"
// line decides. Fields: judgement (the text), judge_correct, judged_by
// ("no-answer", "grader" or "llm"), and judge_note when the model's answer
// had no Judgement line (judge_correct is then false).
//
// Pairwise mode: rows with prompt (or problem), response_a and response_b
// are judged twice, A/B and B/A. Fields: judgement_ab, judgement_ba, and
// preferred: "a", "b", "tie", or "inconsistent" when the two orders
// disagree (or a verdict is missing). When the input rows are instead k
// responses per prompt (rows sharing an id, one per sample, without
// response_a), every pair of a prompt's responses (at most MaxPairs) becomes
// one row first, keyed (prompt id, pair index) with sample_a and sample_b;
// Pairs with PairsByJudge then picks one pair per prompt from the verdicts.
//
// Instructions mode: rows with instruction_id_list and kwargs (IFEval) get
// follow_instruction_list, follow_all_instructions and is_correct; ids this
// package cannot verify are listed in unverified_instructions and left out.
// With instruction_scope "all_turns" and messages (a dialogue), every
// assistant turn must follow an instruction.
func Judge(ctx context.Context, o JudgeOptions) (*Report, error) {
	start := time.Now()
	if o.Input == "" || o.Output == "" {
		return nil, fmt.Errorf("judge: input and output are required")
	}
	if o.Mode == "" {
		o.Mode = JudgeMath
	}
	if o.ResponseField == "" {
		o.ResponseField = "generation"
	}
	rep := newReport(o.Output)
	var fn func(context.Context, *record.Row) error
	switch o.Mode {
	case JudgeMath:
		p := orDefault(o.Prompt, "judge/math")
		fn = func(ctx context.Context, r *record.Row) error { return o.judgeMath(ctx, rep, p, r) }
	case JudgePairwise:
		p := orDefault(o.Prompt, "judge/pairwise")
		fn = func(ctx context.Context, r *record.Row) error { return o.judgePair(ctx, p, r) }
	case JudgeInstructions:
		fn = func(_ context.Context, r *record.Row) error { return o.judgeInstructions(r) }
	default:
		return nil, fmt.Errorf("judge: mode %q: want math, pairwise or instructions", o.Mode)
	}
	if o.Backend == nil && o.Mode != JudgeInstructions {
		return nil, errNoBackend
	}
	input := o.Input
	if o.Mode == JudgePairwise {
		var err error
		if input, err = o.candidates(ctx, rep); err != nil {
			return rep, err
		}
	}
	if err := o.mapRows(ctx, rep, "judge-"+o.Mode, input, o.Output, fn); err != nil {
		return rep, err
	}
	return rep, o.finish(rep, start, rep.lastStage())
}

// request renders a judge prompt for the i-th call about row r.
func (o *JudgeOptions) request(r *record.Row, p *prompt.Prompt, f fieldMap, i int) (*backend.Request, error) {
	req := o.Params
	var err error
	if o.Completion {
		req.Prompt, err = p.Text(f)
	} else {
		req.Messages, err = p.Messages(f)
	}
	if err != nil {
		return nil, fmt.Errorf("judge prompt %s: %w", p.Name, err)
	}
	req.Stop = append(append([]string(nil), req.Stop...), p.Config.Stop...)
	k := record.KeyOf(r)
	req.Seed, req.HasSeed = record.Seed(k.ID, k.Sample*2+i, o.Seed), true
	return &req, nil
}

// numericRules are the grader's rules for two plain numbers; their "not
// equal" is final.
var numericRules = map[string]bool{"exact rational": true, "decimal tolerance": true}

func (o *JudgeOptions) judgeMath(ctx context.Context, rep *Report, p *prompt.Prompt, r *record.Row) error {
	gold, ok := r.Text("expected_answer")
	if !ok {
		return fmt.Errorf("row has no expected_answer")
	}
	pred, ok := r.Text("predicted_answer")
	if !ok || r.Raw("predicted_answer")[0] == 'n' {
		resp, _ := r.Text(o.ResponseField)
		pred, ok = grade.Extract(resp)
	}
	pred = strings.TrimSpace(pred)
	set := func(text string, correct bool, by string) {
		r.Set("judgement", text)
		r.Set("judge_correct", correct)
		r.Set("judged_by", by)
		rep.count("judged_by_" + by)
	}
	if !ok || pred == "" {
		set("Reasoning: no answer was given.\nJudgement: No", false, "no-answer")
		return nil
	}
	v := grade.Equal(gold, pred, grade.DefaultOptions())
	if v.Equal {
		set(fmt.Sprintf("Reasoning: the grader finds the answers equal (%s).\nJudgement: Yes", v.Rule), true, "grader")
		return nil
	}
	if numericRules[v.Rule] {
		// Both answers are plain numbers: no judge would see them as equal.
		set(fmt.Sprintf("Reasoning: the answers are different numbers (%s).\nJudgement: No", v.Rule), false, "grader")
		return nil
	}
	f := fieldMap{"expected_answer": gold, "predicted_answer": pred}
	for _, k := range []string{"problem", "question"} {
		if t, ok := r.Text(k); ok {
			f["problem"] = t
			break
		}
	}
	req, err := o.request(r, p, f, 0)
	if err != nil {
		return err
	}
	resp, err := o.Backend.Generate(ctx, req)
	if err != nil {
		return err
	}
	yes, found := ParseJudgement(resp.Text)
	set(resp.Text, yes, "llm")
	if !found {
		r.Set("judge_note", "no Judgement: Yes/No line")
		rep.count("judgement_unparsed")
	}
	return nil
}

var judgementRE = regexp.MustCompile(`(?i)judg(?:e)?ment\s*:\s*\**\s*(yes|no)\b`)

// ParseJudgement reads the last "Judgement: Yes/No" of a judge's answer;
// found is false when there is none.
func ParseJudgement(text string) (yes, found bool) {
	m := judgementRE.FindAllStringSubmatch(text, -1)
	if m == nil {
		return false, false
	}
	return strings.EqualFold(m[len(m)-1][1], "yes"), true
}

var verdictRE = regexp.MustCompile(`\[\[([ABC])\]\]`)

// ParseVerdict reads the last [[A]], [[B]] or [[C]] (tie) of a pairwise
// judge's answer; "" when there is none.
func ParseVerdict(text string) string {
	m := verdictRE.FindAllStringSubmatch(text, -1)
	if m == nil {
		return ""
	}
	return m[len(m)-1][1]
}

func (o *JudgeOptions) judgePair(ctx context.Context, p *prompt.Prompt, r *record.Row) error {
	q, ok := r.Text("prompt")
	if !ok {
		if q, ok = r.Text("problem"); !ok {
			return fmt.Errorf("row has no prompt or problem")
		}
	}
	a, okA := r.Text("response_a")
	b, okB := r.Text("response_b")
	if !okA || !okB {
		return fmt.Errorf("row needs response_a and response_b")
	}
	var verdicts [2]string
	for i, pair := range [2][2]string{{a, b}, {b, a}} {
		req, err := o.request(r, p, fieldMap{"prompt": q, "response_a": pair[0], "response_b": pair[1]}, i)
		if err != nil {
			return err
		}
		resp, err := o.Backend.Generate(ctx, req)
		if err != nil {
			return fmt.Errorf("order %s: %w", [2]string{"A/B", "B/A"}[i], err)
		}
		r.Set([2]string{"judgement_ab", "judgement_ba"}[i], resp.Text)
		verdicts[i] = ParseVerdict(resp.Text)
	}
	// In the second call A is response_b: map its verdict back.
	swap := map[string]string{"A": "B", "B": "A", "C": "C"}
	first, second := verdicts[0], swap[verdicts[1]]
	preferred := "inconsistent"
	if first != "" && first == second {
		preferred = map[string]string{"A": "a", "B": "b", "C": "tie"}[first]
	}
	r.Set("preferred", preferred)
	return nil
}

func (o *JudgeOptions) judgeInstructions(r *record.Row) error {
	var ids []string
	if err := r.Decode("instruction_id_list", &ids); err != nil {
		return fmt.Errorf("instruction_id_list: %w", err)
	}
	var kwargs []map[string]any
	if r.Has("kwargs") {
		dec := json.NewDecoder(strings.NewReader(string(r.Raw("kwargs"))))
		dec.UseNumber()
		if err := dec.Decode(&kwargs); err != nil {
			return fmt.Errorf("kwargs: %w", err)
		}
	}
	// The responses checked: the response field, or with instruction_scope
	// "all_turns" every assistant turn of the row's messages.
	resp, _ := r.Text(o.ResponseField)
	responses := []string{resp}
	if scope, _ := r.String("instruction_scope"); scope == "all_turns" && r.Has("messages") {
		var msgs []backend.Message
		if err := r.Decode("messages", &msgs); err != nil {
			return fmt.Errorf("messages: %w", err)
		}
		responses = responses[:0]
		for _, m := range msgs {
			if m.Role == "assistant" {
				responses = append(responses, m.Content)
			}
		}
	}
	var follow []bool
	var unverified []string
	all := true
	for i, id := range ids {
		var kw map[string]any
		if i < len(kwargs) {
			kw = kwargs[i]
		}
		if kw == nil {
			kw = map[string]any{}
		}
		if id == "combination:repeat_prompt" && kw["prompt_to_repeat"] == nil {
			kw["prompt_to_repeat"], _ = r.Text("base_prompt")
		}
		ok := true
		var err error
		for _, resp := range responses {
			var turnOK bool
			if turnOK, err = CheckInstruction(id, kw, resp); err != nil {
				break
			}
			ok = ok && turnOK
		}
		if err != nil {
			unverified = append(unverified, id)
			continue
		}
		follow = append(follow, ok)
		all = all && ok
	}
	if follow == nil {
		follow = []bool{}
	}
	r.Set("follow_instruction_list", follow)
	r.Set("follow_all_instructions", all)
	r.Set("is_correct", all)
	if len(unverified) > 0 {
		r.Set("unverified_instructions", unverified)
	}
	return nil
}
