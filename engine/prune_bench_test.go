package engine

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkPruneImportance measures the activation pass of Prune (the
// probe passes that record every importance statistic) on the
// qwen2.5-0.5b shape with random bf16 weights, over rows of 512 tokens.
// It reports tokens/s, CPU seconds per 1k tokens, and the minutes that 1M
// calibration tokens would take at that rate (skipped with -short).
func BenchmarkPruneImportance(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1 GB model")
	}
	cfg, err := PresetConfig("qwen2.5-0.5b")
	if err != nil {
		b.Fatal(err)
	}
	ck, err := randomCheckpoint(cfg, "BF16", 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := newModel(cfg, ck, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	p, err := asProber(m)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	row := make([]int, 512)
	for i := range row {
		row[i] = r.IntN(cfg.VocabSize)
	}
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		rec := newActRecorder(cfg)
		st := p.newState(len(row))
		for a := 0; a < len(row); a += maxChunk {
			p.probe(st, row[a:min(a+maxChunk, len(row))], rec, -1, nil)
		}
		rec.endRow()
	}
	tokens := float64(b.N * len(row))
	sec := b.Elapsed().Seconds()
	b.ReportMetric(tokens/sec, "tokens/s")
	b.ReportMetric((cpuTime()-c0)/tokens*1000, "cpu-s/1k-tokens")
	b.ReportMetric(1e6/(tokens/sec)/60, "min/1M-tokens")
}
