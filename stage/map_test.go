package stage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/record"
)

func TestMapKeyedRows(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"id":"a","sample":0,"x":1}
{"id":"a","sample":1,"x":2}
{"id":"b","sample":0,"x":3,"error":"stale"}
`), 0o644)
	out := filepath.Join(dir, "out.jsonl")
	calls := 0
	fn := func(_ context.Context, r *record.Row) error {
		calls++
		x, _ := r.Int("x")
		if x == 2 {
			return errors.New("scorer\nfailed")
		}
		r.Set("score", x*10)
		return nil
	}
	st, err := Map(context.Background(), MapOptions{Input: in, Output: out, Concurrency: 1}, fn)
	if err != nil || st.Written != 3 || st.Errors != 1 || st.FirstError != "scorer failed" {
		t.Fatalf("%+v %v", st, err)
	}
	rows := readKeys(t, out)
	if v, _ := rows[record.Key{ID: "b"}].Int("score"); v != 30 || rows[record.Key{ID: "b"}].Has("error") {
		t.Fatalf("b: %s", rows[record.Key{ID: "b"}].AppendJSON(nil))
	}
	// Rerun: nothing to do; with RetryErrors only the failed row again.
	if st, _ := Map(context.Background(), MapOptions{Input: in, Output: out}, fn); st.Written != 0 || st.Skipped != 3 {
		t.Fatalf("rerun %+v", st)
	}
	calls = 0
	if st, _ := Map(context.Background(), MapOptions{Input: in, Output: out, RetryErrors: true}, fn); st.Written != 1 || calls != 1 {
		t.Fatalf("retry %+v, %d calls", st, calls)
	}
	// KeepErrors: the earlier stage's error reaches fn and stays on the row.
	var sawErr string
	keep := filepath.Join(dir, "keep.jsonl")
	if _, err := Map(context.Background(), MapOptions{Input: in, Output: keep, KeepErrors: true}, func(_ context.Context, r *record.Row) error {
		if s, ok := r.String("error"); ok {
			sawErr = s
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readKeys(t, keep)[record.Key{ID: "b"}].String("error"); sawErr != "stale" || got != "stale" {
		t.Fatalf("KeepErrors: fn saw %q, row has %q", sawErr, got)
	}
	// A duplicate (id, sample) is bad input naming the line.
	os.WriteFile(in, []byte("{\"id\":\"a\",\"sample\":0}\n{\"id\":\"a\",\"sample\":0}\n"), 0o644)
	if _, err := Map(context.Background(), MapOptions{Input: in, Output: filepath.Join(dir, "o2.jsonl")}, fn); err == nil || !strings.Contains(err.Error(), "in.jsonl:2") {
		t.Fatalf("err = %v", err)
	}
}

func readKeys(t *testing.T, path string) map[record.Key]*record.Row {
	t.Helper()
	in, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := map[record.Key]*record.Row{}
	for in.Next() {
		out[record.KeyOf(in.Row())] = in.Row()
	}
	if in.Err() != nil {
		t.Fatal(in.Err())
	}
	return out
}
