// Package solve runs generation over rows: each input row is rendered through
// a prompt, sent to a backend once per sample, and written with the model's
// answer added. Runs resume from their output (see package record).
package solve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/progress"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/stage"
)

// Options configure a generation run.
type Options struct {
	Input  string // file, glob, comma list or "-"
	Output string // JSONL output, appended to and resumed from

	Prompt *prompt.Prompt
	// MessagesField, when set, takes each row's chat messages from this field
	// (a JSON list of {role, content}, as OpenAI-format datasets carry them)
	// instead of rendering Prompt; a trailing assistant message is continued
	// only by servers that support it, so rows normally end with a user turn.
	MessagesField string
	// Completion renders the prompt as one string for /v1/completions
	// instead of chat messages.
	Completion bool

	// RetryErrors regenerates the pairs whose earlier attempt failed (rows
	// with an `error` field) instead of skipping them.
	RetryErrors bool

	Samples int   // solutions per row (default 1)
	Seed    int64 // base seed; each request's seed derives from (id, sample, Seed)
	Limit   int   // rows to take after sharding (0: all)
	Shard   record.Shard

	// Params holds the sampling settings copied into every request
	// (MaxTokens, Temperature, TopP, TopK, MinP, RepetitionPenalty, Stop).
	Params backend.Request

	Backend     backend.Backend
	Concurrency int // requests in flight (default 256)

	// Prepare, when set, rewrites each input row before it is rendered (e.g.
	// a benchmark's field mapping). It must be deterministic.
	Prepare func(*record.Row) error
	// Generate, when set, replaces the single backend call (e.g. the
	// code-interpreter loop). It may add fields to out.
	Generate func(ctx context.Context, req *backend.Request, out *record.Row) (*backend.Response, error)

	// Finish, when set, adds fields to each successful output row after the
	// generation fields (e.g. the extracted answer and its grade).
	Finish func(out *record.Row)

	// GenerationKey is the output field of the text (default "generation").
	GenerationKey string
	// A reasoning model's chain of thought (backend.Response.Reasoning) goes
	// to the row's `reasoning` field; JoinReasoning also puts it before the
	// answer in the generation, as "<think>REASONING</think>ANSWER" (the
	// form OpenMathReasoning-style data keeps; grading reads only what
	// follows </think>).
	JoinReasoning bool

	// Label names the progress bar; Command, Version and Config go into the
	// manifest.
	Label   string
	Command string
	Version string
	Config  any
}

// Stats summarise a run.
type Stats struct {
	Rows     int // input rows selected (after shard and limit)
	Skipped  int // (row, sample) pairs already in the output
	Written  int // rows written by this run
	Errors   int // written rows whose request failed
	Existing int // rows the output held before this run
	Repaired bool
	Wall     time.Duration
	// IDs are the ids of the selected input rows, in input order.
	IDs []string
	// FirstError is the first request error of this run, if any.
	FirstError string
}

type job struct {
	row    *record.Row
	id     string
	sample int
	msgs   []backend.Message
	text   string
}

// Run generates until every (row, sample) is in the output, ctx ends, or the
// input turns out to be bad. Per-request failures are recorded on the row
// (`error`) and counted; bad input (malformed JSON, a missing prompt field,
// a duplicate id) stops the run with an error naming file and line, after the
// requests already in flight are written.
func Run(ctx context.Context, o Options) (Stats, error) {
	start := time.Now()
	if o.Samples <= 0 {
		o.Samples = 1
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.GenerationKey == "" {
		o.GenerationKey = "generation"
	}
	if o.Label == "" {
		o.Label = "generate"
	}
	if o.Prompt == nil && o.MessagesField == "" || o.Backend == nil && o.Generate == nil {
		return Stats{}, errors.New("generate: a prompt and a backend are required")
	}
	in, out, err := stage.Open(o.Input, o.Output, o.RetryErrors)
	if err != nil {
		return Stats{}, err
	}
	defer in.Close()
	st := Stats{Existing: out.Existing(), Repaired: out.Repaired()}

	total := int64(-1)
	if n := record.CountRows(o.Input); n >= 0 && o.Shard.Count <= 1 {
		if o.Limit > 0 && int64(o.Limit) < n {
			n = int64(o.Limit)
		}
		total = n * int64(o.Samples)
	}
	bar := progress.New(o.Label, total)

	o.Params.Stop = append([]string(nil), o.Params.Stop...)
	if o.Prompt != nil {
		o.Params.Stop = append(o.Params.Stop, o.Prompt.Config.Stop...)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job, o.Concurrency)
	var workers stage.Pool[job]
	workers.Start(o.Concurrency, jobs, cancel, out, bar, func(j job) (*record.Row, bool, bool) { return o.one(ctx, j) })

	inputErr := o.feed(ctx, in, out, jobs, &st, bar)
	st.Errors, st.FirstError, err = workers.Finish(ctx, jobs, inputErr, out, bar)
	st.Written = out.Written()
	st.Wall = time.Since(start)
	if err != nil {
		return st, err
	}
	m := &record.Manifest{
		Output: o.Output, Command: o.Command, Version: o.Version,
		Rows: st.Existing + st.Written, Existing: st.Existing, Written: st.Written, Errors: st.Errors,
		Counts:  map[string]int{"input_rows": st.Rows, "samples": o.Samples, "skipped": st.Skipped},
		Config:  o.Config,
		Started: start.UTC(), Finished: time.Now().UTC(), WallSeconds: st.Wall.Seconds(),
	}
	return st, record.WriteManifest(m)
}

// feed reads the input and queues the pairs the output lacks.
func (o *Options) feed(ctx context.Context, in *record.Reader, out *record.Writer, jobs chan<- job, st *Stats, bar *progress.Bar) error {
	return o.EachSelected(in, func(row *record.Row, id, file string, line int) (bool, error) {
		st.Rows++
		st.IDs = append(st.IDs, id)
		j := job{row: row, id: id}
		pending := false
		for s := range o.Samples {
			if out.Done(id, s) {
				st.Skipped++
				bar.Add(1)
				continue
			}
			if !pending {
				// Render once per row, only when something is left to do.
				if err := o.render(row, &j); err != nil {
					return false, fmt.Errorf("%s:%d: row %q: %w", file, line, id, err)
				}
				pending = true
			}
			j.sample = s
			select {
			case jobs <- j:
			case <-ctx.Done():
				return false, nil
			}
		}
		return true, nil
	})
}

// EachSelected reads in and calls fn with each row o selects, in input
// order: prepared (Options.Prepare), in o.Shard, within o.Limit. A
// duplicate id is an error naming both lines. fn returns false to stop.
func (o *Options) EachSelected(in *record.Reader, fn func(row *record.Row, id, file string, line int) (bool, error)) error {
	seen := map[string]int{} // id -> line, to reject duplicate ids
	n := 0
	for in.Next() {
		row := in.Row()
		file, line := in.Pos()
		if o.Prepare != nil {
			if err := o.Prepare(row); err != nil {
				return fmt.Errorf("%s:%d: %w", file, line, err)
			}
		}
		id := row.ID()
		if !o.Shard.Contains(id) {
			continue
		}
		if prev, dup := seen[id]; dup {
			return fmt.Errorf("%s:%d: duplicate row id %q (first seen at line %d); give rows distinct `id` fields", file, line, id, prev)
		}
		seen[id] = line
		if o.Limit > 0 && n >= o.Limit {
			break
		}
		n++
		if more, err := fn(row, id, file, line); err != nil || !more {
			return err
		}
	}
	return in.Err()
}

// render fills a job's prompt from the row.
func (o *Options) render(row *record.Row, j *job) error {
	var err error
	switch {
	case o.MessagesField != "":
		if err = row.Decode(o.MessagesField, &j.msgs); err != nil {
			return fmt.Errorf("messages field %q: %w", o.MessagesField, err)
		}
		if len(j.msgs) == 0 {
			return fmt.Errorf("messages field %q is empty", o.MessagesField)
		}
		for i, m := range j.msgs {
			if m.Role == "" {
				return fmt.Errorf("messages field %q: message %d has no role", o.MessagesField, i+1)
			}
		}
		if o.Completion {
			return fmt.Errorf("--messages-field needs a chat endpoint (drop --completion)")
		}
		return nil
	case o.Completion:
		j.text, err = o.Prompt.Text(row)
	default:
		j.msgs, err = o.Prompt.Messages(row)
	}
	if err != nil {
		return fmt.Errorf("prompt %s: %w", o.Prompt.Name, err)
	}
	return nil
}

// one runs one (row, sample) and returns the output row; ok is false when
// the run was cancelled before the pair finished.
func (o *Options) one(ctx context.Context, j job) (out *record.Row, failed, ok bool) {
	req := o.Params
	req.Prompt, req.Messages = j.text, j.msgs
	req.Seed, req.HasSeed = record.Seed(j.id, j.sample, o.Seed), true
	out = j.row.Clone()
	if !out.Has("id") {
		out.Set("id", j.id)
	}
	var resp *backend.Response
	var err error
	if o.Generate != nil {
		resp, err = o.Generate(ctx, &req, out)
	} else {
		resp, err = o.Backend.Generate(ctx, &req)
	}
	if ctx.Err() != nil {
		return nil, false, false
	}
	if err != nil {
		out.Set(o.GenerationKey, "")
		out.Set("sample", j.sample)
		out.Set("finish_reason", "error")
		out.Set("num_generated_tokens", 0)
		out.Set("error", oneLine(err.Error()))
		if o.Finish != nil {
			o.Finish(out)
		}
		return out, true, true
	}
	text := resp.Text
	if resp.Reasoning != "" && o.JoinReasoning {
		text = "<think>" + resp.Reasoning + "</think>" + text
	}
	out.Set(o.GenerationKey, text)
	if resp.Reasoning != "" {
		out.Set("reasoning", resp.Reasoning)
	}
	out.Set("sample", j.sample)
	out.Set("finish_reason", resp.FinishReason)
	out.Set("num_generated_tokens", resp.CompletionTokens)
	if out.Has("error") {
		out.Delete("error") // an input row's stale error does not describe this generation
	}
	if o.Finish != nil {
		o.Finish(out)
	}
	return out, false, true
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
