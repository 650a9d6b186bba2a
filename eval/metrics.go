package eval

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/crucible-ml/crucible/metric"
)

// Sample is one graded solution of one problem.
type Sample = metric.Sample

// Problem is a benchmark problem with its graded samples.
type Problem struct {
	ID      string
	Subject string // MATH subject, "" elsewhere
	Level   string // MATH level ("1".."5"), "" elsewhere
	Samples []Sample
}

// Metrics are the scores of a set of problems, in NeMo-Skills' terms. All
// rates are fractions in [0, 1].
type Metrics struct {
	NumProblems int                 `json:"num_problems"`
	Samples     int                 `json:"samples"` // solutions per problem
	Values      map[string]float64  `json:"-"`       // metric name -> value
	BySubject   map[string]*Metrics `json:"-"`
	ByLevel     map[string]*Metrics `json:"-"`
}

// Ks returns the K values reported for n samples: 1, 2, 4, ... up to n, and
// n itself.
func Ks(n int) []int {
	var ks []int
	for k := 1; k <= n; k *= 2 {
		ks = append(ks, k)
	}
	if n > 0 && ks[len(ks)-1] != n {
		ks = append(ks, n)
	}
	return ks
}

// Compute scores problems with n samples each (problems with fewer samples
// use what they have). greedy marks a temperature-0 single-sample run, which
// adds the `greedy` key. same tells equivalent answers apart for majority
// voting.
func Compute(problems []Problem, n int, greedy bool, same func(a, b string) bool) *Metrics {
	m := compute(problems, n, greedy, same)
	m.BySubject = groupBy(problems, func(p Problem) string { return p.Subject }, n, greedy, same)
	m.ByLevel = groupBy(problems, func(p Problem) string { return p.Level }, n, greedy, same)
	return m
}

func groupBy(problems []Problem, by func(Problem) string, n int, greedy bool, same func(a, b string) bool) map[string]*Metrics {
	parts := map[string][]Problem{}
	for _, p := range problems {
		if g := by(p); g != "" {
			parts[g] = append(parts[g], p)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	out := map[string]*Metrics{}
	for g, ps := range parts {
		out[g] = compute(ps, n, greedy, same)
	}
	return out
}

func compute(problems []Problem, n int, greedy bool, same func(a, b string) bool) *Metrics {
	m := &Metrics{NumProblems: len(problems), Samples: n, Values: map[string]float64{}}
	if len(problems) == 0 || n == 0 {
		return m
	}
	ks := Ks(n)
	sumPass := make([]float64, len(ks))
	sumMaj := make([]float64, len(ks))
	var noAnswer, total, errs int
	perRun := make([]float64, n) // correct count per sample index
	perRunN := make([]int, n)
	for _, p := range problems {
		ss := append([]Sample(nil), p.Samples...)
		sort.Slice(ss, func(i, j int) bool { return ss[i].Index < ss[j].Index })
		if len(ss) > n {
			ss = ss[:n]
		}
		c := 0
		for _, s := range ss {
			total++
			if s.Correct {
				c++
			}
			if !s.HasAnswer || s.Error {
				noAnswer++
			}
			if s.Error {
				errs++
			}
			if s.Index >= 0 && s.Index < n {
				perRunN[s.Index]++
				if s.Correct {
					perRun[s.Index]++
				}
			}
		}
		for i, k := range ks {
			if k <= len(ss) {
				sumPass[i] += metric.PassAtK(len(ss), c, k)
				sumMaj[i] += metric.MajorityAtK(ss, k, same)
			}
		}
	}
	np := float64(len(problems))
	for i, k := range ks {
		m.Values[fmt.Sprintf("pass@%d", k)] = sumPass[i] / np
		m.Values[fmt.Sprintf("majority@%d", k)] = sumMaj[i] / np
	}
	// pass@1[avg-of-N]: the mean accuracy of the N runs (sample indices), and
	// its sample standard deviation across runs (ddof 1).
	var accs []float64
	for i := range n {
		if perRunN[i] > 0 {
			accs = append(accs, perRun[i]/float64(perRunN[i]))
		}
	}
	mean, std := meanStd(accs)
	avgKey := fmt.Sprintf("pass@1[avg-of-%d]", n)
	m.Values[avgKey] = mean
	m.Values[avgKey+"_std"] = std
	if total > 0 {
		m.Values["no_answer"] = float64(noAnswer) / float64(total)
	}
	m.Values["errors"] = float64(errs)
	if greedy && n == 1 {
		m.Values["greedy"] = m.Values["pass@1"]
	}
	return m
}

func meanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}

// JSON returns the metrics as one flat object per group: the top-level keys
// (num_problems, samples, every metric) and `by_subject` / `by_level` maps of
// the same shape.
func (m *Metrics) JSON() map[string]any {
	out := m.flat()
	if len(m.BySubject) > 0 {
		sub := map[string]any{}
		for k, v := range m.BySubject {
			sub[k] = v.flat()
		}
		out["by_subject"] = sub
	}
	if len(m.ByLevel) > 0 {
		lv := map[string]any{}
		for k, v := range m.ByLevel {
			lv[k] = v.flat()
		}
		out["by_level"] = lv
	}
	return out
}

func (m *Metrics) flat() map[string]any {
	out := map[string]any{"num_problems": m.NumProblems, "samples": m.Samples}
	for k, v := range m.Values {
		if k == "errors" {
			out[k] = int(v)
			continue
		}
		out[k] = round6(v)
	}
	return out
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// Table formats the metrics for a terminal: one row per group (all, then
// subjects, then levels), one column per headline metric.
func (m *Metrics) Table(name string) string {
	cols := []string{"num_problems"}
	if _, ok := m.Values["greedy"]; ok {
		cols = append(cols, "greedy")
	}
	n := m.Samples
	cols = append(cols, fmt.Sprintf("pass@1[avg-of-%d]", n))
	if n > 1 {
		cols = append(cols, fmt.Sprintf("majority@%d", n), fmt.Sprintf("pass@%d", n))
	}
	cols = append(cols, "no_answer")
	var rows [][]string
	add := func(label string, g *Metrics) {
		r := []string{label}
		for _, c := range cols {
			if c == "num_problems" {
				r = append(r, fmt.Sprint(g.NumProblems))
				continue
			}
			r = append(r, fmt.Sprintf("%.2f%%", 100*g.Values[c]))
		}
		rows = append(rows, r)
	}
	add(name, m)
	for _, grp := range []struct {
		prefix string
		m      map[string]*Metrics
	}{{"  subject ", m.BySubject}, {"  level ", m.ByLevel}} {
		keys := make([]string, 0, len(grp.m))
		for k := range grp.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			add(grp.prefix+k, grp.m[k])
		}
	}
	header := append([]string{"benchmark"}, cols...)
	widths := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			if i == 0 {
				fmt.Fprintf(&b, "%-*s", widths[i], c)
			} else {
				fmt.Fprintf(&b, "  %*s", widths[i], c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
