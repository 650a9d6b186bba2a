package curate

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/crucible-ml/crucible/record"
)

// SyntheticOptions shape OpenMathInstruct-2-like rows for scale tests and
// benchmarks: problems with SamplesPerProblem solutions each, some wrong,
// some exact or near duplicates of the problem's first solution, some
// problems copied from a synthetic benchmark (see SyntheticBenchmark).
type SyntheticOptions struct {
	Rows              int
	SamplesPerProblem int    // default 8
	Seed              uint64 // default 1
}

// synthetic rates, per mille.
const (
	synWrong         = 250 // solution boxes a wrong answer
	synExactDup      = 50  // solution is the problem's first one, recased and respaced
	synNearDup       = 100 // solution is the problem's first one with one word changed
	synContaminated  = 5   // problem is a benchmark problem
	synMultiBoxed    = 20  // solution boxes two answers
	synRamble        = 200 // text after the boxed line (trimmed by `trim`)
	synNoReference   = 300 // problem has no expected_answer (aggregate gives one)
	synNoAnswer      = 10  // solution gives up without an answer
	synTruncated     = 10  // generation hit the length limit
	synCrossExact    = 10  // solution is the previous problem's first one
	synCrossNear     = 10  // solution is the previous problem's first one with one word changed
	synDupProblem    = 5   // problem repeats the previous problem's text under another id
	syntheticBenches = 500 // problems in SyntheticBenchmark
)

var synWords = strings.Fields(`the of a and to is we let number sum product value find compute since
therefore thus hence so then now note that each every total remaining left right side equation
solve solving substitute substituting gives yields simplify simplifying factor factoring expand
expression term terms square root cube integer integers prime divisor divisors multiple remainder
modulo triangle circle radius area perimeter angle degrees probability chance ways count counting
choose arrangement sequence series arithmetic geometric ratio difference first second third last
positive negative real complex function polynomial coefficient degree variable unknown known given
condition constraint minimum maximum least greatest smallest largest equal equals greater less than
twice half quarter percent price cost apples books students hours minutes days miles speed rate`)

func (o SyntheticOptions) norm() SyntheticOptions {
	if o.SamplesPerProblem <= 0 {
		o.SamplesPerProblem = 8
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// synSentence appends n random words and a number or two.
func synSentence(b []byte, r *rand.Rand, n int) []byte {
	for k := range n {
		if k > 0 {
			b = append(b, ' ')
		}
		if r.IntN(6) == 0 {
			b = strconv.AppendInt(b, int64(r.IntN(1000)), 10)
		} else {
			b = append(b, synWords[r.IntN(len(synWords))]...)
		}
	}
	return append(b, '.')
}

func synProblem(o SyntheticOptions, p int) string {
	switch k := synRand(o.Seed, p, -1, 1).IntN(1000); {
	case k < synContaminated:
		return synBenchProblem(o.Seed, p%syntheticBenches)
	case p > 0 && k < synContaminated+synDupProblem:
		return synProblem(o, p-1)
	}
	r := synRand(o.Seed, p, -1, 2)
	var b []byte
	for s := range 2 {
		if s > 0 {
			b = append(b, ' ')
		}
		b = synSentence(b, r, 12+r.IntN(8))
	}
	b = append(b, " What is the value?"...)
	return string(b)
}

// synSolution is solution s of problem p, before planted defects.
func synSolution(o SyntheticOptions, p, s int, answer int) string {
	r := synRand(o.Seed, p, s, 3)
	var b []byte
	for line := range 4 + r.IntN(3) {
		if line > 0 {
			b = append(b, '\n')
		}
		b = synSentence(b, r, 12+r.IntN(8))
	}
	b = append(b, "\nSo the answer is $\\boxed{"...)
	b = strconv.AppendInt(b, int64(answer), 10)
	b = append(b, "}$."...)
	return string(b)
}

func synRand(seed uint64, p, s, salt int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^uint64(salt)*0x9e3779b97f4a7c15, uint64(p)<<16|uint64(s+1)))
}

// SyntheticBenchmark returns the benchmark problems some synthetic problems
// copy (write them as JSONL with a `problem` field to decontaminate
// against).
func SyntheticBenchmark(seed uint64) []string {
	out := make([]string, syntheticBenches)
	for i := range out {
		out[i] = synBenchProblem(seed, i)
	}
	return out
}

func synBenchProblem(seed uint64, i int) string {
	r := synRand(seed, i, -2, 4)
	var b []byte
	b = append(b, "Benchmark question "...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ": "...)
	return string(synSentence(b, r, 20+r.IntN(10)))
}

// SyntheticRow returns row i of the synthetic set.
func SyntheticRow(o SyntheticOptions, i int) *record.Row {
	o = o.norm()
	p, s := i/o.SamplesPerProblem, i%o.SamplesPerProblem
	r := synRand(o.Seed, p, s, 5)
	answer, hasRef := synAnswer(o, p)
	src := "augmented_math"
	if hasRef {
		src = "math"
	}
	pred := answer
	if r.IntN(1000) < synWrong {
		pred = answer + 1 + r.IntN(9)
	}
	sol := synSolution(o, p, s, pred)
	switch k := r.IntN(1000); {
	case s > 0 && k < synExactDup:
		sol = strings.ToUpper(synSolution(o, p, 0, answer)) + "  \n"
		pred = answer
	case s > 0 && k < synExactDup+synNearDup:
		sol, pred = synReword(synSolution(o, p, 0, answer), "Indeed"), answer
	case p > 0 && s > 0 && k < synExactDup+synNearDup+synCrossExact:
		prev, _ := synAnswer(o, p-1)
		sol, pred = synSolution(o, p-1, 0, prev), answer
	case p > 0 && s > 0 && k < synExactDup+synNearDup+synCrossExact+synCrossNear:
		prev, _ := synAnswer(o, p-1)
		sol, pred = synReword(synSolution(o, p-1, 0, prev), "Clearly"), answer
	}
	noAnswer := r.IntN(1000) < synNoAnswer
	if noAnswer {
		sol = "I could not finish this one. " + strings.ReplaceAll(sol, "\\boxed", "")
	}
	if r.IntN(1000) < synMultiBoxed {
		sol += " Or maybe $\\boxed{" + strconv.Itoa(pred+1) + "}$."
	}
	if r.IntN(1000) < synRamble {
		sol += "\nLet me double check this once more with another approach.\nIt agrees."
	}
	row := &record.Row{}
	row.Set("id", fmt.Sprintf("omi2-%07d", p))
	row.Set("sample", s)
	row.Set("problem", synProblem(o, p))
	row.Set("generation", sol)
	if noAnswer {
		row.Set("predicted_answer", nil)
	} else {
		row.Set("predicted_answer", strconv.Itoa(pred))
	}
	if hasRef {
		row.Set("expected_answer", strconv.Itoa(answer))
		row.Set("is_correct", pred == answer)
	}
	row.Set("problem_source", src)
	row.Set("num_generated_tokens", len(sol)/4)
	if r.IntN(1000) < synTruncated {
		row.Set("finish_reason", "length")
	} else {
		row.Set("finish_reason", "stop")
	}
	return row
}

// synAnswer is problem p's answer and whether rows carry it.
func synAnswer(o SyntheticOptions, p int) (int, bool) {
	r := synRand(o.Seed, p, -1, 6)
	return r.IntN(10000), r.IntN(1000) >= synNoReference
}

// synReword replaces the first word of s.
func synReword(s, word string) string {
	if j := strings.IndexByte(s, ' '); j > 0 {
		return word + s[j:]
	}
	return s
}
