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
	rep := &Report{RowsOut: len(d.Rows), Funnel: d.Funnel, BySource: map[string]*SourceRows{}, Histogram: map[string][]Bucket{}}
	rep.RowsIn = len(d.Rows) + len(d.Removed)
	for _, r := range d.Removed {
		s := source(r)
		if rep.BySource[s] == nil {
			rep.BySource[s] = &SourceRows{}
		}
		rep.BySource[s].In++
	}
	ids := map[string]bool{}
	var sol, prob []int
	for _, r := range d.Rows {
		s := source(r)
		if rep.BySource[s] == nil {
			rep.BySource[s] = &SourceRows{}
		}
		rep.BySource[s].In++
		rep.BySource[s].Out++
		ids[r.ID()] = true
		sol = append(sol, Chars(d.Solution(r)))
		prob = append(prob, Chars(d.Problem(r)))
	}
	rep.Problems = len(ids)
	rep.Histogram["solution_chars"] = histogram(sol)
	rep.Histogram["problem_chars"] = histogram(prob)
	return rep
}

// histogram buckets lengths by powers of two from 64.
func histogram(xs []int) []Bucket {
	var out []Bucket
	lo := 0
	for hi := 64; ; hi *= 2 {
		n := 0
		rest := 0
		for _, x := range xs {
			if x >= lo && x < hi {
				n++
			}
			if x >= hi {
				rest++
			}
		}
		out = append(out, Bucket{lo, hi, n})
		if rest == 0 {
			return out
		}
		lo = hi
	}
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
