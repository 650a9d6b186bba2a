package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSwiGLURow checks that every kernel path's activation gives the bits
// of the Go expression silu(g)·u, on ordinary values, on the ranges where
// math.Exp over- or underflows, and on special values.
func TestSwiGLURow(t *testing.T) {
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
			swigluRow(g, u)
			for j := range g {
				if math.Float32bits(g[j]) != math.Float32bits(want[j]) && !(g[j] != g[j] && want[j] != want[j]) {
					t.Fatalf("%s: silu(%v)·%v = %v, want %v", kern, in[j], u[j], g[j], want[j])
				}
			}
		}
	})
}
