package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randMat makes a [rows, cols] matrix of the given dtype with values in
// [-1, 1) (exactly representable in that dtype).
func randMat(rng *rand.Rand, rows, cols int, dt DType) *Mat {
	m := &Mat{Rows: rows, Cols: cols, DType: dt}
	switch dt {
	case F32:
		m.f32 = make([]float32, rows*cols)
		for i := range m.f32 {
			m.f32[i] = rng.Float32()*2 - 1
		}
	case BF16:
		m.u16 = make([]uint16, rows*cols)
		for i := range m.u16 {
			m.u16[i] = uint16(math.Float32bits(rng.Float32()*2-1) >> 16)
		}
	}
	return m
}

func randRows(rng *rand.Rand, n, width int) [][]float32 {
	r := newRows(n, width)
	for _, row := range r {
		for i := range row {
			row[i] = rng.Float32()*2 - 1
		}
	}
	return r
}

// withKernels runs f once per kernel path, restoring the default after.
func withKernels(t testing.TB, f func(t testing.TB, kern string)) {
	saved := activeKernel
	defer func() { activeKernel = saved }()
	for _, k := range Kernels() {
		if err := Set(k); err != nil {
			t.Fatal(err)
		}
		f(t, k)
	}
}

// TestMatMulKernels compares every kernel path with a float64 reference on
// shapes that exercise the tails (rows not a multiple of 4, columns not a
// multiple of the vector width, token counts around the tile size), and
// checks that a sum does not depend on the batch it was computed in.
func TestMatMulKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	withKernels(t, func(tb testing.TB, kern string) {
		t := tb.(*testing.T)
		for _, v := range []struct {
			dt            DType
			packed, pairs bool
		}{{F32, false, false}, {BF16, false, false}, {F32, true, false},
			{BF16, true, false}, {BF16, true, true}} {
			dt := v.dt
			for _, shape := range [][2]int{{1, 1}, {4, 16}, {7, 33}, {37, 64}, {64, 200}, {130, 1000}, {5, 7}, {200, 96}} {
				rows, cols := shape[0], shape[1]
				w := randMat(rng, rows, cols, dt)
				if v.pairs {
					w.PackPairs()
					if !w.pairs || !w.padIsZero() {
						t.Fatalf("%s [%d,%d]: not in pairs, or non-zero padding", dt, rows, cols)
					}
				} else if v.packed {
					w.Pack()
					if !w.packed || !w.padIsZero() {
						t.Fatalf("%s [%d,%d]: not packed, or non-zero padding", dt, rows, cols)
					}
				}
				row := make([]float32, cols)
				for _, n := range []int{1, 2, 3, 4, 5, 9, 17, 33, 64} {
					x := randRows(rng, n, cols)
					out := newRows(n, rows)
					w.mulRows(out, x, 0, rows)
					for r := 0; r < rows; r++ {
						w.Row(r, row)
						for ti := 0; ti < n; ti++ {
							var ref float64
							for j := range row {
								xv := x[ti][j]
								if v.pairs { // bf16 products round the inputs
									xv = RoundBF16(xv)
								}
								ref += float64(row[j]) * float64(xv)
							}
							if d := math.Abs(float64(out[ti][r]) - ref); d > 1e-5*float64(cols) {
								t.Fatalf("%s %s packed=%v [%d,%d] n=%d: out[%d][%d] = %v, want %v", kern, dt, v.packed, rows, cols, n, ti, r, out[ti][r], ref)
							}
						}
					}
					// Each token alone gives the same bits as in the batch.
					one := newRows(1, rows)
					for ti := 0; ti < n; ti++ {
						w.mulRows(one, x[ti:ti+1], 0, rows)
						for r := 0; r < rows; r++ {
							if one[0][r] != out[ti][r] {
								t.Fatalf("%s %s [%d,%d] n=%d: token %d row %d: alone %v, in batch %v", kern, dt, rows, cols, n, ti, r, one[0][r], out[ti][r])
							}
						}
					}
					// A row range gives the same bits as the whole product.
					if rows > 5 {
						part := newRows(n, rows)
						w.mulRows(part, x, 3, rows-1)
						for ti := range part {
							for r := 3; r < rows-1; r++ {
								if part[ti][r] != out[ti][r] {
									t.Fatalf("%s %s: rows [3,%d): row %d differs", kern, dt, rows-1, r)
								}
							}
						}
					}
				}
			}
		}
	})
}

// TestPairsSamePaths checks that the bf16 dot kernels (VDPBF16PS) and the
// portable emulation of their arithmetic give the same bits.
func TestPairsSamePaths(t *testing.T) {
	if !slices.Contains(Kernels(), "avx512") {
		t.Skip("no AVX-512 path")
	}
	saved := activeKernel
	defer func() { activeKernel = saved }()
	activeKernel = "avx512"
	if !hasDot() {
		t.Skip("no AVX512_BF16")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, shape := range [][2]int{{64, 7}, {130, 1000}, {300, 4864}} {
		w := randMat(rng, shape[0], shape[1], BF16)
		w.PackPairs()
		for _, n := range []int{1, 5, 32} {
			x := randRows(rng, n, shape[1])
			asm, emu := newRows(n, shape[0]), newRows(n, shape[0])
			activeKernel = "avx512"
			w.mulRows(asm, x, 0, shape[0])
			activeKernel = kernelGo
			w.mulRows(emu, x, 0, shape[0])
			for ti := range asm {
				for r := range asm[ti] {
					if asm[ti][r] != emu[ti][r] {
						t.Fatalf("%v n=%d: out[%d][%d]: VDPBF16PS %v, emulated %v", shape, n, ti, r, asm[ti][r], emu[ti][r])
					}
				}
			}
		}
	}
}

// BenchmarkMatVec reports the weight bandwidth of one-token products
// (decode) and the arithmetic rate of 64-token products (prefill) on a
// 4096x4096 matrix, per kernel path and thread count.
func BenchmarkMatVec(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 4096, 4096
	for _, dt := range []DType{BF16, F32} {
		w := randMat(rng, rows, cols, dt)
		for _, n := range []int{1, 8, 64} {
			x := randRows(rng, n, cols)
			out := newRows(n, rows)
			for _, threads := range []int{1, 2} {
				p := NewWorkers(threads)
				withKernels(b, func(tb testing.TB, kern string) {
					b.Run(fmt.Sprintf("%s/%s/n=%d/threads=%d", dt, kern, n, threads), func(b *testing.B) {
						if kern == kernelGo && n > 8 {
							b.Skip("slow")
						}
						cpu0 := cpuSeconds()
						for i := 0; i < b.N; i++ {
							p.MatMul(out, Linear{W: w}, x)
						}
						// Wall-clock rates, and rates per CPU-second times the
						// thread count (what the threads would do on idle cores).
						sec := b.Elapsed().Seconds() / float64(b.N)
						csec := (cpuSeconds() - cpu0) / float64(b.N) / float64(threads)
						b.ReportMetric(float64(w.Bytes())/sec/1e9, "GB/s")
						b.ReportMetric(float64(w.Bytes())/csec/1e9, "cpuGB/s")
						b.ReportMetric(2*float64(rows*cols*n)/csec/1e9, "cpuGFLOP/s")
					})
				})
				p.Close()
			}
		}
	}
}

// BenchmarkGEMMShapes times the products of a Qwen2.5-0.5B layer (bf16)
// at 32 and 64 tokens: GFLOP/s per CPU-second and per wall second.
func BenchmarkGEMMShapes(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][2]int{{4864, 896}, {896, 4864}, {896, 896}} {
		w := randMat(rng, sh[0], sh[1], BF16)
		w.Pack()
		for _, n := range []int{32, 64} {
			x := randRows(rng, n, sh[1])
			out := newRows(n, sh[0])
			for _, threads := range []int{1, 2} {
				p := NewWorkers(threads)
				b.Run(fmt.Sprintf("%dx%d/n=%d/threads=%d", sh[0], sh[1], n, threads), func(b *testing.B) {
					c0 := cpuSeconds()
					for i := 0; i < b.N; i++ {
						p.MatMul(out, Linear{W: w}, x)
					}
					flop := 2 * float64(sh[0]*sh[1]*n) * float64(b.N)
					b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					b.ReportMetric(flop/(cpuSeconds()-c0)/1e9, "GFLOP/cpu-s")
				})
				p.Close()
			}
		}
	}
}

// padIsZero reports whether every value of a
// packed matrix's padding rows is zero (the kernels rely on it only for
// speed, never for results, but a non-zero pad would show a packing bug).
func (m *Mat) padIsZero() bool {
	for r := m.Rows; r < m.panels()*panelRows; r++ {
		for k := 0; k < m.Cols; k++ {
			if v := m.at(r, k); v != 0 || math.Signbit(float64(v)) {
				return false
			}
		}
	}
	return true
}
