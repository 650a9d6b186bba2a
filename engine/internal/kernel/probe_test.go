package kernel

import "testing"

func TestProbes(t *testing.T) {
	withKernels(t, func(tb testing.TB, kern string) {
		b := make([]byte, 1024)
		for i := range b {
			b[i] = byte(i)
		}
		if got, want := readSum(b), readSumRef(b); got != want && kern != kernelGo {
			tb.Errorf("%s: readSum %d, want %d", kern, got, want)
		}
		if bw := ReadBandwidth(2, 8<<20, 1); bw <= 0 {
			tb.Errorf("%s: bandwidth %v", kern, bw)
		}
	})
	for _, c := range []struct {
		dt    DType
		pairs bool
	}{{F32, false}, {BF16, false}, {BF16, true}, {Q8, false}} {
		if f := GEMMPeak(1, 1, c.dt, c.pairs); f <= 0 {
			t.Errorf("GEMM peak of %s (pairs %v): %v", c.dt, c.pairs, f)
		}
	}
	p := ChooseProduct()
	if p.F32GFLOPs <= 0 || (p.BF16 && p.BF16GFLOPs < p.F32GFLOPs) || (hasDot() != (p.BF16GFLOPs > 0)) {
		t.Errorf("ChooseProduct: %+v (bf16 products available: %v)", p, hasDot())
	}
	if again := ChooseProduct(); again != p {
		t.Errorf("ChooseProduct changed its answer: %+v then %+v", p, again)
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

// BenchmarkReadBandwidth is the streaming-read probe on one thread, for
// comparison with BenchmarkMatVec's n=1 rows.
func BenchmarkReadBandwidth(b *testing.B) {
	buf := make([]byte, 256<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(int64(len(buf)))
	c0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		readSum(buf)
	}
	b.ReportMetric(float64(len(buf))*float64(b.N)/(cpuSeconds()-c0)/1e9, "cpuGB/s")
}
