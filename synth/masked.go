package synth

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// MaskedOptions configure MaskedSolutions.
type MaskedOptions struct {
	Common
	Input  string // problems with a reference solution
	Output string
	// N is the number of masked candidates asked for per problem (default 4).
	N int
	// SolutionField names the reference solution (default "solution", else
	// "reference_solution" or "generated_solution").
	SolutionField string
	// Prompt replaces the built-in masked/solution (fields `problem`,
	// `solution`).
	Prompt *prompt.Prompt
}

// Sources of reference_masked_solution.
const (
	MaskedChosen   = "masked"            // a candidate within ±50% of the reference length
	MaskedAnyLen   = "masked-any-length" // a candidate outside that window (none inside)
	MaskedOriginal = "original"          // every candidate revealed the answer or failed
)

// MaskedSolutions asks for N masked versions of each reference solution
// (OpenMathInstruct-1: values the solution computes replaced by symbols) and
// writes one row per problem: the input row plus reference_masked_solution,
// masked_solution_source (MaskedChosen, MaskedAnyLen or MaskedOriginal),
// masked_sample and masked_candidates (usable/total). A candidate is unusable
// when it is empty, truncated, or still reveals the answer (its extracted
// answer equals the expected one, or it contains the answer as a number).
// Among usable candidates within ±50% of the reference length the one with
// the fewest digits wins (ties: the lower sample); with none in the window,
// the usable one closest to the window; with none usable, the original
// solution. Problems with a failed request are written once a rerun with
// RetryErrors has all their candidates.
func MaskedSolutions(ctx context.Context, o MaskedOptions) (*Report, error) {
	start := time.Now()
	if o.Backend == nil {
		return nil, errNoBackend
	}
	if o.Input == "" || o.Output == "" {
		return nil, fmt.Errorf("masked-solutions: input and output are required")
	}
	if o.N <= 0 {
		o.N = 4
	}
	wd, err := o.workDir(o.Output)
	if err != nil {
		return nil, err
	}
	rep := newReport(o.Output)
	gen := filepath.Join(wd, "01-candidates.jsonl")
	err = o.run(ctx, rep, genStep{
		name: "masked-candidates", input: o.Input, output: gen, samples: o.N,
		prompt: orDefault(o.Prompt, "masked/solution"),
		prepare: func(r *record.Row) error {
			if !r.Has("problem") {
				q, ok := r.Text("question")
				if !ok {
					return fmt.Errorf("row has neither `problem` nor `question`")
				}
				r.Set("problem", q)
			}
			if !r.Has("solution") {
				for _, f := range []string{o.SolutionField, "reference_solution", "generated_solution"} {
					if s, ok := r.Text(f); f != "" && ok {
						r.Set("solution", s)
						return nil
					}
				}
				return fmt.Errorf("row has no reference solution (`solution`, `reference_solution` or `generated_solution`)")
			}
			return nil
		},
	})
	if err != nil {
		return rep, err
	}
	// Pass 1: score every candidate and keep the best per problem; pass 2
	// writes each problem from its chosen candidate's row.
	sel := map[string]*maskedSelection{}
	err = eachRow(gen, func(r *record.Row) error {
		id := r.ID()
		if sel[id] == nil {
			sel[id] = &maskedSelection{minSample: -1}
		}
		sel[id].add(r)
		return nil
	})
	if err != nil {
		return rep, err
	}
	err = writeRows(ctx, rep, "masked-select", o.Output, func(emit func(*record.Row) error) error {
		return eachRow(gen, func(r *record.Row) error {
			st := sel[r.ID()]
			k := record.KeyOf(r)
			if st.n < o.N || st.failed {
				if k.Sample == st.minSample {
					rep.count("problems_pending")
				}
				return nil
			}
			if st.best != nil && k.Sample != st.best.sample || st.best == nil && k.Sample != st.minSample {
				return nil
			}
			out := st.row(r)
			src, _ := out.String("masked_solution_source")
			rep.count("source_" + src)
			return emit(out)
		})
	})
	if err != nil {
		return rep, err
	}
	return rep, o.finish(rep, start, rep.lastStage())
}

// maskedCandidate is the score of one usable candidate.
type maskedCandidate struct {
	sample   int
	text     string
	digits   int
	distance float64 // how far outside the ±50% length window
}

// better reports whether c beats b: inside the length window beats
// outside; inside, fewer digits win; outside, the nearer one; ties go to
// the lower sample.
func (c *maskedCandidate) better(b *maskedCandidate) bool {
	switch {
	case b == nil:
		return true
	case (c.distance == 0) != (b.distance == 0):
		return c.distance == 0
	case c.distance == 0 && c.digits != b.digits:
		return c.digits < b.digits
	case c.distance > 0 && c.distance != b.distance:
		return c.distance < b.distance
	}
	return c.sample < b.sample
}

// maskedSelection accumulates one problem's candidates.
type maskedSelection struct {
	n, usable int
	failed    bool
	minSample int
	best      *maskedCandidate
}

func (st *maskedSelection) add(r *record.Row) {
	k := record.KeyOf(r)
	st.n++
	if st.minSample < 0 || k.Sample < st.minSample {
		st.minSample = k.Sample
	}
	if r.Has("error") {
		st.failed = true
		return
	}
	ref, _ := r.Text("solution")
	problem, _ := r.Text("problem")
	answer, hasAnswer := r.Text("expected_answer")
	if !hasAnswer {
		answer, hasAnswer = grade.Extract(ref)
	}
	text, _ := r.Text("generation")
	text = strings.TrimSpace(text)
	fr, _ := r.String("finish_reason")
	if text == "" || fr == "length" || isRefusal(text) || hasAnswer && revealsAnswer(text, answer, problem) {
		return
	}
	st.usable++
	lo, hi := 0.5*float64(runeLen(ref)), 1.5*float64(runeLen(ref))
	l := float64(runeLen(text))
	c := &maskedCandidate{sample: k.Sample, text: text, digits: countDigits(text)}
	if l < lo {
		c.distance = lo - l
	} else if l > hi {
		c.distance = l - hi
	}
	if c.better(st.best) {
		st.best = c
	}
}

// row makes the output row from one of the problem's candidate rows.
func (st *maskedSelection) row(r *record.Row) *record.Row {
	out := r.Clone()
	for _, k := range []string{"generation", "sample", "finish_reason", "num_generated_tokens"} {
		out.Delete(k)
	}
	out.Set("masked_candidates", fmt.Sprintf("%d/%d", st.usable, st.n))
	if st.best == nil {
		ref, _ := r.Text("solution")
		out.Set("reference_masked_solution", ref)
		out.Set("masked_solution_source", MaskedOriginal)
		return out
	}
	out.Set("reference_masked_solution", st.best.text)
	src := MaskedChosen
	if st.best.distance > 0 {
		src = MaskedAnyLen
	}
	out.Set("masked_solution_source", src)
	out.Set("masked_sample", st.best.sample)
	return out
}

// revealsAnswer reports whether a masked solution still gives the answer
// away: its final answer equals it, or the answer (a number that the
// problem does not state) appears in it.
func revealsAnswer(text, answer, problem string) bool {
	if pred, ok := grade.Extract(text); ok && grade.Equal(answer, pred, grade.DefaultOptions()).Equal {
		return true
	}
	a := strings.TrimSpace(answer)
	if isNumber(a) && !containsNumber(problem, a) {
		return containsNumber(text, a)
	}
	return false
}

func isNumber(s string) bool {
	s = strings.ReplaceAll(strings.TrimPrefix(s, "-"), ",", "")
	if s == "" {
		return false
	}
	dot := false
	for _, r := range s {
		switch {
		case r == '.' && !dot:
			dot = true
		case r < '0' || r > '9':
			return false
		}
	}
	return true
}

// numberTokens returns the numbers written in a text (digits with optional
// thousands commas and decimals).
func numberTokens(s string) []string {
	var out []string
	i := 0
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || (s[j] == '.' || s[j] == ',') && j+1 < len(s) && s[j+1] >= '0' && s[j+1] <= '9') {
			j++
		}
		out = append(out, strings.ReplaceAll(s[i:j], ",", ""))
		i = j
	}
	return out
}

func countDigits(s string) int {
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n++
		}
	}
	return n
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func containsNumber(text, n string) bool {
	for _, tok := range numberTokens(text) {
		if grade.Equal(n, tok, grade.DefaultOptions()).Equal {
			return true
		}
	}
	return false
}
