package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/grade"
)

// GradeResult reports the speed of the grader over a set of pairs.
type GradeResult struct {
	Pairs       int     `json:"pairs"`
	Rounds      int     `json:"rounds"`
	Equal       int     `json:"equal"`
	Seconds     float64 `json:"seconds"`
	PairsPerSec float64 `json:"pairs_per_sec"`
	// Slowest is the slowest pair's time: the largest over pairs of each
	// pair's fastest round, so that a garbage-collection pause does not count.
	Slowest     time.Duration `json:"slowest_ns"`
	SlowestGold string        `json:"slowest_gold"`
	SlowestPred string        `json:"slowest_pred"`
	// MaxObserved is the longest single verdict seen, pauses included.
	MaxObserved time.Duration `json:"max_observed_ns"`
}

// Grade grades every pair (gold, predicted) with grade.Equal on the calling
// goroutine, in rounds until at least minTime has passed (and at least three
// rounds), and reports pairs per second and the slowest pair. It stops early
// when ctx is done.
func Grade(ctx context.Context, pairs [][2]string, opts grade.Options, minTime time.Duration) GradeResult {
	var r GradeResult
	if len(pairs) == 0 {
		return r
	}
	best := make([]time.Duration, len(pairs))
	start := time.Now()
	for r.Rounds < 3 || time.Since(start) < minTime {
		if ctx.Err() != nil {
			break
		}
		equal := 0
		for i, p := range pairs {
			t0 := time.Now()
			v := grade.Equal(p[0], p[1], opts)
			d := time.Since(t0)
			if r.Rounds == 0 || d < best[i] {
				best[i] = d
			}
			r.MaxObserved = max(r.MaxObserved, d)
			if v.Equal {
				equal++
			}
		}
		r.Rounds++
		r.Pairs += len(pairs)
		r.Equal = equal
	}
	r.Seconds = time.Since(start).Seconds()
	if r.Seconds > 0 {
		r.PairsPerSec = float64(r.Pairs) / r.Seconds
	}
	for i, d := range best {
		if d > r.Slowest {
			r.Slowest, r.SlowestGold, r.SlowestPred = d, pairs[i][0], pairs[i][1]
		}
	}
	r.Pairs = len(pairs)
	return r
}

// GradePairs makes grading pairs from reference answers: each answer
// (trimmed) against every one of its grade.Variants, that is itself,
// equivalent rewritings and near misses.
func GradePairs(answers []string) [][2]string {
	var out [][2]string
	for _, a := range answers {
		gold := strings.TrimSpace(a)
		for _, v := range grade.Variants(gold) {
			out = append(out, [2]string{gold, v.Answer})
		}
	}
	return out
}

// ReadAnswers reads the `answer` field (a string or a number) of every row
// of a JSONL file such as MATH-500; a bad line is an error naming it.
func ReadAnswers(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var answers []string
	br := bufio.NewReaderSize(f, 1<<20)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			var row struct {
				Answer any `json:"answer"`
			}
			if jerr := json.Unmarshal(b, &row); jerr != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, jerr)
			}
			switch a := row.Answer.(type) {
			case string:
				answers = append(answers, a)
			case float64:
				answers = append(answers, fmt.Sprint(a))
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if len(answers) == 0 {
		return nil, fmt.Errorf("%s: no answers", path)
	}
	return answers, nil
}
