// Package eval scores a model on a math benchmark: generate solutions
// (package solve), extract and grade each answer, and compute NeMo-Skills'
// metrics — greedy accuracy, majority@K, pass@K (unbiased estimator),
// pass@1[avg-of-N] with its spread, no_answer — overall and per MATH subject
// and level.
package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/data"
	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/solve"
)

// Options configure an evaluation.
type Options struct {
	// Benchmark is a name from data.Benchmarks or a JSONL file with `problem` (or
	// `question`) and `expected_answer` (or `answer`).
	Benchmark string
	DataDir   string // where named benchmarks live (default data.DefaultDir)
	OutDir    string // output.jsonl and metrics.json go here
	// Gen configures generation; Input, Output, Prepare and Finish are set by
	// Run.
	Gen    solve.Options
	Grader Grader // default NewMathGrader()
	HTTP   *http.Client
	// ScoreOnly computes the metrics from the rows OutDir/output.jsonl
	// already holds (e.g. the shards of a pipeline stage merged there),
	// generating nothing: every selected benchmark row (Gen.Shard,
	// Gen.Limit) must have its Gen.Samples samples.
	ScoreOnly bool
}

// Result is what an evaluation produced.
type Result struct {
	Name    string
	Metrics *Metrics
	Stats   solve.Stats
	Output  string // path of output.jsonl
}

// Run evaluates, resuming from what OutDir already holds.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Grader == nil {
		o.Grader = NewMathGrader()
	}
	if o.DataDir == "" {
		o.DataDir = data.DefaultDir()
	}
	input, name, err := resolve(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	g := o.Gen
	g.Input = input
	g.Output = filepath.Join(o.OutDir, "output.jsonl")
	g.Prepare = data.Prepare
	g.Finish = func(row *record.Row) { GradeRow(o.Grader, row) }
	if g.Label == "" {
		g.Label = "eval " + name
	}
	var st solve.Stats
	if o.ScoreOnly {
		st, err = selected(g)
	} else {
		st, err = solve.Run(ctx, g)
	}
	res := &Result{Name: name, Stats: st, Output: g.Output}
	if err != nil {
		return res, err
	}
	problems, err := collect(g.Output, st.IDs, g.Samples, o.Grader)
	if err != nil {
		return res, err
	}
	res.Metrics = Compute(problems, max(g.Samples, 1), g.Params.Temperature == 0, o.Grader.Same)
	out := res.Metrics.JSON()
	out["benchmark"] = name
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(o.OutDir, "metrics.json"), append(b, '\n'), 0o644); err != nil {
		return res, err
	}
	return res, nil
}

func resolve(ctx context.Context, o Options) (path, name string, err error) {
	if b, ok := data.Lookup(o.Benchmark); ok {
		p, err := data.Get(ctx, o.HTTP, b, o.DataDir)
		return p, b.Name, err
	}
	if st, err := os.Stat(o.Benchmark); err == nil && !st.IsDir() {
		return o.Benchmark, strings.TrimSuffix(filepath.Base(o.Benchmark), filepath.Ext(o.Benchmark)), nil
	}
	return "", "", fmt.Errorf("--benchmark %q: not a known benchmark (%s) nor a file", o.Benchmark, strings.Join(data.Names(), ", "))
}

// GradeRow sets `predicted_answer` (null when none) and `is_correct` from a
// row's `generation` and `expected_answer`, and `grade_policy` when the
// grader names its policy (as grade.Grader does).
func GradeRow(g Grader, row *record.Row) {
	gen, _ := row.String("generation")
	gold, _ := row.Text("expected_answer")
	pred, ok := g.Extract(gen)
	if !ok || row.Has("error") {
		row.SetRaw("predicted_answer", json.RawMessage("null"))
		row.Set("is_correct", false)
	} else {
		row.Set("predicted_answer", pred)
		row.Set("is_correct", g.Equal(gold, pred))
	}
	if p, ok := g.(policyNamer); ok && p.Policy() != "" {
		row.Set("grade_policy", p.Policy())
	}
}

// selected lists the benchmark rows g selects (as solve.Run does) and
// checks that g.Output holds every sample of each, for ScoreOnly.
func selected(g solve.Options) (solve.Stats, error) {
	start := time.Now()
	var st solve.Stats
	in, err := record.Open(g.Input)
	if err != nil {
		return st, err
	}
	defer in.Close()
	err = g.EachSelected(in, func(_ *record.Row, id, _ string, _ int) (bool, error) {
		st.Rows++
		st.IDs = append(st.IDs, id)
		return true, nil
	})
	if err != nil {
		return st, err
	}
	have := map[record.Key]bool{}
	out, err := record.Open(g.Output)
	if err != nil {
		return st, fmt.Errorf("score only: %w", err)
	}
	defer out.Close()
	for out.Next() {
		have[record.KeyOf(out.Row())] = true
	}
	if err := out.Err(); err != nil {
		return st, err
	}
	n := max(g.Samples, 1)
	missing := 0
	for _, id := range st.IDs {
		for s := range n {
			if !have[record.Key{ID: id, Sample: s}] {
				missing++
			}
		}
	}
	if missing > 0 {
		return st, fmt.Errorf("score only: %s lacks %d of the %d (row, sample) pairs the benchmark selects", g.Output, missing, len(st.IDs)*n)
	}
	st.Skipped = len(st.IDs) * n
	st.Wall = time.Since(start)
	return st, nil
}

var levelRE = regexp.MustCompile(`(\d+)`)

// collect reads the graded output and groups the samples of the selected
// ids. It grades again from `generation`, so metrics always reflect the
// current grader.
func collect(path string, ids []string, n int, g Grader) ([]Problem, error) {
	want := make(map[string]int, len(ids))
	problems := make([]Problem, len(ids))
	for i, id := range ids {
		want[id] = i
		problems[i].ID = id
	}
	in, err := record.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	for in.Next() {
		row := in.Row()
		i, ok := want[row.ID()]
		if !ok {
			continue
		}
		k := record.KeyOf(row)
		if k.Sample >= n {
			continue
		}
		GradeRow(g, row)
		p := &problems[i]
		if p.Subject == "" {
			p.Subject, _ = row.String("subject")
		}
		if p.Level == "" {
			if lv, ok := row.Text("level"); ok {
				if m := levelRE.FindString(lv); m != "" {
					p.Level = m
				}
			}
		}
		pred, hasPred := row.String("predicted_answer")
		correct, _ := row.Bool("is_correct")
		p.Samples = append(p.Samples, Sample{Index: k.Sample, Answer: pred, HasAnswer: hasPred, Correct: correct, Error: row.Has("error")})
	}
	return problems, in.Err()
}
