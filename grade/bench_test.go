package grade

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// math500Answers reads MATH-500 answers from ../shared/data/math/math500.jsonl.
func math500Answers(tb testing.TB) []string {
	p := casesPath()
	if p == "" {
		tb.Skip("no repository root")
	}
	path := filepath.Join(filepath.Dir(filepath.Dir(p)), "data", "math", "math500.jsonl")
	f, err := os.Open(path)
	if err != nil {
		tb.Skipf("MATH-500 absent: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var row struct {
			Answer string `json:"answer"`
		}
		if json.Unmarshal(sc.Bytes(), &row) == nil && row.Answer != "" {
			out = append(out, row.Answer)
		}
	}
	return out
}

func BenchmarkEqualMATH500(b *testing.B) {
	pairs := BenchPairs(math500Answers(b))
	opts := DefaultOptions()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := pairs[i%len(pairs)]
		Equal(p[0], p[1], opts)
	}
}

func TestBenchPairs(t *testing.T) {
	answers := math500Answers(t)
	pairs := BenchPairs(answers)
	r := Bench(context.Background(), pairs, DefaultOptions(), 0)
	t.Logf("%d pairs, %d equal, %.0f pairs/s, slowest %v (%q vs %q)", r.Pairs, r.Equal, r.PairsPerSec, r.Slowest, r.SlowestGold, r.SlowestPred)
	// Every generated pair gets the verdict it was made for.
	for _, c := range benchCases(answers) {
		if v := Equal(c.gold, c.pred, DefaultOptions()); v.Equal != c.want {
			t.Errorf("Equal(%q, %q) = %v (%s), want %v", c.gold, c.pred, v.Equal, v.Rule, c.want)
		}
	}
}
