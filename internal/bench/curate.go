package bench

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/curate"
	"github.com/crucible-ml/crucible/data"
	"github.com/crucible-ml/crucible/progress"
	"github.com/crucible-ml/crucible/record"
)

// CurateResult reports the curation benchmarks.
type CurateResult struct {
	MinHashRows        int     `json:"minhash_rows"`
	MinHashMeanChars   float64 `json:"minhash_mean_chars"`
	MinHashRowsPerSec  float64 `json:"minhash_rows_per_s_one_core"`
	MinHashRemoved     int     `json:"minhash_removed"`
	DecontamRows       int     `json:"decontam_rows"`
	DecontamRefs       int     `json:"decontam_reference_texts"`
	DecontamNgrams     int     `json:"decontam_indexed_ngrams"`
	DecontamIndexSec   float64 `json:"decontam_index_seconds"`
	DecontamSeconds    float64 `json:"decontam_seconds"`
	DecontamRowsPerSec float64 `json:"decontam_rows_per_s"`
	DecontamRemoved    int     `json:"decontam_removed"`
	GOMAXPROCS         int     `json:"gomaxprocs"`
}

// Curate measures MinHash dedup on one core over minhashRows solution-length
// rows, and 13-gram decontamination of decontamRows rows (problem and
// solution fields) against the GSM8K and MATH test sets, on all cores. The
// rows are built from the GSM8K and MATH train sets in dataDir.
func Curate(ctx context.Context, dataDir string, minhashRows, decontamRows int) (*CurateResult, error) {
	var pool [][2]string // (problem, solution)
	for _, name := range []string{"gsm8k-train", "math-train"} {
		b, _ := data.Lookup(name)
		in, err := record.Open(filepath.Join(dataDir, b.File))
		if err != nil {
			return nil, fmt.Errorf("bench needs %s in --data-dir: %w", name, err)
		}
		for in.Next() {
			r := in.Row()
			if err := data.Prepare(r); err != nil {
				return nil, err
			}
			p, _ := r.String("problem")
			s, ok := r.String("solution")
			if !ok {
				s, _ = r.String("answer")
			}
			pool = append(pool, [2]string{p, s})
		}
		in.Close()
	}
	res := &CurateResult{GOMAXPROCS: runtime.GOMAXPROCS(0)}
	build := func(n int) []*record.Row {
		rows := make([]*record.Row, n)
		for i := range rows {
			ps := pool[i%len(pool)]
			r := &record.Row{}
			r.Set("id", fmt.Sprintf("r%d", i))
			r.Set("problem", ps[0])
			// Each pass over the pool varies the text so rows are not
			// exact copies; about 1 in 3 rows of a later pass stays a
			// near-duplicate of its first-pass row.
			sol := ps[1]
			if pass := i / len(pool); pass > 0 {
				sol = fmt.Sprintf("Solution variant %d.\n%s", pass, sol)
				if i%3 != 0 {
					sol = fmt.Sprintf("%s\nWe double-check the result in another way (variant %d): %s", sol, pass, pool[(i*7919+pass*104729)%len(pool)][1])
				}
			}
			r.Set("generation", sol)
			rows[i] = r
		}
		return rows
	}

	// MinHash on one core.
	rows := build(minhashRows)
	chars := 0
	for _, r := range rows {
		s, _ := r.String("generation")
		chars += len(s)
	}
	res.MinHashRows = len(rows)
	res.MinHashMeanChars = float64(chars) / float64(len(rows))
	prev := runtime.GOMAXPROCS(1)
	d := curate.NewDataset(rows)
	start := time.Now()
	res.MinHashRemoved = curate.MinHashDedup(d, curate.DefaultMinHash())
	res.MinHashRowsPerSec = float64(len(rows)) / time.Since(start).Seconds()
	runtime.GOMAXPROCS(prev)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// 13-gram decontamination on all cores.
	start = time.Now()
	refs, err := curate.References(ctx, []string{"gsm8k", "math"}, dataDir)
	if err != nil {
		return nil, err
	}
	ix := curate.NewNgramIndex(refs, 13)
	res.DecontamIndexSec = time.Since(start).Seconds()
	res.DecontamRefs, res.DecontamNgrams = len(refs), ix.Len()
	rows = build(decontamRows)
	d = curate.NewDataset(rows)
	start = time.Now()
	res.DecontamRemoved = curate.NgramDecontaminate(d, ix, curate.NgramOptions{Fields: []string{"problem", "solution"}, MaxMatches: 10})
	res.DecontamSeconds = time.Since(start).Seconds()
	res.DecontamRows = decontamRows
	res.DecontamRowsPerSec = float64(decontamRows) / res.DecontamSeconds
	return res, nil
}

// CurateScaleOptions configure CurateScale.
type CurateScaleOptions struct {
	Rows int
	// Dir holds the generated input, the outputs and the work files
	// (removed at the end unless Keep).
	Dir  string
	Keep bool
	// MemoryLimit is passed to curate.RunFile (0: its default).
	MemoryLimit int64
	// Global adds global exact and MinHash dedup to the OMI-2 steps.
	Global bool
}

// CurateStep is one step's share of a scale run, summed over partitions.
type CurateStep struct {
	// Step is the step's number in the config and its name ("8
	// dedup_minhash", "8 dedup_minhash collect"), or the work around the
	// steps: split, io (reading and writing partitions), write.
	Step       string  `json:"step"`
	Seconds    float64 `json:"seconds"`
	Rows       int     `json:"rows"`
	RowsPerSec float64 `json:"rows_per_s"`
	// PeakRSSMB is the highest resident memory while the step ran (the
	// kernel's high-water mark, reset before each piece of work).
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

// CurateScaleResult reports a scale run.
type CurateScaleResult struct {
	Rows           int          `json:"rows"`
	InputBytes     int64        `json:"input_bytes"`
	GenerateSec    float64      `json:"generate_seconds"`
	CurateSec      float64      `json:"curate_seconds"`
	RowsPerSec     float64      `json:"rows_per_s"`
	PeakRSSMB      float64      `json:"peak_rss_mb"`
	MemoryLimitMB  float64      `json:"memory_limit_mb"`
	PeakWorkMB     float64      `json:"peak_work_mb"`
	OutputRows     int          `json:"output_rows"`
	OutputBytes    int64        `json:"output_bytes"`
	RemovedBytes   int64        `json:"removed_bytes"`
	Steps          []CurateStep `json:"steps"`
	Funnel         string       `json:"funnel"`
	GOMAXPROCS     int          `json:"gomaxprocs"`
	MemoryLimitSet bool         `json:"memory_limit_set"`
}

// CurateScale generates o.Rows synthetic OpenMathInstruct-2-shaped rows
// (curate.SyntheticRow: planted exact and near duplicates, wrong answers,
// contaminated problems) and curates them with OMI-2's steps — aggregate,
// filters, trim, exact and MinHash dedup within problems, 13-gram
// decontamination against the synthetic benchmark, fair downsampling —
// measuring the time and peak resident memory of each step.
func CurateScale(ctx context.Context, o CurateScaleOptions) (*CurateScaleResult, error) {
	if o.Rows <= 0 {
		return nil, fmt.Errorf("bench curate: --rows must be positive")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if !o.Keep {
		defer func() {
			for _, f := range []string{"rows.jsonl", "bench.jsonl", "steps.yaml", "sft.jsonl", "sft.removed.jsonl", "sft.report.json", "sft.report.md", "sft.jsonl.manifest.json"} {
				os.Remove(filepath.Join(o.Dir, f))
			}
			os.RemoveAll(filepath.Join(o.Dir, "sft.jsonl.cache"))
		}()
	}
	res := &CurateScaleResult{Rows: o.Rows, GOMAXPROCS: runtime.GOMAXPROCS(0), MemoryLimitSet: o.MemoryLimit > 0}
	start := time.Now()
	in, bench := filepath.Join(o.Dir, "rows.jsonl"), filepath.Join(o.Dir, "bench.jsonl")
	n, err := writeSyntheticRows(ctx, in, bench, o.Rows)
	if err != nil {
		return nil, err
	}
	res.InputBytes, res.GenerateSec = n, time.Since(start).Seconds()
	steps := `steps:
  - aggregate: {min_agreement: 0.3}
  - filter: correct
  - filter: no_answer
  - filter: multi_boxed
  - trim
  - dedup: {method: exact, field: solution, scope: problem}
  - dedup: {method: minhash, scope: problem}
`
	if o.Global {
		steps += "  - dedup: {method: exact, field: solution, scope: global}\n  - dedup: {method: minhash, scope: global}\n"
	}
	steps += fmt.Sprintf("  - decontaminate: {method: ngram, benchmarks: [%s], n: 13, max_matches: 10}\n  - downsample: {n: %d, per_problem: 4, seed: 1}\n", bench, o.Rows/2)
	p, err := curate.ParsePipeline([]byte(steps))
	if err != nil {
		return nil, err
	}
	byStep := map[string]*CurateStep{}
	var order []string
	work := filepath.Join(o.Dir, "sft.jsonl.cache")
	var peakWork int64
	observe := func(t curate.StepTiming) {
		name := t.Step
		if t.Index > 0 {
			name = fmt.Sprintf("%d %s", t.Index, t.Step)
		}
		s := byStep[name]
		if s == nil {
			s = &CurateStep{Step: name}
			byStep[name] = s
			order = append(order, name)
		}
		s.Seconds += t.Elapsed.Seconds()
		s.Rows += t.Rows
		s.PeakRSSMB = max(s.PeakRSSMB, peakRSSMB())
		resetPeakRSS()
		peakWork = max(peakWork, dirSize(work))
	}
	var funnel strings.Builder
	start = time.Now()
	resetPeakRSS()
	rep, err := curate.RunFile(ctx, p, curate.FileOptions{
		Input: in, Output: filepath.Join(o.Dir, "sft.jsonl"), MemoryLimit: o.MemoryLimit,
		Observe: observe, Funnel: &funnel, Env: curate.Env{CacheDir: work},
	})
	if err != nil {
		return nil, err
	}
	res.CurateSec = time.Since(start).Seconds()
	res.RowsPerSec = float64(o.Rows) / res.CurateSec
	res.MemoryLimitMB = float64(o.MemoryLimit) / (1 << 20)
	if o.MemoryLimit <= 0 {
		res.MemoryLimitMB = float64(curate.DefaultMemoryLimit()) / (1 << 20)
	}
	res.PeakWorkMB = float64(peakWork) / (1 << 20)
	res.OutputRows, res.Funnel = rep.RowsOut, funnel.String()
	res.OutputBytes = fileSize(filepath.Join(o.Dir, "sft.jsonl"))
	res.RemovedBytes = fileSize(filepath.Join(o.Dir, "sft.removed.jsonl"))
	for _, name := range order {
		s := byStep[name]
		if s.Seconds > 0 && s.Rows > 0 {
			s.RowsPerSec = float64(s.Rows) / s.Seconds
		}
		res.PeakRSSMB = max(res.PeakRSSMB, s.PeakRSSMB)
		res.Steps = append(res.Steps, *s)
	}
	return res, nil
}

// writeSyntheticRows writes n synthetic rows to path and the synthetic
// benchmark to bench, returning the rows' size in bytes.
func writeSyntheticRows(ctx context.Context, path, bench string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	bar := progress.New("generate "+path, int64(n))
	defer bar.Finish()
	var buf []byte
	var size int64
	for i := range n {
		if i%4096 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		buf = curate.SyntheticRow(curate.SyntheticOptions{}, i).AppendJSON(buf[:0])
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return 0, err
		}
		size += int64(len(buf))
		bar.Add(1)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	buf = buf[:0]
	for i, p := range curate.SyntheticBenchmark(1) {
		r := &record.Row{}
		r.Set("unique_id", fmt.Sprintf("bench/%d", i))
		r.Set("problem", p)
		r.Set("expected_answer", "0")
		buf = append(r.AppendJSON(buf), '\n')
	}
	return size, os.WriteFile(bench, buf, 0o644)
}

// resetPeakRSS resets the kernel's resident-memory high-water mark of this
// process (Linux; elsewhere it does nothing).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0o644) }

// peakRSSMB reads the high-water mark (VmHWM) in MiB.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
