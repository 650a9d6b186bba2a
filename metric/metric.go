// Package metric holds the estimators behind a benchmark's scores:
// pass@k (the unbiased estimator) and majority@k over graded samples.
// eval computes a run's metrics with them and inspect draws its charts
// with the same ones, so the two never disagree.
package metric

import "math"

// Sample is one graded solution of one problem.
type Sample struct {
	Index     int    // sample index
	Answer    string // extracted answer; "" with HasAnswer false when none
	HasAnswer bool
	Correct   bool
	Error     bool // the request failed; counts as no answer
}

// PassAtK is the unbiased estimator of the chance that at least one of k
// samples drawn from n (of which c are correct) is correct:
// 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), computed as a stable product.
func PassAtK(n, c, k int) float64 {
	if k > n || k <= 0 {
		return math.NaN()
	}
	if n-c < k {
		return 1
	}
	p := 1.0
	for i := n - c + 1; i <= n; i++ {
		p *= 1 - float64(k)/float64(i)
	}
	return 1 - p
}

// MajorityAtK scores the majority vote of the first k samples: answers are
// grouped by the grader's equivalence (same), each joining the first group
// whose first answer it equals; the largest group wins and
// scores its correctness. Ties between the largest groups score the mean of
// their correctness (NeMo-Skills' partial credit), so the result does not
// depend on sample order. No answer among the k samples scores 0.
func MajorityAtK(samples []Sample, k int, same func(a, b string) bool) float64 {
	type group struct {
		answer  string
		votes   int
		correct bool
	}
	var groups []*group
	for _, s := range samples[:min(k, len(samples))] {
		if !s.HasAnswer || s.Error {
			continue
		}
		var g *group
		for _, c := range groups {
			if c.answer == s.Answer || same(c.answer, s.Answer) {
				g = c
				break
			}
		}
		if g == nil {
			g = &group{answer: s.Answer, correct: s.Correct}
			groups = append(groups, g)
		}
		g.votes++
	}
	best, tied, correct := 0, 0, 0
	for _, g := range groups {
		switch {
		case g.votes > best:
			best, tied, correct = g.votes, 1, b2i(g.correct)
		case g.votes == best:
			tied++
			correct += b2i(g.correct)
		}
	}
	if tied == 0 {
		return 0
	}
	return float64(correct) / float64(tied)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
