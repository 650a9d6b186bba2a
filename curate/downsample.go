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
	order, byID := d.groups()
	reason := make([]string, len(d.Rows))
	queues := make([][]int, len(order))
	lens := make([]int, len(order))
	for gi, id := range order {
		queues[gi] = dsQueue(d, o, byID[id], gi, reason)
		lens[gi] = len(queues[gi])
	}
	return dsApply(d, o, queues, fairCounts(lens, o.N), reason)
}

// dsQueue returns the order in which a problem's rows (positions in
// d.Rows) are taken, and gives the rows left out of it their reason. gi is
// the problem's place among all problems (in order of first appearance):
// it seeds the shuffle.
func dsQueue(d *Dataset, o DownsampleOptions, rows []int, gi int, reason []string) []int {
	if o.CodeTag == "" {
		o.CodeTag = "<llm-code>"
	}
	idx := append([]int(nil), rows...)
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
	return idx
}

// fairCounts returns how many rows of each problem's queue the fair
// round-robin keeps — solution #1 of every problem, then #2 of every
// problem that has one, and so on until n rows (0: all) — from the queue
// lengths alone, in the problems' order.
func fairCounts(lens []int, n int) []int {
	out := append([]int(nil), lens...)
	if n <= 0 {
		return out
	}
	maxLen := 0
	for _, l := range lens {
		maxLen = max(maxLen, l)
	}
	// have[r]: queues with more than r rows; before[r]: rows taken in the
	// rounds before r.
	have := make([]int, maxLen+1)
	for _, l := range lens {
		for r := range l {
			have[r]++
		}
	}
	before := 0
	cut := -1 // the round in which the n-th row is taken
	for r := range maxLen {
		if before+have[r] > n {
			cut = r
			break
		}
		before += have[r]
	}
	if cut < 0 {
		return out // everything fits
	}
	rank := 0 // queues seen so far that reach round cut
	for i, l := range lens {
		out[i] = min(l, cut)
		if l > cut {
			if rank < n-before {
				out[i]++
			}
			rank++
		}
	}
	return out
}

// dsApply keeps the first counts[g] rows of each queue and removes the
// rest, in input order.
func dsApply(d *Dataset, o DownsampleOptions, queues [][]int, counts []int, reason []string) int {
	keep := make([]bool, len(d.Rows))
	for g, q := range queues {
		for j, i := range q {
			if j < counts[g] {
				keep[i] = true
			} else {
				reason[i] = fmt.Sprintf("fair downsampling to %d rows", o.N)
			}
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
