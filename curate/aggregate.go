package curate

import (
	"fmt"

	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/record"
)

// AggregateOptions configure majority answers.
type AggregateOptions struct {
	// MinAgreement removes the problems whose majority answer has a smaller
	// share of the votes (0 keeps everything).
	MinAgreement float64
	// Overwrite recomputes expected_answer even where the row has one.
	Overwrite bool
	Grade     grade.Options
}

// Aggregate gives problems without a reference answer (synthesized ones)
// their majority answer: the predicted answers of a problem's solutions are
// grouped by the grader's equivalence, the largest group wins (ties go to
// the group seen first), and every row of the problem gets
// `expected_answer`, `majority_votes`, `total_votes` and `agreement`, and
// `is_correct` against the new answer. Problems below MinAgreement are
// removed. It returns the number of rows given an answer.
func Aggregate(d *Dataset, o AggregateOptions) (changed int) {
	order, byID := d.groups()
	drop := map[string]string{}
	for _, id := range order {
		idx := byID[id]
		if !o.Overwrite {
			if s, ok := d.Rows[idx[0]].Text("expected_answer"); ok && s != "" && s != "None" {
				continue
			}
		}
		type group struct {
			answer string
			votes  int
		}
		var groups []*group
		total := 0
		answers := make([]string, len(idx))
		has := make([]bool, len(idx))
		for k, i := range idx {
			a, ok := predicted(d, d.Rows[i])
			answers[k], has[k] = a, ok
			if !ok {
				continue
			}
			total++
			var g *group
			for _, c := range groups {
				if c.answer == a || grade.Equal(c.answer, a, o.Grade).Equal {
					g = c
					break
				}
			}
			if g == nil {
				g = &group{answer: a}
				groups = append(groups, g)
			}
			g.votes++
		}
		var best *group
		for _, g := range groups {
			if best == nil || g.votes > best.votes {
				best = g
			}
		}
		if best == nil {
			drop[id] = "no solution has an answer to vote with"
			continue
		}
		agreement := float64(best.votes) / float64(total)
		if agreement < o.MinAgreement {
			drop[id] = fmt.Sprintf("majority answer %q has %d of %d votes (%.2f < %.2f)", best.answer, best.votes, total, agreement, o.MinAgreement)
			continue
		}
		for k, i := range idx {
			r := d.Rows[i]
			r.Set("expected_answer", best.answer)
			r.Set("majority_votes", best.votes)
			r.Set("total_votes", total)
			r.Set("agreement", agreement)
			r.Set("is_correct", has[k] && (answers[k] == best.answer || grade.Equal(best.answer, answers[k], o.Grade).Equal))
			changed++
		}
	}
	if len(drop) > 0 {
		d.Keep("aggregate", func(r *record.Row) (bool, string) {
			if reason, ok := drop[r.ID()]; ok {
				return false, reason
			}
			return true, ""
		})
	}
	return changed
}

// predicted returns a row's predicted answer, extracting it from the
// solution when the row has none.
func predicted(d *Dataset, r *record.Row) (string, bool) {
	if s, ok := r.String("predicted_answer"); ok && s != "" {
		return s, true
	}
	if r.Has("predicted_answer") {
		return "", false // explicitly null: the grader found none
	}
	return explicitAnswer(d.Solution(r))
}

// explicitAnswer extracts the final answer a solution states.
func explicitAnswer(s string) (string, bool) {
	return grade.ExtractStated(s, grade.DefaultOptions())
}
