package engine

import "testing"

func TestProbes(t *testing.T) {
	withKernels(t, func(tb testing.TB, kern string) {
		b := make([]byte, 1024)
		for i := range b {
			b[i] = byte(i)
		}
		if got, want := readSum(b), readSumRef(b); got != want && kern != KernelGo {
			tb.Errorf("%s: readSum %d, want %d", kern, got, want)
		}
		if bw := ReadBandwidth(2, 8<<20, 1); bw <= 0 {
			tb.Errorf("%s: bandwidth %v", kern, bw)
		}
	})
	if f := GEMMPeak(1, 1, ""); f <= 0 {
		t.Errorf("GEMM peak %v", f)
	}
}

// readSumRef adds b as little-endian 32-bit words, as the assembly does.
func readSumRef(b []byte) uint32 {
	var s uint32
	for i := 0; i+4 <= len(b); i += 4 {
		s += uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
	}
	return s
}

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
			ck, err := RandomCheckpoint(cfg, "BF16", 1)
			if err != nil {
				b.Fatal(err)
			}
			m, err := New(cfg, ck, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			st := []State{m.NewState(b.N + 2)}
			logits := [][]float32{make([]float32, cfg.VocabSize)}
			m.Forward(st, []int{5}, logits)
			b.ResetTimer()
			b.ReportAllocs()
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				m.Forward(st, []int{5}, logits)
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

// BenchmarkReadBandwidth is the streaming-read probe on one thread, for
// comparison with BenchmarkMatVec's n=1 rows.
func BenchmarkReadBandwidth(b *testing.B) {
	buf := make([]byte, 256<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(int64(len(buf)))
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		readSum(buf)
	}
	b.ReportMetric(float64(len(buf))*float64(b.N)/(cpuTime()-c0)/1e9, "cpuGB/s")
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
	ck, err := RandomCheckpoint(cfg, "BF16", 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(cfg, ck, Options{})
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
		st := m.NewState(n)
		if err := Prefill(b.Context(), m, st, prompt, nil, last); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
}
