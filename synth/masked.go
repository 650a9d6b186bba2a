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
	rows, err := readAll(gen)
	if err != nil {
		return rep, err
	}
	sortRows(rows)
	var groups [][]*record.Row
	for i, r := range rows {
		if i == 0 || r.ID() != rows[i-1].ID() {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], r)
	}
	err = writeRows(ctx, rep, "masked-select", o.Output, func(emit func(*record.Row) error) error {
		for _, g := range groups {
			out, ok := selectMasked(g, o.N)
			if !ok {
				rep.Counts["problems_pending"]++
				continue
			}
			src, _ := out.String("masked_solution_source")
			rep.Counts["source_"+src]++
			if err := emit(out); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	return rep, o.finish(rep, start, rep.lastStage())
}

// selectMasked picks the masked solution of one problem from its candidate
// rows; ok is false while a candidate is missing or failed.
func selectMasked(g []*record.Row, n int) (*record.Row, bool) {
	if len(g) < n {
		return nil, false
	}
	for _, r := range g {
		if r.Has("error") {
			return nil, false
		}
	}
	ref, _ := g[0].Text("solution")
	problem, _ := g[0].Text("problem")
	answer, hasAnswer := g[0].Text("expected_answer")
	if !hasAnswer {
		answer, hasAnswer = grade.Extract(ref)
	}
	lo, hi := 0.5*float64(runeLen(ref)), 1.5*float64(runeLen(ref))
	type cand struct {
		row      *record.Row
		text     string
		digits   int
		distance float64 // how far outside the length window
	}
	var usable []cand
	for _, r := range g {
		text, _ := r.Text("generation")
		text = strings.TrimSpace(text)
		fr, _ := r.String("finish_reason")
		if text == "" || fr == "length" || isRefusal(text) {
			continue
		}
		if hasAnswer && revealsAnswer(text, answer, problem) {
			continue
		}
		l := float64(runeLen(text))
		d := 0.0
		if l < lo {
			d = lo - l
		} else if l > hi {
			d = l - hi
		}
		usable = append(usable, cand{r, text, countDigits(text), d})
	}
	out := g[0].Clone()
	for _, k := range []string{"generation", "sample", "finish_reason", "num_generated_tokens"} {
		out.Delete(k)
	}
	out.Set("masked_candidates", fmt.Sprintf("%d/%d", len(usable), len(g)))
	var best *cand
	for i := range usable {
		c := &usable[i]
		switch {
		case best == nil:
			best = c
		case (c.distance == 0) != (best.distance == 0):
			if c.distance == 0 {
				best = c
			}
		case c.distance == 0 && c.digits < best.digits:
			best = c
		case c.distance > 0 && c.distance < best.distance:
			best = c
		}
	}
	if best == nil {
		out.Set("reference_masked_solution", ref)
		out.Set("masked_solution_source", MaskedOriginal)
		return out, true
	}
	out.Set("reference_masked_solution", best.text)
	src := MaskedChosen
	if best.distance > 0 {
		src = MaskedAnyLen
	}
	out.Set("masked_solution_source", src)
	s, _ := best.row.Int("sample")
	out.Set("masked_sample", s)
	return out, true
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
