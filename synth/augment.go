package synth

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// AugmentOptions configure Augment.
type AugmentOptions struct {
	Common
	Input  string // seed problems (rows with `problem`)
	Output string // new problems
	// Dropped receives the new problems that were left out, with
	// `dropped_reason` (default OUTPUT.dropped.jsonl).
	Dropped string
	// Source is "math" (a new problem inspired by the seed that needs
	// another approach) or "gsm8k" (a similar problem). Default "math".
	Source string
	// N is the number of new problems asked for per seed (default 4).
	N int
	// MaxSimilarity drops a new problem whose character 5-gram Jaccard
	// similarity to its seed reaches it (default 0.7). For MATH seeds
	// digits are masked first, so a copy with other numbers is a near-copy.
	MaxSimilarity float64
	// Prompt replaces the built-in augment/math or augment/gsm8k.
	Prompt *prompt.Prompt
}

// seedFields are fields of a seed that describe the seed, not a new
// problem; new rows carry them with a seed_ prefix.
var seedFields = map[string]bool{"id": true, "problem": true, "question": true, "expected_answer": true,
	"answer": true, "solution": true, "generated_solution": true, "reference_solution": true,
	"problem_source": true, "predicted_answer": true, "is_correct": true}

// Augment asks for N new problems per seed problem (OpenMathInstruct-2) and
// writes one row per new problem: id (SEED-augK), problem, problem_source
// ("augmented_math" or "augmented_gsm8k"), seed_id, seed_problem, and the
// seed's other fields (those that describe the seed, like its answer, with
// a seed_ prefix). Near-copies of the seed, repeats of another new problem
// of the same seed, empty answers, refusals and truncated answers go to
// Dropped with `dropped_reason`.
func Augment(ctx context.Context, o AugmentOptions) (*Report, error) {
	start := time.Now()
	if o.Backend == nil {
		return nil, errNoBackend
	}
	if o.Input == "" || o.Output == "" {
		return nil, fmt.Errorf("augment: input and output are required")
	}
	if o.Source == "" {
		o.Source = "math"
	}
	if o.Source != "math" && o.Source != "gsm8k" {
		return nil, fmt.Errorf("augment: source %q: want math or gsm8k", o.Source)
	}
	if o.N <= 0 {
		o.N = 4
	}
	if o.MaxSimilarity <= 0 {
		o.MaxSimilarity = 0.7
	}
	if o.Dropped == "" {
		o.Dropped = strings.TrimSuffix(o.Output, ".jsonl") + ".dropped.jsonl"
	}
	wd, err := o.workDir(o.Output)
	if err != nil {
		return nil, err
	}
	rep := newReport(o.Output)
	gen := filepath.Join(wd, "01-generations.jsonl")
	err = o.run(ctx, rep, genStep{
		name: "augment", input: o.Input, output: gen, samples: o.N,
		prompt: orDefault(o.Prompt, "augment/"+o.Source),
		prepare: func(r *record.Row) error {
			if !r.Has("problem") {
				q, ok := r.Text("question")
				if !ok {
					return fmt.Errorf("row has neither `problem` nor `question`")
				}
				r.Set("problem", q)
			}
			return nil
		},
	})
	if err != nil {
		return rep, err
	}
	// Pass 1: the smallest sample of each (seed, problem) that survives the
	// other filters keeps it; later passes see the other ones as repeats.
	owner := map[string]int{}
	err = eachRow(gen, func(r *record.Row) error {
		if nr, reason, ok := o.check(r); ok && reason == "" {
			k := record.KeyOf(r)
			key := k.ID + "\x00" + normSpace(textOf(nr, "problem"))
			if prev, seen := owner[key]; !seen || k.Sample < prev {
				owner[key] = k.Sample
			}
		} else if !ok {
			rep.count("request_errors_pending") // retried by a rerun with RetryErrors
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	verdict := func(r *record.Row) (*record.Row, string, bool) {
		nr, reason, ok := o.check(r)
		if ok && reason == "" {
			k := record.KeyOf(r)
			if first := owner[k.ID+"\x00"+normSpace(textOf(nr, "problem"))]; first != k.Sample {
				reason = fmt.Sprintf("repeats %s-aug%d", k.ID, first)
			}
		}
		return nr, reason, ok
	}
	err = writeRows(ctx, rep, "augment-dropped", o.Dropped, func(emit func(*record.Row) error) error {
		return eachRow(gen, func(r *record.Row) error {
			nr, reason, ok := verdict(r)
			if !ok || reason == "" {
				return nil
			}
			rep.count("dropped_" + strings.Fields(reason)[0])
			nr.Set("dropped_reason", reason)
			return emit(nr)
		})
	})
	if err != nil {
		return rep, err
	}
	err = writeRows(ctx, rep, "augment-kept", o.Output, func(emit func(*record.Row) error) error {
		return eachRow(gen, func(r *record.Row) error {
			if nr, reason, ok := verdict(r); ok && reason == "" {
				return emit(nr)
			}
			return nil
		})
	})
	if err != nil {
		return rep, err
	}
	return rep, o.finish(rep, start, rep.lastStage())
}

// check builds the row of a new problem from its generation row and says
// why it is dropped ("" when kept, repeats aside); ok is false for a failed
// request.
func (o *AugmentOptions) check(r *record.Row) (nr *record.Row, reason string, ok bool) {
	if r.Has("error") {
		return nil, "", false
	}
	k := record.KeyOf(r)
	text, _ := r.Text("generation")
	seedProblem, _ := r.Text("problem")
	nr = o.newProblem(r, k, cleanProblem(text))
	fr, _ := r.String("finish_reason")
	np := textOf(nr, "problem")
	switch {
	case np == "":
		return nr, "empty", true
	case isRefusal(np):
		return nr, "refusal", true
	case fr == backend.FinishLength:
		return nr, "truncated (finish_reason length)", true
	}
	if sim := similarity(seedProblem, np, o.Source == "math"); sim >= o.MaxSimilarity {
		return nr, fmt.Sprintf("near-copy of the seed (similarity %.2f >= %.2f)", sim, o.MaxSimilarity), true
	}
	return nr, "", true
}

// textOf returns a text field, "" when missing.
func textOf(r *record.Row, key string) string {
	s, _ := r.Text(key)
	return s
}

// newProblem builds the row of one new problem from its generation row.
func (o *AugmentOptions) newProblem(r *record.Row, k record.Key, text string) *record.Row {
	nr := &record.Row{}
	nr.Set("id", fmt.Sprintf("%s-aug%d", k.ID, k.Sample))
	nr.Set("problem", text)
	nr.Set("problem_source", "augmented_"+o.Source)
	nr.Set("seed_id", k.ID)
	seedProblem, _ := r.Text("problem")
	nr.Set("seed_problem", seedProblem)
	skip := map[string]bool{"generation": true, "sample": true, "finish_reason": true, "num_generated_tokens": true}
	for _, key := range r.Keys() {
		switch {
		case skip[key] || key == "id" || key == "problem":
		case seedFields[key]:
			nr.SetRaw("seed_"+key, r.Raw(key))
		default:
			nr.SetRaw(key, r.Raw(key))
		}
	}
	return nr
}

var problemLabelRE = regexp.MustCompile(`(?i)^\s*(\*\*)?(new problem|problem)\s*:?\s*(\*\*)?\s*:?\s*`)

// cleanProblem trims a new problem: whitespace, a leading "New problem:"
// label, and anything after a solution heading the model added.
func cleanProblem(s string) string {
	s = strings.TrimSpace(s)
	s = problemLabelRE.ReplaceAllString(s, "")
	for _, cut := range []string{"\nSolution:", "\n**Solution", "\nSolution\n", "\n## Solution"} {
		if i := strings.Index(s, cut); i >= 0 {
			s = s[:i]
		}
	}
	return strings.TrimSpace(s)
}

var refusalRE = regexp.MustCompile(`(?i)^(i'm sorry|i am sorry|sorry,|i cannot|i can't|i can not|i won't|as an ai)`)

// isRefusal reports whether a text is the model declining the task.
func isRefusal(s string) bool { return refusalRE.MatchString(strings.TrimSpace(s)) }

// similarity is the Jaccard similarity of the character 5-gram sets of two
// texts after lower-casing and collapsing whitespace (and, with maskDigits,
// turning every digit into 0).
func similarity(a, b string, maskDigits bool) float64 {
	ga, gb := ngrams(a, maskDigits), ngrams(b, maskDigits)
	if len(ga) == 0 && len(gb) == 0 {
		return 1
	}
	inter := 0
	for g := range ga {
		if gb[g] {
			inter++
		}
	}
	return float64(inter) / float64(len(ga)+len(gb)-inter)
}

func ngrams(s string, maskDigits bool) map[string]bool {
	s = normSpace(s)
	if maskDigits {
		s = strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return '0'
			}
			return r
		}, s)
	}
	rs := []rune(s)
	const n = 5
	out := map[string]bool{}
	if len(rs) < n {
		if len(rs) > 0 {
			out[string(rs)] = true
		}
		return out
	}
	for i := 0; i+n <= len(rs); i++ {
		out[string(rs[i:i+n])] = true
	}
	return out
}
