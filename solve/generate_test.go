package solve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// echo is a test backend that answers with the prompt it got and the seed.
type echo struct {
	calls atomic.Int32
	delay time.Duration
	fail  func(*backend.Request) error
}

func (e *echo) Generate(ctx context.Context, r *backend.Request) (*backend.Response, error) {
	e.calls.Add(1)
	if e.delay > 0 {
		select {
		case <-time.After(e.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if e.fail != nil {
		if err := e.fail(r); err != nil {
			return nil, err
		}
	}
	text := r.Prompt
	if r.IsChat() {
		text = r.Messages[len(r.Messages)-1].Content
	}
	return &backend.Response{Text: fmt.Sprintf("%s|%d", text, r.Seed), FinishReason: "stop", CompletionTokens: 3}, nil
}

func (e *echo) Close() error { return nil }

func input(t *testing.T, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"problem\":\"p%d\"}\n", i)
	}
	p := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(p, []byte(b.String()), 0o644)
	return p
}

func readKeys(t *testing.T, path string) map[record.Key]*record.Row {
	t.Helper()
	in, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[record.Key]*record.Row{}
	for in.Next() {
		k := record.KeyOf(in.Row())
		if _, dup := out[k]; dup {
			t.Fatalf("duplicate %v", k)
		}
		out[k] = in.Row()
	}
	if in.Err() != nil {
		t.Fatal(in.Err())
	}
	return out
}

func userOnly(t *testing.T) *prompt.Prompt {
	p, err := prompt.New("t", prompt.Config{User: "Q: {problem}", Stop: []string{"###"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShardsPartitionTheRows(t *testing.T) {
	in := input(t, 50)
	dir := t.TempDir()
	all := map[record.Key]bool{}
	for i := range 3 {
		out := filepath.Join(dir, fmt.Sprintf("out%d.jsonl", i))
		st, err := Run(context.Background(), Options{Input: in, Output: out, Prompt: userOnly(t), Backend: &echo{}, Samples: 2, Shard: record.Shard{Index: i, Count: 3}})
		if err != nil {
			t.Fatal(err)
		}
		for k := range readKeys(t, out) {
			if all[k] {
				t.Fatalf("%v in two shards", k)
			}
			all[k] = true
		}
		if st.Written != 2*st.Rows {
			t.Fatalf("shard %d: %+v", i, st)
		}
	}
	if len(all) != 100 {
		t.Fatalf("%d keys over the shards, want 100", len(all))
	}
}

func TestRowsAndSeeds(t *testing.T) {
	in := input(t, 5)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	be := &echo{}
	var finished atomic.Int32
	st, err := Run(context.Background(), Options{
		Input: in, Output: out, Prompt: userOnly(t), Backend: be, Samples: 3, Limit: 4, Seed: 9, Completion: true,
		Params: backend.Request{Stop: []string{"END"}},
		Finish: func(r *record.Row) { finished.Add(1); r.Set("graded", true) },
	})
	if err != nil || st.Rows != 4 || st.Written != 12 || finished.Load() != 12 {
		t.Fatalf("%+v %v", st, err)
	}
	for k, row := range readKeys(t, out) {
		gen, _ := row.String("generation")
		p, _ := row.String("problem")
		if want := fmt.Sprintf("Q: %s|%d", p, record.Seed(k.ID, k.Sample, 9)); gen != want {
			t.Errorf("%v: %q, want %q", k, gen, want)
		}
		if keys := strings.Join(row.Keys(), ","); keys != "problem,id,generation,sample,finish_reason,num_generated_tokens,graded" {
			t.Errorf("field order %s", keys)
		}
	}
	// A rerun has nothing to do.
	st, err = Run(context.Background(), Options{Input: in, Output: out, Prompt: userOnly(t), Backend: be, Samples: 3, Limit: 4, Seed: 9, Completion: true})
	if err != nil || st.Written != 0 || st.Skipped != 12 || be.calls.Load() != 12 {
		t.Fatalf("rerun: %+v %v, %d calls", st, err, be.calls.Load())
	}
}

func TestCancelWritesNoErrorRows(t *testing.T) {
	in := input(t, 40)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The 11th request cancels the run while it and others are in flight.
	be := &echo{delay: 5 * time.Millisecond}
	be.fail = func(*backend.Request) error {
		if be.calls.Load() == 11 {
			cancel()
		}
		return nil
	}
	_, err := Run(ctx, Options{Input: in, Output: out, Prompt: userOnly(t), Backend: be, Concurrency: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	rows := readKeys(t, out)
	if len(rows) != 10 {
		t.Fatalf("%d rows written, want the 10 finished before the cancel", len(rows))
	}
	for k, r := range rows {
		if r.Has("error") {
			t.Fatalf("%v: cancellation recorded as a row error", k)
		}
	}
	if _, ok, _ := record.ReadManifest(out); ok {
		t.Fatal("manifest for a cancelled run")
	}
}

func TestRequestErrorsAreRecorded(t *testing.T) {
	in := input(t, 6)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	be := &echo{fail: func(r *backend.Request) error {
		if strings.Contains(r.Messages[0].Content, "p3") {
			return errors.New("HTTP 503:\nbusy")
		}
		return nil
	}}
	st, err := Run(context.Background(), Options{Input: in, Output: out, Prompt: userOnly(t), Backend: be})
	if err != nil || st.Errors != 1 || st.Written != 6 || st.FirstError != "HTTP 503: busy" {
		t.Fatalf("%+v %v", st, err)
	}
	// --retry-errors regenerates only the failed pair.
	be.fail = nil
	st, err = Run(context.Background(), Options{Input: in, Output: out, Prompt: userOnly(t), Backend: be, RetryErrors: true})
	if err != nil || st.Written != 1 || st.Errors != 0 {
		t.Fatalf("retry: %+v %v", st, err)
	}
	for k, r := range readKeys(t, out) {
		if r.Has("error") {
			t.Fatalf("%v still has an error", k)
		}
	}
}

func TestMessagesField(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(in, []byte(`{"id":"a","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi {there}"}]}
{"id":"b","messages":[]}
`), 0o644)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	_, err := Run(context.Background(), Options{Input: in, Output: out, MessagesField: "messages", Backend: &echo{}, Concurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "in.jsonl:2") || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("err = %v", err)
	}
	rows := readKeys(t, out)
	if g, _ := rows[record.Key{ID: "a"}].String("generation"); !strings.HasPrefix(g, "hi {there}|") {
		t.Fatalf("generation %q", g)
	}
}
