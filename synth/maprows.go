package synth

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/crucible-ml/crucible/progress"
	"github.com/crucible-ml/crucible/record"
)

// mapRows runs fn on every input row whose (id, sample) the output lacks
// and writes the row with the fields fn added. It is solve.Run for stages
// whose input rows are already keyed by (id, sample) — solutions to judge
// or score — which solve.Run would reject as duplicate ids. An error from
// fn is recorded on the row (`error`) and counted; the run goes on.
func (c *Common) mapRows(ctx context.Context, rep *Report, name, input, output string, fn func(ctx context.Context, row *record.Row) error) error {
	in, err := record.Open(input)
	if err != nil {
		return err
	}
	defer in.Close()
	w, err := record.CreateWith(output, record.CreateOptions{RetryErrors: c.RetryErrors})
	if err != nil {
		return err
	}
	if err := record.RemoveManifest(output); err != nil {
		w.Close()
		return err
	}
	s := StageStats{Name: name, Output: output, Existing: w.Existing()}
	bar := progress.New(name, -1)
	conc := c.Concurrency
	if conc <= 0 {
		conc = 64
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan *record.Row, conc)
	var wg sync.WaitGroup
	var errs atomic.Int64
	var firstErr atomic.Value
	var writeErr error
	var once sync.Once
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for row := range jobs {
				out := row.Clone()
				if out.Has("error") {
					out.Delete("error") // a stale error of an earlier stage
				}
				ferr := fn(ctx, out)
				if ctx.Err() != nil {
					continue // left for the rerun
				}
				if ferr != nil {
					msg := strings.Join(strings.Fields(ferr.Error()), " ")
					out.Set("error", msg)
					if errs.Add(1) == 1 {
						firstErr.Store(msg)
					}
					bar.AddErrors(1)
				}
				if err := w.Write(out); err != nil {
					once.Do(func() { writeErr = err; cancel(err) })
				}
				bar.Add(1)
			}
		}()
	}
	seen := map[record.Key]int{}
	rows := 0
	var inputErr error
feed:
	for in.Next() {
		row := in.Row()
		file, line := in.Pos()
		k := record.KeyOf(row)
		if !c.Shard.Contains(k.ID) {
			continue
		}
		if prev, dup := seen[k]; dup {
			inputErr = fmt.Errorf("%s:%d: duplicate row (id %q, sample %d), first seen at line %d", file, line, k.ID, k.Sample, prev)
			break
		}
		seen[k] = line
		if c.Limit > 0 && rows >= c.Limit {
			break
		}
		rows++
		if w.Done(k.ID, k.Sample) {
			s.Skipped++
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
	close(jobs)
	wg.Wait()
	bar.Finish()
	cerr := w.Close()
	s.Written = w.Written()
	s.Errors = int(errs.Load())
	rep.Stages = append(rep.Stages, s)
	rep.Errors += s.Errors
	if v, ok := firstErr.Load().(string); ok && rep.FirstError == "" {
		rep.FirstError = v
	}
	switch {
	case inputErr != nil:
		return inputErr
	case writeErr != nil:
		return writeErr
	case cerr != nil:
		return cerr
	case ctx.Err() != nil:
		return context.Cause(ctx)
	}
	slog.Debug("synth step finished", "step", name, "written", s.Written, "skipped", s.Skipped, "errors", s.Errors)
	return nil
}
