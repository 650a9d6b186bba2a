package stage

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/crucible-ml/crucible/progress"
	"github.com/crucible-ml/crucible/record"
)

// Pool runs jobs on n workers and writes the rows they produce. It is the
// loop every row stage shares (Map here, solve.Run): a job that returns ok=false (cancelled) writes
// nothing and is left for the rerun; a failed job's row carries `error` and
// is counted; the first write error cancels the run.
type Pool[T any] struct {
	wg       sync.WaitGroup
	errs     atomic.Int64
	firstErr atomic.Value
	writeErr error
	once     sync.Once
}

// Start launches n workers reading jobs until the channel closes. do
// returns the row to write, whether the job failed (the row carries
// `error`), and ok=false for a job left for the rerun (cancelled). bar
// counts written and failed rows; the first write error cancels the run.
func (p *Pool[T]) Start(n int, jobs <-chan T, cancel context.CancelCauseFunc, out *record.Writer, bar *progress.Bar,
	do func(T) (row *record.Row, failed, ok bool)) {
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range jobs {
				row, failed, ok := do(j)
				if !ok {
					continue
				}
				if err := out.Write(row); err != nil {
					p.once.Do(func() { p.writeErr = err; cancel(err) })
					continue
				}
				bar.Add(1)
				if failed {
					if p.errs.Add(1) == 1 {
						msg, _ := row.String("error")
						p.firstErr.Store(msg)
					}
					bar.AddErrors(1)
				}
			}
		}()
	}
}

// Wait waits for the workers and returns the failed-job count, the first
// failure's message and the write error, if any.
func (p *Pool[T]) Wait() (errs int, first string, writeErr error) {
	p.wg.Wait()
	first, _ = p.firstErr.Load().(string)
	return int(p.errs.Load()), first, p.writeErr
}

// Finish ends a run once the input is read: it closes jobs, waits for the
// workers, finishes bar and closes out. err is the run's outcome, first
// of: the input's error, a write error, out's close error, ctx's cause
// (a cancelled run, left for the rerun).
func (p *Pool[T]) Finish(ctx context.Context, jobs chan T, inputErr error, out *record.Writer, bar *progress.Bar) (errs int, first string, err error) {
	close(jobs)
	errs, first, writeErr := p.Wait()
	bar.Finish()
	cerr := out.Close()
	switch {
	case inputErr != nil:
		err = inputErr
	case writeErr != nil:
		err = writeErr
	case cerr != nil:
		err = cerr
	case ctx.Err() != nil:
		err = context.Cause(ctx)
	}
	return errs, first, err
}

// Open opens a stage's input and its resumable output, and marks the
// output incomplete (removes its manifest) until the stage finishes. A torn
// last line cut from the output (what a crash leaves) is logged.
func Open(input, output string, retryErrors bool) (*record.Reader, *record.Writer, error) {
	in, err := record.Open(input)
	if err != nil {
		return nil, nil, err
	}
	out, err := record.CreateWith(output, record.CreateOptions{RetryErrors: retryErrors})
	if err != nil {
		in.Close()
		return nil, nil, err
	}
	if err := record.RemoveManifest(output); err != nil {
		in.Close()
		out.Close()
		return nil, nil, err
	}
	if out.Repaired() {
		slog.Warn("cut a torn last line from the output (left by a crash)", "output", output)
	}
	return in, out, nil
}
