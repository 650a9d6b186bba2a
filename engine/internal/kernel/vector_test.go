package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSwiGLU checks that every kernel path's activation gives the bits
// of the Go expression silu(g)·u, on ordinary values, on the ranges where
// math.Exp over- or underflows, and on special values.
func TestSwiGLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 700, -700, 700.0001, -700.0001, 745, -745,
		750, -750, 1e30, -1e30, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		1e-40, -1e-40, math.SmallestNonzeroFloat32, math.MaxFloat32, -math.MaxFloat32, 88.7, -88.7, 103.9, -103.9}
	withKernels(t, func(t testing.TB, kern string) {
		for trial := 0; trial < 400; trial++ {
			n := 1 + rng.IntN(200)
			g := make([]float32, n)
			u := make([]float32, n)
			scale := []float32{1, 8, 30, 120, 1000}[trial%5]
			for j := range g {
				g[j] = (rng.Float32()*2 - 1) * scale
				u[j] = rng.Float32()*4 - 2
				if trial%7 == 0 && rng.IntN(20) == 0 {
					g[j] = special[rng.IntN(len(special))]
				}
			}
			want := make([]float32, n)
			for j := range g {
				want[j] = silu(g[j]) * u[j]
			}
			in := append([]float32(nil), g...)
			SwiGLU(g, u)
			for j := range g {
				if math.Float32bits(g[j]) != math.Float32bits(want[j]) && !(g[j] != g[j] && want[j] != want[j]) {
					t.Fatalf("%s: silu(%v)·%v = %v, want %v", kern, in[j], u[j], g[j], want[j])
				}
			}
		}
	})
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
					i += ExpShifted(l[i:], mx, invT, e[i:])
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
