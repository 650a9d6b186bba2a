package grade

import (
	"context"
	"encoding/json"
	"runtime"
	"time"

	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/stage"
)

// RowOptions say where a row keeps its response and reference answer and
// how to grade them.
type RowOptions struct {
	GenerationField string // default "generation"
	AnswerField     string // default "expected_answer"
	// Options are the grading policy; Options.Answer says how the
	// response's answer is found.
	Options Options
}

func (o *RowOptions) defaults() {
	if o.GenerationField == "" {
		o.GenerationField = "generation"
	}
	if o.AnswerField == "" {
		o.AnswerField = "expected_answer"
	}
}

// Row grades one solution row: it sets `predicted_answer` (null when the
// response has none), `is_correct` and `grade_policy` (Options.Policy). A
// row whose generation failed (it carries `error`) has no answer. Row
// returns what it set.
func Row(row *record.Row, o RowOptions) (answered, correct bool) {
	o.defaults()
	gen, _ := row.Text(o.GenerationField)
	gold, _ := row.Text(o.AnswerField)
	pred, ok := ExtractAnswer(gen, o.Options)
	answered = ok && !row.Has("error")
	if answered {
		correct = Check(gold, pred, o.Options).Equal
		row.Set("predicted_answer", pred)
	} else {
		row.SetRaw("predicted_answer", json.RawMessage("null"))
	}
	row.Set("is_correct", correct)
	if o.Options.Policy != "" {
		row.Set("grade_policy", o.Options.Policy)
	}
	return answered, correct
}

// RowsOptions configure Rows.
type RowsOptions struct {
	Input, Output string
	Shard         record.Shard
	Limit         int // input rows to take after sharding (0: all)
	// Concurrency is how many rows are graded at once (default: one per
	// CPU; grading is CPU-bound).
	Concurrency int
	Row         RowOptions
	// Version is recorded in the output's manifest.
	Version string
}

// RowsStats summarise a Rows run.
type RowsStats struct {
	stage.MapStats
	Correct, NoAnswer int // among the rows graded by this run
}

// Rows grades every input row into a resumable output (see package stage):
// each row with `predicted_answer` and `is_correct` added. A finished output
// gets a manifest with the counts and the grading options.
func Rows(ctx context.Context, o RowsOptions) (RowsStats, error) {
	started := time.Now()
	o.Row.defaults()
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.NumCPU()
	}
	var st RowsStats
	counts := make(chan [2]bool, 1024)
	done := make(chan struct{})
	go func() {
		for c := range counts {
			if !c[0] {
				st.NoAnswer++
			} else if c[1] {
				st.Correct++
			}
		}
		close(done)
	}()
	ms, err := stage.Map(ctx, stage.MapOptions{
		Input: o.Input, Output: o.Output, Shard: o.Shard, Limit: o.Limit,
		Concurrency: o.Concurrency, KeepErrors: true, Label: "grade",
	}, func(_ context.Context, row *record.Row) error {
		answered, correct := Row(row, o.Row)
		counts <- [2]bool{answered, correct}
		return nil
	})
	close(counts)
	<-done
	st.MapStats = ms
	if err != nil {
		return st, err
	}
	m := &record.Manifest{
		Output: o.Output, Command: "grade", Version: o.Version,
		Rows: ms.Existing + ms.Written, Existing: ms.Existing, Written: ms.Written,
		Counts:  map[string]int{"correct": st.Correct, "no_answer": st.NoAnswer, "skipped": ms.Skipped},
		Config:  o.Row.Options,
		Started: started, Finished: time.Now(), WallSeconds: time.Since(started).Seconds(),
	}
	return st, record.WriteManifest(m)
}
