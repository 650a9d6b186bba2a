package engine

import "testing"

// BenchmarkDecodePreset decodes one sequence of the qwen2.5-0.5b shape
// with random bf16 weights (reports weight GB/s; skipped with -short).
func BenchmarkDecodePreset(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1 GB model")
	}
	for _, name := range []string{"qwen2.5-0.5b", "nemotron-h"} {
		b.Run(name, func(b *testing.B) {
			cfg, err := PresetConfig(name)
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
			st := []state{m.newState(b.N + 2)}
			logits := [][]float32{make([]float32, cfg.VocabSize)}
			m.forward(st, []int{5}, logits)
			b.ResetTimer()
			b.ReportAllocs()
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				m.forward(st, []int{5}, logits)
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			bytes := float64(m.Info().WeightBytes)
			if !cfg.TieEmbeddings {
				bytes -= float64(cfg.VocabSize * cfg.HiddenSize * 2)
			}
			b.ReportMetric(bytes/sec/1e9, "GB/s")
			b.ReportMetric(bytes/((cpuTime()-c0)/float64(b.N)/2)/1e9, "cpuGB/s")
		})
	}
}

// BenchmarkPrefillPreset prefills a 512-token prompt of the qwen2.5-0.5b
// shape with random bf16 weights (reports tokens/s; skipped with -short).
func BenchmarkPrefillPreset(b *testing.B) {
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
	const n = 512
	prompt := make([]int, n)
	for i := range prompt {
		prompt[i] = (i*7919 + 11) % cfg.VocabSize
	}
	last := make([]float32, cfg.VocabSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st := m.newState(n)
		if err := prefill(b.Context(), m, st, prompt, nil, last); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
}
