package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	"github.com/crucible-ml/crucible/curate"
	"github.com/crucible-ml/crucible/data"
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
