package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// randMat makes a [rows, cols] matrix of the given dtype with values in
// [-1, 1) (exactly representable in that dtype).
func randMat(rng *rand.Rand, rows, cols int, dt safetensors.DType) *Mat {
	m := &Mat{Rows: rows, Cols: cols, DType: dt}
	switch dt {
	case safetensors.F32:
		m.f32 = make([]float32, rows*cols)
		for i := range m.f32 {
			m.f32[i] = rng.Float32()*2 - 1
		}
	case safetensors.BF16:
		m.u16 = make([]uint16, rows*cols)
		for i := range m.u16 {
			m.u16[i] = uint16(math.Float32bits(rng.Float32()*2-1) >> 16)
		}
	}
	return m
}

func randRows(rng *rand.Rand, n, width int) [][]float32 {
	r := newRows(n, width)
	for i := range r.buf {
		r.buf[i] = rng.Float32()*2 - 1
	}
	return r.v
}

// withKernels runs f once per kernel path, restoring the default after.
func withKernels(t testing.TB, f func(t testing.TB, kern string)) {
	saved := activeKernel
	defer func() { activeKernel = saved }()
	for _, k := range Kernels() {
		if err := SetKernel(k); err != nil {
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
			dt            safetensors.DType
			packed, pairs bool
		}{{safetensors.F32, false, false}, {safetensors.BF16, false, false}, {safetensors.F32, true, false},
			{safetensors.BF16, true, false}, {safetensors.BF16, true, true}} {
			dt := v.dt
			for _, shape := range [][2]int{{1, 1}, {4, 16}, {7, 33}, {37, 64}, {64, 200}, {130, 1000}, {5, 7}, {200, 96}} {
				rows, cols := shape[0], shape[1]
				w := randMat(rng, rows, cols, dt)
				if v.pairs {
					w.packPairs()
					if !w.pairs || !w.padIsZero() {
						t.Fatalf("%s [%d,%d]: not in pairs, or non-zero padding", dt, rows, cols)
					}
				} else if v.packed {
					w.pack()
					if !w.packed || !w.padIsZero() {
						t.Fatalf("%s [%d,%d]: not packed, or non-zero padding", dt, rows, cols)
					}
				}
				row := make([]float32, cols)
				for _, n := range []int{1, 2, 3, 4, 5, 9, 17, 33, 64} {
					x := randRows(rng, n, cols)
					out := newRows(n, rows).v
					w.mulRows(out, x, 0, rows)
					for r := 0; r < rows; r++ {
						w.Row(r, row)
						for ti := 0; ti < n; ti++ {
							var ref float64
							for j := range row {
								xv := x[ti][j]
								if v.pairs { // bf16 products round the inputs
									xv = roundBF16(xv)
								}
								ref += float64(row[j]) * float64(xv)
							}
							if d := math.Abs(float64(out[ti][r]) - ref); d > 1e-5*float64(cols) {
								t.Fatalf("%s %s packed=%v [%d,%d] n=%d: out[%d][%d] = %v, want %v", kern, dt, v.packed, rows, cols, n, ti, r, out[ti][r], ref)
							}
						}
					}
					// Each token alone gives the same bits as in the batch.
					one := newRows(1, rows).v
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
						part := newRows(n, rows).v
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
		w := randMat(rng, shape[0], shape[1], safetensors.BF16)
		w.packPairs()
		for _, n := range []int{1, 5, 32} {
			x := randRows(rng, n, shape[1])
			asm, emu := newRows(n, shape[0]).v, newRows(n, shape[0]).v
			activeKernel = "avx512"
			w.mulRows(asm, x, 0, shape[0])
			activeKernel = KernelGo
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
	for _, dt := range []safetensors.DType{safetensors.BF16, safetensors.F32} {
		w := randMat(rng, rows, cols, dt)
		for _, n := range []int{1, 8, 64} {
			x := randRows(rng, n, cols)
			out := newRows(n, rows).v
			for _, threads := range []int{1, 2} {
				p := newWorkers(threads)
				withKernels(b, func(tb testing.TB, kern string) {
					b.Run(fmt.Sprintf("%s/%s/n=%d/threads=%d", dt, kern, n, threads), func(b *testing.B) {
						if kern == KernelGo && n > 8 {
							b.Skip("slow")
						}
						cpu0 := cpuSeconds()
						for i := 0; i < b.N; i++ {
							p.matmul(out, Linear{W: w}, x)
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
				p.close()
			}
		}
	}
}

// cpuSeconds is the CPU time this process has used (all threads).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// TestAttendKV compares the attention of every kernel path with a float64
// reference, for head sizes with and without a vector tail and GQA groups
// of 1 to 7 heads.
func TestAttendKV(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	withKernels(t, func(tb testing.TB, kern string) {
		t := tb.(*testing.T)
		for _, c := range []struct{ nq, nkv, hd, n int }{{2, 2, 8, 1}, {4, 2, 16, 5}, {14, 2, 64, 37}, {7, 1, 12, 9},
			{6, 3, 40, 130}, {8, 2, 128, 100}, {20, 2, 64, 16}, {18, 1, 128, 33}, {3, 3, 64, 0}} {
			for _, bf := range []bool{false, true} {
				kv := newKVCache(c.n, c.nkv*c.hd, bf)
				for i := range kv.k {
					kv.k[i] = rng.Float32()*2 - 1
					kv.v[i] = rng.Float32()*2 - 1
				}
				for i := range kv.k16 {
					kv.k16[i] = bf16Bits(rng.Float32()*2 - 1)
					kv.v16[i] = bf16Bits(rng.Float32()*2 - 1)
				}
				q := randRows(rng, 1, c.nq*c.hd)[0]
				out := make([]float32, c.nq*c.hd)
				var sc attnScratch
				for h := 0; h < c.nkv; h++ {
					attendKV(out, q, &kv, c.n, c.nq, c.nkv, c.hd, h, &sc)
				}
				group := c.nq / c.nkv
				if c.n == 0 {
					continue
				}
				for j := 0; j < c.nq; j++ {
					kvh := j / group
					s := make([]float64, c.n)
					mx := math.Inf(-1)
					for tt := range s {
						for i := 0; i < c.hd; i++ {
							s[tt] += float64(q[j*c.hd+i]) * float64(kv.key(tt, kvh, c.hd, i))
						}
						s[tt] /= math.Sqrt(float64(c.hd))
						mx = math.Max(mx, s[tt])
					}
					var sum float64
					for tt := range s {
						s[tt] = math.Exp(s[tt] - mx)
						sum += s[tt]
					}
					for i := 0; i < c.hd; i++ {
						var o float64
						for tt := range s {
							o += s[tt] / sum * float64(kv.value(tt, kvh, c.hd, i))
						}
						if d := math.Abs(o - float64(out[j*c.hd+i])); d > 1e-5 {
							t.Fatalf("%s %+v bf16=%v: head %d dim %d: %v, want %v", kern, c, bf, j, i, out[j*c.hd+i], o)
						}
					}
				}
			}
		}
	})
}

// BenchmarkGEMMShapes times the products of a Qwen2.5-0.5B layer (bf16)
// at 32 and 64 tokens: GFLOP/s per CPU-second and per wall second.
func BenchmarkGEMMShapes(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][2]int{{4864, 896}, {896, 4864}, {896, 896}} {
		w := randMat(rng, sh[0], sh[1], safetensors.BF16)
		w.pack()
		for _, n := range []int{32, 64} {
			x := randRows(rng, n, sh[1])
			out := newRows(n, sh[0]).v
			for _, threads := range []int{1, 2} {
				p := newWorkers(threads)
				b.Run(fmt.Sprintf("%dx%d/n=%d/threads=%d", sh[0], sh[1], n, threads), func(b *testing.B) {
					c0 := cpuSeconds()
					for i := 0; i < b.N; i++ {
						p.matmul(out, Linear{W: w}, x)
					}
					flop := 2 * float64(sh[0]*sh[1]*n) * float64(b.N)
					b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					b.ReportMetric(flop/(cpuSeconds()-c0)/1e9, "GFLOP/cpu-s")
				})
				p.close()
			}
		}
	}
}

// TestSoftmaxFast compares the vector softmax with the float64 one for
// lengths around the vector width and inputs over a wide range.
func TestSoftmaxFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	withKernels(t, func(tb testing.TB, kern string) {
		for _, n := range []int{1, 2, 15, 16, 17, 33, 100, 1000} {
			for _, spread := range []float32{0.1, 10, 200} {
				x := make([]float32, n)
				for i := range x {
					x[i] = (rng.Float32()*2 - 1) * spread
				}
				want := make([]float64, n)
				mx := math.Inf(-1)
				for _, v := range x {
					mx = math.Max(mx, float64(v))
				}
				var sum float64
				for i, v := range x {
					want[i] = math.Exp(float64(v) - mx)
					sum += want[i]
				}
				got := append([]float32(nil), x...)
				if !softmaxFast(got) {
					softmax(got)
				}
				for i := range got {
					w := want[i] / sum
					if d := math.Abs(float64(got[i]) - w); d > 5e-6*w+1e-12 { // float32 sums of n terms
						tb.Fatalf("%s n=%d spread %v: p[%d] = %v, want %v", kern, n, spread, i, got[i], w)
					}
				}
			}
		}
	})
}

// TestExpShifted: the sampling kernel's exponentials are math.Exp's, bit
// for bit, including where it hands values back (below -700, NaN).
func TestExpShifted(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	withKernels(t, func(tb testing.TB, kern string) {
		for _, scale := range []float32{1, 30, 400, 2000} {
			l := make([]float32, 1000)
			for i := range l {
				l[i] = (rng.Float32()*2 - 1) * scale
			}
			l[17] = float32(math.NaN())
			l[500] = float32(math.Inf(-1))
			mx := float32(scale)
			for _, invT := range []float32{1, 1 / 0.7, 0.5} {
				e := make([]float64, len(l))
				for i := 0; i < len(l); {
					i += expShifted(l[i:], mx, invT, e[i:])
					if i < len(l) {
						e[i] = math.Exp(float64((l[i] - mx) * invT))
						i++
					}
				}
				for i, v := range l {
					want := math.Exp(float64((v - mx) * invT))
					if math.Float64bits(e[i]) != math.Float64bits(want) && !(math.IsNaN(want) && math.IsNaN(e[i])) {
						tb.Fatalf("%s scale %v invT %v: exp((%v-%v)*%v) = %v, want %v", kern, scale, invT, v, mx, invT, e[i], want)
					}
				}
			}
		}
	})
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
