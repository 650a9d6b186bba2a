package synth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/solve"
)

// Common holds the settings every pipeline shares. They mean what the same
// flags of `crucible generate` mean.
type Common struct {
	Backend backend.Backend
	// Params holds the sampling settings copied into every request.
	Params backend.Request
	// Completion sends prompts as one string to /v1/completions.
	Completion bool
	Seed       int64 // base seed; request seeds derive from (row id, sample, Seed)
	Limit      int   // input rows to take after sharding (0: all)
	Shard      record.Shard
	// Concurrency is the number of requests in flight (default 64).
	Concurrency int
	// RetryErrors regenerates rows whose earlier request failed.
	RetryErrors bool
	// WorkDir holds the intermediate files of multi-step pipelines (default
	// OUTPUT.work). Each step resumes from its file.
	WorkDir string

	Command, Version string
	Config           any
}

// StageStats summarise one step of a pipeline.
type StageStats struct {
	Name     string `json:"name"`
	Output   string `json:"output"`
	Written  int    `json:"written"`
	Skipped  int    `json:"skipped"`
	Errors   int    `json:"errors"`
	Existing int    `json:"existing"`
}

// Report summarises a pipeline run.
type Report struct {
	Output  string
	Rows    int // rows in the final output
	Written int // final rows written by this run
	// Errors counts requests that failed after their retries in this run;
	// their rows carry an `error` field in the step's file and are retried
	// with RetryErrors.
	Errors int
	// Counts holds pipeline-specific counts (rows dropped and why, lists
	// whose length differed from the request, ...), also in the manifest.
	Counts map[string]int
	Stages []StageStats
	Wall   time.Duration
	// FirstError is the first request error of the run, if any.
	FirstError string

	mu sync.Mutex // guards Counts while steps run
}

// count adds one to a count; it is safe for concurrent use.
func (r *Report) count(key string) {
	r.mu.Lock()
	r.Counts[key]++
	r.mu.Unlock()
}

func newReport(output string) *Report {
	return &Report{Output: output, Counts: map[string]int{}}
}

func (r *Report) add(s StageStats, st solve.Stats) {
	r.Stages = append(r.Stages, s)
	r.Errors += s.Errors
	if r.FirstError == "" {
		r.FirstError = st.FirstError
	}
}

func (c *Common) workDir(output string) (string, error) {
	d := c.WorkDir
	if d == "" {
		d = output + ".work"
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("work dir: %w", err)
	}
	return d, nil
}

// genStep is one model call per (row, sample) through solve.Run.
type genStep struct {
	name    string
	input   string
	output  string
	prompt  *prompt.Prompt
	samples int
	key     string // generation field (default "generation")
	// whole selects the whole input: the Limit and Shard of Common apply to
	// the first step of a pipeline only.
	whole    bool
	prepare  func(*record.Row) error
	generate func(ctx context.Context, req *backend.Request, out *record.Row) (*backend.Response, error)
	finish   func(*record.Row)
	params   *backend.Request // replaces Common.Params
}

func (c *Common) run(ctx context.Context, rep *Report, s genStep) error {
	o := solve.Options{
		Input: s.input, Output: s.output, Prompt: s.prompt, Completion: c.Completion,
		RetryErrors: c.RetryErrors, Samples: s.samples, Seed: c.Seed,
		Params: c.Params, Backend: c.Backend, Concurrency: c.Concurrency,
		Prepare: s.prepare, Generate: s.generate, Finish: s.finish, GenerationKey: s.key,
		Label: s.name, Command: c.Command + " (" + s.name + ")", Version: c.Version, Config: c.Config,
	}
	if s.params != nil {
		o.Params = *s.params
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if !s.whole {
		o.Limit, o.Shard = c.Limit, c.Shard
	}
	st, err := solve.Run(ctx, o)
	rep.add(StageStats{Name: s.name, Output: s.output, Written: st.Written, Skipped: st.Skipped,
		Errors: st.Errors, Existing: st.Existing}, st)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	slog.Debug("synth step finished", "step", s.name, "written", st.Written, "skipped", st.Skipped, "errors", st.Errors)
	return nil
}

// readAll reads every row of a file.
func readAll(path string) ([]*record.Row, error) {
	in, err := record.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	var rows []*record.Row
	for in.Next() {
		rows = append(rows, in.Row())
	}
	return rows, in.Err()
}

// sortRows orders rows by (id, sample), so that reductions do not depend on
// the order concurrent workers wrote them in.
func sortRows(rows []*record.Row) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := record.KeyOf(rows[i]), record.KeyOf(rows[j])
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Sample < b.Sample
	})
}

// eachRow calls fn on every row of path, in file order, without holding
// the file in memory.
func eachRow(path string, fn func(*record.Row) error) error {
	in, err := record.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	for in.Next() {
		if err := fn(in.Row()); err != nil {
			return err
		}
	}
	return in.Err()
}

// derive writes the rows that fn makes from each row of in to out, skipping
// the keys out already holds. fn must be deterministic and must not depend
// on the order of the rows (concurrent steps write them in any order); it
// returns nil for a row that makes nothing.
func derive(ctx context.Context, rep *Report, name, in, out string, fn func(*record.Row) []*record.Row) error {
	return writeRows(ctx, rep, name, out, func(emit func(*record.Row) error) error {
		return eachRow(in, func(r *record.Row) error {
			for _, c := range fn(r) {
				if err := emit(c); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// writeRows writes what produce emits to out, skipping the keys the output
// already holds, and removes the output's manifest while it runs.
func writeRows(ctx context.Context, rep *Report, name, out string, produce func(emit func(*record.Row) error) error) error {
	w, err := record.Create(out)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := record.RemoveManifest(out); err != nil {
		w.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	s := StageStats{Name: name, Output: out, Existing: w.Existing()}
	err = produce(func(r *record.Row) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := record.KeyOf(r)
		if w.Done(k.ID, k.Sample) {
			s.Skipped++
			return nil
		}
		return w.Write(r)
	})
	cerr := w.Close()
	s.Written = w.Written()
	rep.Stages = append(rep.Stages, s)
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// writeSeedRows writes rows made by the pipeline itself (e.g. the single
// request for macro topics) to path. The file is rewritten with the same
// bytes on every run.
func writeSeedRows(path string, rows []*record.Row) error {
	var b bytes.Buffer
	for _, r := range rows {
		b.Write(r.AppendJSON(nil))
		b.WriteByte('\n')
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b.Bytes()) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// finish writes the final output's manifest.
func (c *Common) finish(rep *Report, start time.Time, final StageStats) error {
	rep.Written = final.Written
	rep.Rows = final.Existing + final.Written
	rep.Wall = time.Since(start)
	counts := map[string]int{}
	for k, v := range rep.Counts {
		counts[k] = v
	}
	counts["request_errors"] = rep.Errors
	m := &record.Manifest{
		Output: rep.Output, Command: c.Command, Version: c.Version,
		Rows: rep.Rows, Existing: final.Existing, Written: final.Written, Errors: rep.Errors,
		Counts: counts, Config: c.Config,
		Started: start.UTC(), Finished: time.Now().UTC(), WallSeconds: rep.Wall.Seconds(),
	}
	return record.WriteManifest(m)
}

// lastStage returns the stats of the last step, which wrote the output.
func (r *Report) lastStage() StageStats {
	if len(r.Stages) == 0 {
		return StageStats{}
	}
	return r.Stages[len(r.Stages)-1]
}

// childID names the i-th item made from a (row, sample): "ID-i", or
// "ID-sS-i" when the row was sampled more than once.
func childID(parent *record.Row, i int) string {
	k := record.KeyOf(parent)
	if k.Sample == 0 {
		return fmt.Sprintf("%s-%d", k.ID, i)
	}
	return fmt.Sprintf("%s-s%d-%d", k.ID, k.Sample, i)
}

var errNoBackend = errors.New("synth: a backend is required")

// parseFloat reads a JSON number field.
func parseFloat(r *record.Row, key string) (float64, bool) {
	raw := r.Raw(key)
	if raw == nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}
