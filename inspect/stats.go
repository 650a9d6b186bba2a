package inspect

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/metric"
	"github.com/crucible-ml/crucible/record"
)

// EvalStats are the scores of a graded file, computed from its rows: what
// the eval view draws when there is no metrics.json, and the parts that a
// metrics.json does not hold (length histograms).
type EvalStats struct {
	Rows, Problems, Samples int // Samples: the most samples of one problem
	Ks                      []int
	Pass, Majority          []float64 // per K
	Accuracy                float64   // correct samples / samples
	NoAnswer                float64   // samples without an answer (or with an error) / samples
	Errors                  int
	BySubject, ByLevel      []GroupScore
	// Lengths: histograms of correct and wrong samples over the same buckets.
	LengthOf         string // "num_generated_tokens" or "generation characters"
	Buckets          []Bucket
	Correct, Wrong   []int
	MaxLen, Ungraded int
}

// GroupScore is the accuracy of one subject or level.
type GroupScore struct {
	Name          string
	Rows, Correct int
	Accuracy      float64
}

// Bucket is the half-open range [Lo, Hi) of a histogram.
type Bucket struct{ Lo, Hi float64 }

type evalSample struct {
	metric.Sample
	length                int
	subject, level        string
	hasTokens, hasVerdict bool
}

var levelNum = regexp.MustCompile(`\d+`)

// ComputeEval scores a graded file (rows with is_correct and
// predicted_answer): pass@K with the unbiased estimator, majority@K with
// the grader's equivalence, no-answer rate, accuracy by subject and level,
// and length histograms. Memory is a few words per row.
func ComputeEval(ctx context.Context, t *Table) (*EvalStats, error) {
	byID := map[string][]evalSample{}
	var order []string
	st := &EvalStats{}
	tokens := true
	err := scanRows(ctx, t, func(row *record.Row) {
		st.Rows++
		s := evalSample{Sample: metric.Sample{Index: int(intField(row, "sample"))}}
		s.Answer, s.HasAnswer = row.String("predicted_answer")
		s.Correct, s.hasVerdict = row.Bool("is_correct")
		s.Error = row.Has("error")
		if s.Error {
			st.Errors++
		}
		if n, ok := row.Int("num_generated_tokens"); ok {
			s.length, s.hasTokens = int(n), true
		} else {
			tokens = false
			g, _ := row.String("generation")
			s.length = utf8.RuneCountInString(g)
		}
		s.subject, _ = row.String("subject")
		if lv, ok := row.Text("level"); ok {
			s.level = levelNum.FindString(lv)
		}
		id := row.ID()
		if _, ok := byID[id]; !ok {
			order = append(order, id)
		}
		byID[id] = append(byID[id], s)
	})
	if err != nil {
		return nil, err
	}
	st.Problems = len(order)
	if st.Rows == 0 {
		return st, nil
	}
	// Lengths: tokens when every row has them, else characters.
	st.LengthOf = "num_generated_tokens"
	if !tokens {
		st.LengthOf = "generation characters"
	}
	var lens []int
	subj, lvl := map[string]*GroupScore{}, map[string]*GroupScore{}
	correct, noAns := 0, 0
	opts := grade.DefaultOptions()
	same := func(a, b string) bool { return grade.Equal(a, b, opts).Equal }
	for _, id := range order {
		ss := byID[id]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].Index < ss[j].Index })
		st.Samples = max(st.Samples, len(ss))
		for _, s := range ss {
			if !s.hasVerdict {
				st.Ungraded++
			}
			if s.Correct {
				correct++
			}
			if !s.HasAnswer || s.Error {
				noAns++
			}
			lens = append(lens, s.length)
			addGroup(subj, s.subject, s.Correct)
			addGroup(lvl, s.level, s.Correct)
		}
	}
	n := float64(st.Rows)
	st.Accuracy, st.NoAnswer = float64(correct)/n, float64(noAns)/n
	st.BySubject, st.ByLevel = groups(subj), groups(lvl)
	for k := 1; k <= st.Samples; k *= 2 {
		st.Ks = append(st.Ks, k)
	}
	if st.Samples > 0 && st.Ks[len(st.Ks)-1] != st.Samples {
		st.Ks = append(st.Ks, st.Samples)
	}
	for _, k := range st.Ks {
		var pass, maj float64
		np := 0
		for _, id := range order {
			ss := byID[id]
			if len(ss) < k {
				continue
			}
			np++
			c := 0
			for _, s := range ss {
				if s.Correct {
					c++
				}
			}
			pass += metric.PassAtK(len(ss), c, k)
			samples := make([]metric.Sample, k)
			for i := range samples {
				samples[i] = ss[i].Sample
			}
			maj += metric.MajorityAtK(samples, k, same)
		}
		if np == 0 {
			np = 1
		}
		st.Pass = append(st.Pass, pass/float64(np))
		st.Majority = append(st.Majority, maj/float64(np))
	}
	st.Buckets = lengthBuckets(lens)
	st.Correct, st.Wrong = make([]int, len(st.Buckets)), make([]int, len(st.Buckets))
	for _, id := range order {
		for _, s := range byID[id] {
			b := bucketOf(st.Buckets, float64(s.length))
			if s.Correct {
				st.Correct[b]++
			} else {
				st.Wrong[b]++
			}
			st.MaxLen = max(st.MaxLen, s.length)
		}
	}
	return st, nil
}

func intField(r *record.Row, k string) int64 { n, _ := r.Int(k); return n }

func addGroup(m map[string]*GroupScore, name string, correct bool) {
	if name == "" {
		return
	}
	g := m[name]
	if g == nil {
		g = &GroupScore{Name: name}
		m[name] = g
	}
	g.Rows++
	if correct {
		g.Correct++
	}
}

func groups(m map[string]*GroupScore) []GroupScore {
	var out []GroupScore
	for _, g := range m {
		g.Accuracy = float64(g.Correct) / float64(g.Rows)
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, ea := strconv.Atoi(out[i].Name)
		b, eb := strconv.Atoi(out[j].Name)
		if ea == nil && eb == nil {
			return a < b
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// lengthBuckets returns up to 12 equal buckets over [0, max], with round
// edges.
func lengthBuckets(xs []int) []Bucket {
	hi := 0
	for _, x := range xs {
		hi = max(hi, x)
	}
	width := niceStep(float64(hi+1) / 12)
	var out []Bucket
	for lo := 0.0; lo <= float64(hi); lo += width {
		out = append(out, Bucket{lo, lo + width})
	}
	if len(out) == 0 {
		out = []Bucket{{0, 1}}
	}
	return out
}

func bucketOf(bs []Bucket, x float64) int {
	for i, b := range bs {
		if x < b.Hi {
			return i
		}
	}
	return len(bs) - 1
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// Histogram counts values over buckets made for them.
func Histogram(xs []float64, n int) ([]Bucket, []int) {
	if len(xs) == 0 {
		return nil, nil
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	if hi == lo {
		hi = lo + 1
	}
	w := (hi - lo) / float64(n)
	bs := make([]Bucket, n)
	for i := range bs {
		bs[i] = Bucket{lo + float64(i)*w, lo + float64(i+1)*w}
	}
	counts := make([]int, n)
	for _, x := range xs {
		i := int((x - lo) / w)
		counts[min(max(i, 0), n-1)]++
	}
	return bs, counts
}

// PairStats summarise a preference file: reward margins.
type PairStats struct {
	Rows    int
	Margins []float64
}

// ComputePairs reads chosen_reward - rejected_reward of every pair.
func ComputePairs(ctx context.Context, t *Table) (*PairStats, error) {
	ps := &PairStats{}
	err := scanRows(ctx, t, func(row *record.Row) {
		ps.Rows++
		c, ok1 := floatField(row, "chosen_reward")
		r, ok2 := floatField(row, "rejected_reward")
		if ok1 && ok2 {
			ps.Margins = append(ps.Margins, c-r)
		}
	})
	return ps, err
}

// scanRows calls f with every row of t that parses (others are skipped),
// stopping with ctx's error when ctx ends.
func scanRows(ctx context.Context, t *Table, f func(*record.Row)) error {
	if err := t.refresh(); err != nil {
		return err
	}
	var ferr error
	err := t.ix.Scan(0, func(i int, line []byte) bool {
		if i%4096 == 0 && ctx.Err() != nil {
			ferr = ctx.Err()
			return false
		}
		if row, err := record.ParseRow(line); err == nil {
			f(row)
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	return err
}

func floatField(r *record.Row, k string) (float64, bool) {
	raw := r.Raw(k)
	if raw == nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// LengthsOf returns the character lengths of a text field over a file.
func LengthsOf(ctx context.Context, t *Table, fields ...string) ([]float64, error) {
	var out []float64
	err := scanRows(ctx, t, func(row *record.Row) {
		for _, f := range fields {
			if s, ok := row.String(f); ok {
				out = append(out, float64(utf8.RuneCountInString(s)))
				break
			}
		}
	})
	return out, err
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }
