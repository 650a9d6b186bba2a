package curate

import (
	"github.com/crucible-ml/crucible/record"
)

// Dataset is the rows being curated, what was removed and why, and the
// funnel so far.
type Dataset struct {
	Rows    []*record.Row
	Removed []*record.Row
	Funnel  []FunnelStep

	// ProblemField and SolutionField name the text fields; NewDataset picks
	// `problem` (else `question`) and `generation` (else
	// `generated_solution`) from the first row.
	ProblemField  string
	SolutionField string
}

// FunnelStep counts one step's effect.
type FunnelStep struct {
	Step    string `json:"step"`
	In      int    `json:"in"`
	Removed int    `json:"removed"`
	Out     int    `json:"out"`
	// Changed counts rows the step modified (trimming, answer filling).
	Changed int `json:"changed,omitempty"`
}

// NewDataset wraps rows.
func NewDataset(rows []*record.Row) *Dataset {
	d := &Dataset{Rows: rows, ProblemField: "problem", SolutionField: "generation"}
	if len(rows) > 0 {
		if !rows[0].Has("problem") && rows[0].Has("question") {
			d.ProblemField = "question"
		}
		if !rows[0].Has("generation") && rows[0].Has("generated_solution") {
			d.SolutionField = "generated_solution"
		}
	}
	return d
}

// Problem returns a row's problem text.
func (d *Dataset) Problem(r *record.Row) string {
	s, _ := r.String(d.ProblemField)
	return s
}

// Solution returns a row's solution text.
func (d *Dataset) Solution(r *record.Row) string {
	s, _ := r.String(d.SolutionField)
	return s
}

// Keep runs a per-row decision over the rows: a row for which keep returns
// false is moved to Removed with `removed_by` = step and `removed_reason` =
// reason. It returns how many rows were removed.
func (d *Dataset) Keep(step string, keep func(r *record.Row) (ok bool, reason string)) int {
	kept := make([]*record.Row, 0, len(d.Rows))
	n := 0
	for _, r := range d.Rows {
		ok, reason := keep(r)
		if ok {
			kept = append(kept, r)
			continue
		}
		d.remove(r, step, reason)
		n++
	}
	d.Rows = kept
	return n
}

func (d *Dataset) remove(r *record.Row, step, reason string) {
	r.Set("removed_by", step)
	r.Set("removed_reason", reason)
	d.Removed = append(d.Removed, r)
}

// groups returns the row indices of each problem (by row id), in order of
// first appearance.
func (d *Dataset) groups() (order []string, byID map[string][]int) {
	byID = map[string][]int{}
	for i, r := range d.Rows {
		id := r.ID()
		if _, ok := byID[id]; !ok {
			order = append(order, id)
		}
		byID[id] = append(byID[id], i)
	}
	return order, byID
}
