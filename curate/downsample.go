package curate

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/crucible-ml/crucible/record"
)

// DownsampleOptions configure Downsample.
type DownsampleOptions struct {
	// N is the number of rows to keep (0: no limit).
	N int
	// PerProblem caps the solutions kept per problem (0: no cap).
	PerProblem int
	// PreferCode orders each problem's code solutions (those with the code
	// tag) before its text solutions, so caps and round-robin take them
	// first.
	PreferCode bool
	// CodeOnlyWhenAny drops a problem's text solutions when it has at least
	// one code solution (OpenMathInstruct-1's any_code).
	CodeOnlyWhenAny bool
	CodeTag         string // default "<llm-code>"
	// Seed shuffles each problem's solutions (and nothing else) before
	// selection; 0 keeps input order.
	Seed uint64
}

// Downsample keeps at most N rows, fairly over problems: solution #1 of
// every problem, then #2 of every problem that has one, and so on
// (OpenMathInstruct-1's "fair" mode), so hard problems with few correct
// solutions are not crowded out by easy ones. Kept rows stay in input order.
func Downsample(d *Dataset, o DownsampleOptions) int {
	if o.CodeTag == "" {
		o.CodeTag = "<llm-code>"
	}
	order, byID := d.groups()
	keep := make([]bool, len(d.Rows))
	reason := make([]string, len(d.Rows))
	var queues [][]int
	for gi, id := range order {
		idx := append([]int(nil), byID[id]...)
		if o.Seed != 0 {
			r := rand.New(rand.NewPCG(o.Seed, uint64(gi)))
			r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		}
		isCode := func(i int) bool { return strings.Contains(d.Solution(d.Rows[i]), o.CodeTag) }
		if o.CodeOnlyWhenAny {
			var code []int
			for _, i := range idx {
				if isCode(i) {
					code = append(code, i)
				} else {
					reason[i] = "problem has code solutions"
				}
			}
			if len(code) > 0 {
				idx = code
			} else {
				for _, i := range idx {
					reason[i] = ""
				}
			}
		}
		if o.PreferCode {
			var code, text []int
			for _, i := range idx {
				if isCode(i) {
					code = append(code, i)
				} else {
					text = append(text, i)
				}
			}
			idx = append(code, text...)
		}
		if o.PerProblem > 0 && len(idx) > o.PerProblem {
			for _, i := range idx[o.PerProblem:] {
				reason[i] = fmt.Sprintf("over %d solutions per problem", o.PerProblem)
			}
			idx = idx[:o.PerProblem]
		}
		queues = append(queues, idx)
	}
	taken := 0
	for round := 0; ; round++ {
		progress := false
		for _, q := range queues {
			if round >= len(q) {
				continue
			}
			progress = true
			if o.N > 0 && taken >= o.N {
				reason[q[round]] = fmt.Sprintf("fair downsampling to %d rows", o.N)
				continue
			}
			keep[q[round]] = true
			taken++
		}
		if !progress {
			break
		}
	}
	i := 0
	return d.Keep("downsample", func(r *record.Row) (bool, string) {
		k, why := keep[i], reason[i]
		i++
		if k {
			return true, ""
		}
		if why == "" {
			why = "downsampled"
		}
		return false, why
	})
}
