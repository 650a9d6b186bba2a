package curate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/crucible-ml/crucible/record"
)

// writeSynthetic writes n synthetic rows and the synthetic benchmark.
func writeSynthetic(t testing.TB, dir string, n int) (rows, bench string) {
	t.Helper()
	rows, bench = filepath.Join(dir, "rows.jsonl"), filepath.Join(dir, "bench.jsonl")
	var b []byte
	for i := range n {
		b = SyntheticRow(SyntheticOptions{}, i).AppendJSON(b)
		b = append(b, '\n')
	}
	if err := os.WriteFile(rows, b, 0o644); err != nil {
		t.Fatal(err)
	}
	b = b[:0]
	for i, p := range SyntheticBenchmark(1) {
		r := &record.Row{}
		r.Set("unique_id", fmt.Sprintf("bench/%d", i))
		r.Set("problem", p)
		r.Set("expected_answer", "0")
		b = append(r.AppendJSON(b), '\n')
	}
	if err := os.WriteFile(bench, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return rows, bench
}

// inMemory curates rows the way RunFile did before it was bounded: every
// row in memory, the steps run over one Dataset.
func inMemory(t testing.TB, p *Pipeline, in string) (out, removed, report []byte) {
	t.Helper()
	d := NewDataset(readRows(t, in, 0))
	if err := p.Run(context.Background(), d, Env{CacheDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	var o, r bytes.Buffer
	if err := WriteJSONL(&o, d.Rows); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSONL(&r, d.Removed); err != nil {
		t.Fatal(err)
	}
	jb, _ := json.MarshalIndent(NewReport(d), "", "  ")
	return o.Bytes(), r.Bytes(), append(jb, '\n')
}

// TestBoundedEqualsInMemory curates a synthetic OMI-2-shaped sample with
// every kind of step, per-problem and global, at memory limits that give one
// partition and several (with spilled buckets), and compares the output,
// the removed rows and the report byte for byte with the in-memory run.
func TestBoundedEqualsInMemory(t *testing.T) {
	n := 200000
	if testing.Short() {
		n = 20000
	}
	dir := t.TempDir()
	in, bench := writeSynthetic(t, dir, n)
	cfg := fmt.Sprintf(`steps:
  - aggregate: {min_agreement: 0.3}
  - filter: no_answer
  - filter: multi_boxed
  - where: 'finish_reason == "stop"'
  - trim
  - dedup: {method: exact, field: solution, scope: problem}
  - dedup: {method: minhash, scope: problem}
  - filter: correct
  - dedup: {method: exact, field: solution, scope: global}
  - dedup: {method: minhash, scope: global, threshold: 0.7}
  - decontaminate: {method: ngram, benchmarks: [%s], max_matches: 10}
  - dedup: {method: exact, field: problem, scope: global}
  - downsample: {n: %d, per_problem: 4, seed: 7}
`, bench, n/3)
	p, err := ParsePipeline([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	wantOut, wantRemoved, wantReport := inMemory(t, p, in)
	size, _ := os.Stat(in)
	if partitionsFor(size.Size(), size.Size()) < 4 {
		t.Fatal("the small limit does not split the sample")
	}
	for _, tc := range []struct {
		name  string
		limit int64
		parts int
	}{
		{"one partition", 64 << 30, 1},
		{"partitions", size.Size(), partitionsFor(size.Size(), size.Size())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "sft.jsonl")
			steps := map[string]int{}
			rep, err := RunFile(context.Background(), p, FileOptions{
				Input: in, Output: out, MemoryLimit: tc.limit,
				Observe: func(s StepTiming) { steps[s.Step]++ },
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := steps["aggregate"]; got != tc.parts {
				t.Errorf("aggregate ran over %d partitions, want %d", got, tc.parts)
			}
			for _, f := range rep.Funnel {
				if f.Removed == 0 && f.Step != "trim" {
					t.Errorf("step %s removed nothing: the sample does not test it", f.Step)
				}
			}
			for _, c := range []struct {
				file string
				want []byte
			}{{"sft.jsonl", wantOut}, {"sft.removed.jsonl", wantRemoved}, {"sft.report.json", wantReport}} {
				got, err := os.ReadFile(filepath.Join(filepath.Dir(out), c.file))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, c.want) {
					t.Errorf("%s differs from the in-memory result (%d bytes, want %d)", c.file, len(got), len(c.want))
				}
			}
			if _, err := os.Stat(filepath.Join(out+".cache", "work")); !os.IsNotExist(err) {
				t.Errorf("work files left behind: %v", err)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"1024", 1024, false},
		{"2G", 2 << 30, false},
		{"1536M", 1536 << 20, false},
		{"512MiB", 512 << 20, false},
		{"1.5g", 3 << 29, false},
		{"64kb", 64 << 10, false},
		{"lots", 0, true},
		{"-1G", 0, true},
	} {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// TestBoundedFormats curates a Parquet input and a gzip-free JSONL input
// into JSONL and Parquet outputs and compares each with the in-memory
// export of the same rows.
func TestBoundedFormats(t *testing.T) {
	dir := t.TempDir()
	in, _ := writeSynthetic(t, dir, 3000)
	p, err := ParsePipeline([]byte("steps:\n  - aggregate\n  - filter: correct\n  - trim\n  - dedup: {method: minhash, scope: global}\n  - downsample: {n: 900, per_problem: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	pq := filepath.Join(dir, "rows.parquet")
	if _, err := NewDataset(readRows(t, in, 0)).Export(pq, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, out string }{
		{in, "a.parquet"},
		{pq, "b.jsonl"},
		{in + "," + in, "c.jsonl"}, // a list: every row twice
	} {
		t.Run(filepath.Base(tc.out), func(t *testing.T) {
			want := filepath.Join(dir, "want-"+tc.out)
			d := NewDataset(readRows(t, tc.in, 0))
			if err := p.Run(context.Background(), d, Env{}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Export(want, ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			got := filepath.Join(dir, tc.out)
			if _, err := RunFile(context.Background(), p, FileOptions{Input: tc.in, Output: got, MemoryLimit: 4 << 20}); err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(got)
			b, _ := os.ReadFile(want)
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("%s: %d bytes, want %d equal to the in-memory export", tc.out, len(a), len(b))
			}
		})
	}
}

// TestBoundedCancel stops a curation from its first report of progress:
// RunFile returns the context's error and leaves no output or work files.
func TestBoundedCancel(t *testing.T) {
	dir := t.TempDir()
	in, _ := writeSynthetic(t, dir, 2000)
	p, err := ParsePipeline([]byte("steps:\n  - filter: correct\n  - dedup: {method: exact, scope: global}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := filepath.Join(dir, "sft.jsonl")
	_, err = RunFile(ctx, p, FileOptions{Input: in, Output: out, MemoryLimit: 1 << 20, Observe: func(StepTiming) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out+".cache", "work")); !os.IsNotExist(err) {
		t.Errorf("work files left: %v", err)
	}
}

// TestShardsResume runs a sharded curation job by job, each task in a fresh
// Shards as a separate process would, stops after some tasks of the first
// pass, and checks that a rerun does only the unfinished tasks and that the
// result equals the in-memory run.
func TestShardsResume(t *testing.T) {
	dir := t.TempDir()
	in, bench := writeSynthetic(t, dir, 4000)
	p, err := ParsePipeline([]byte(fmt.Sprintf(`steps:
  - aggregate
  - filter: correct
  - dedup: {method: minhash, scope: problem}
  - dedup: {method: minhash, scope: global, threshold: 0.7}
  - dedup: {method: exact, scope: global}
  - decontaminate: {method: ngram, benchmarks: [%s], max_matches: 10}
  - downsample: {n: 1000, per_problem: 3, seed: 3}
`, bench)))
	if err != nil {
		t.Fatal(err)
	}
	wantOut, wantRemoved, wantReport := inMemory(t, p, in)
	out := filepath.Join(dir, "sft.jsonl")
	ran := map[string]int{}
	o := FileOptions{Input: in, Output: out, Observe: func(s StepTiming) { ran[s.Step]++ }}
	task := func(job string, k int) {
		t.Helper()
		sh, err := PrepareShards(context.Background(), p, o, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := sh.RunTask(context.Background(), job, k); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := PrepareShards(context.Background(), p, o, 4)
	if err != nil {
		t.Fatal(err)
	}
	jobs := sh.Jobs
	if jobs[0].Name != "split" || jobs[0].Tasks != 4 || jobs[1].Name != "pass-0" || jobs[len(jobs)-1].Name != "write" {
		t.Fatalf("jobs %+v", jobs)
	}
	for k := range 4 {
		task("split", k)
	}
	task("pass-0", 0)
	task("pass-0", 2)
	if ran["aggregate"] != 2 {
		t.Fatalf("aggregate ran %d times, want 2", ran["aggregate"])
	}
	// The rerun: every job in order; finished tasks are skipped.
	for _, j := range jobs {
		for k := range j.Tasks {
			task(j.Name, k)
		}
	}
	if ran["aggregate"] != 4 || ran["split"] != 4 {
		t.Errorf("aggregate ran %d times, split %d; want 4 each", ran["aggregate"], ran["split"])
	}
	for _, c := range []struct {
		file string
		want []byte
	}{{"sft.jsonl", wantOut}, {"sft.removed.jsonl", wantRemoved}, {"sft.report.json", wantReport}} {
		got, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s differs from the in-memory result (%d bytes, want %d)", c.file, len(got), len(c.want))
		}
	}
	if _, err := os.Stat(filepath.Join(out+".cache", "work")); !os.IsNotExist(err) {
		t.Errorf("work folder left after write: %v", err)
	}
}
