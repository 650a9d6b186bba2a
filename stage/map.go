// Package stage runs the per-row stages that every command is made of: read
// rows, do one job per (id, sample) the output does not hold yet, on a pool
// of workers, and append the results to a resumable output (see package
// record). A per-row failure is recorded on the row (`error`) and counted;
// bad input stops the stage with an error naming file and line.
package stage

import (
	"context"
	"fmt"
	"strings"

	"github.com/crucible-ml/crucible/progress"
	"github.com/crucible-ml/crucible/record"
)

// MapOptions configure Map.
type MapOptions struct {
	Input, Output string
	Shard         record.Shard
	Limit         int // input rows to take after sharding (0: all)
	Concurrency   int // rows in flight (default 64)
	// RetryErrors produces again the rows whose earlier attempt failed.
	RetryErrors bool
	// KeepErrors keeps an input row's `error` (an earlier stage's failure)
	// for fn to see and on the output row; by default it is removed as
	// stale before fn runs.
	KeepErrors bool
	Label      string // progress bar label
}

// MapStats summarise a Map run.
type MapStats struct {
	Rows, Skipped, Written, Errors, Existing int
	FirstError                               string
}

// Map runs fn on every input row whose (id, sample) the output lacks and
// writes the row with the fields fn added, for stages whose input rows are
// already keyed by (id, sample) — solutions to grade, judge or score. An error from fn is recorded on
// the row (`error`) and counted; the run goes on. Map writes no manifest:
// its caller knows what the output means.
func Map(ctx context.Context, o MapOptions, fn func(ctx context.Context, row *record.Row) error) (MapStats, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	in, w, err := Open(o.Input, o.Output, o.RetryErrors)
	if err != nil {
		return MapStats{}, err
	}
	defer in.Close()
	st := MapStats{Existing: w.Existing()}
	bar := progress.New(o.Label, -1)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan *record.Row, o.Concurrency)
	var workers Pool[*record.Row]
	workers.Start(o.Concurrency, jobs, cancel, w, bar, func(row *record.Row) (*record.Row, bool, bool) {
		out := row.Clone()
		if !o.KeepErrors && out.Has("error") {
			out.Delete("error") // a stale error of an earlier stage
		}
		ferr := fn(ctx, out)
		if ctx.Err() != nil {
			return nil, false, false // left for the rerun
		}
		if ferr != nil {
			out.Set("error", strings.Join(strings.Fields(ferr.Error()), " "))
			return out, true, true
		}
		return out, false, true
	})

	seen := map[record.Key]int{}
	var inputErr error
feed:
	for in.Next() {
		row := in.Row()
		file, line := in.Pos()
		k := record.KeyOf(row)
		if !o.Shard.Contains(k.ID) {
			continue
		}
		if prev, dup := seen[k]; dup {
			inputErr = fmt.Errorf("%s:%d: duplicate row (id %q, sample %d), first seen at line %d", file, line, k.ID, k.Sample, prev)
			break
		}
		seen[k] = line
		if o.Limit > 0 && st.Rows >= o.Limit {
			break
		}
		st.Rows++
		if w.Done(k.ID, k.Sample) {
			st.Skipped++
			bar.Add(1)
			continue
		}
		select {
		case jobs <- row:
		case <-ctx.Done():
			break feed
		}
	}
	if inputErr == nil {
		inputErr = in.Err()
	}
	st.Errors, st.FirstError, err = workers.Finish(ctx, jobs, inputErr, w, bar)
	st.Written = w.Written()
	return st, err
}
