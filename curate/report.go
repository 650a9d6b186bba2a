package curate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/crucible-ml/crucible/record"
)

// Report summarises a curation: the funnel, rows per source before and
// after, and length histograms of what was kept.
type Report struct {
	RowsIn    int                    `json:"rows_in"`
	RowsOut   int                    `json:"rows_out"`
	Funnel    []FunnelStep           `json:"funnel"`
	BySource  map[string]*SourceRows `json:"by_source"`
	Problems  int                    `json:"problems_out"`
	Histogram map[string][]Bucket    `json:"length_histograms"`
}

// SourceRows counts one source's rows.
type SourceRows struct {
	In  int `json:"in"`
	Out int `json:"out"`
}

// Bucket is one histogram bar: rows with a length in [Lo, Hi).
type Bucket struct {
	Lo    int `json:"lo"`
	Hi    int `json:"hi"`
	Count int `json:"count"`
}

func source(r *record.Row) string {
	for _, k := range []string{"problem_source", "dataset", "source"} {
		if s, ok := r.String(k); ok && s != "" {
			return s
		}
	}
	return "(none)"
}

// NewReport builds the report of d, whose input rows were in (sources
// counted from the kept and removed rows).
func NewReport(d *Dataset) *Report {
	b := newReportBuilder(d)
	for _, r := range d.Removed {
		b.removed(r)
	}
	for _, r := range d.Rows {
		b.kept(r)
	}
	return b.report(d.Funnel)
}

// reportBuilder builds a Report from a stream of removed and kept rows.
type reportBuilder struct {
	d         *Dataset // text fields
	rep       *Report
	ids       map[string]struct{}
	sol, prob histogram
}

func newReportBuilder(d *Dataset) *reportBuilder {
	return &reportBuilder{d: d, rep: &Report{BySource: map[string]*SourceRows{}, Histogram: map[string][]Bucket{}}, ids: map[string]struct{}{}}
}

func (b *reportBuilder) source(r *record.Row) *SourceRows {
	s := source(r)
	if b.rep.BySource[s] == nil {
		b.rep.BySource[s] = &SourceRows{}
	}
	return b.rep.BySource[s]
}

func (b *reportBuilder) removed(r *record.Row) {
	b.rep.RowsIn++
	b.source(r).In++
}

func (b *reportBuilder) kept(r *record.Row) {
	b.rep.RowsIn++
	b.rep.RowsOut++
	s := b.source(r)
	s.In++
	s.Out++
	b.ids[r.ID()] = struct{}{}
	b.sol.add(Chars(b.d.Solution(r)))
	b.prob.add(Chars(b.d.Problem(r)))
}

func (b *reportBuilder) report(funnel []FunnelStep) *Report {
	b.rep.Funnel = funnel
	b.rep.Problems = len(b.ids)
	b.rep.Histogram["solution_chars"] = b.sol.buckets()
	b.rep.Histogram["problem_chars"] = b.prob.buckets()
	return b.rep
}

// histogram counts lengths in buckets by powers of two from 64: [0, 64),
// [64, 128), [128, 256), ... up to the bucket of the longest.
type histogram []int

func (h *histogram) add(x int) {
	k := 0
	for hi := 64; x >= hi; hi *= 2 {
		k++
	}
	for len(*h) <= k {
		*h = append(*h, 0)
	}
	(*h)[k]++
}

func (h histogram) buckets() []Bucket {
	out := []Bucket{{0, 64, 0}}
	if len(h) > 0 {
		out[0].Count = h[0]
	}
	for k := 1; k < len(h); k++ {
		lo := 64 << (k - 1)
		out = append(out, Bucket{lo, 2 * lo, h[k]})
	}
	return out
}

// Markdown renders the report.
func (rep *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Curation report\n\n%d rows in, %d rows out (%d problems).\n\n", rep.RowsIn, rep.RowsOut, rep.Problems)
	b.WriteString("## Funnel\n\n| step | in | removed | out | changed |\n|---|---:|---:|---:|---:|\n")
	for _, f := range rep.Funnel {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", f.Step, f.In, f.Removed, f.Out, f.Changed)
	}
	b.WriteString("\n## By source\n\n| source | in | out |\n|---|---:|---:|\n")
	var srcs []string
	for s := range rep.BySource {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, s := range srcs {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", s, rep.BySource[s].In, rep.BySource[s].Out)
	}
	for _, name := range []string{"problem_chars", "solution_chars"} {
		fmt.Fprintf(&b, "\n## %s (kept rows)\n\n| length | rows |\n|---|---:|\n", name)
		for _, bk := range rep.Histogram[name] {
			fmt.Fprintf(&b, "| %d–%d | %d |\n", bk.Lo, bk.Hi-1, bk.Count)
		}
	}
	return b.String()
}
