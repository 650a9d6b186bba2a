package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestQ8Kernels: Q8 products on every kernel path match a float64 product
// with the dequantized weights, and a row's sum does not depend on the
// batch or the row range.
func TestQ8Kernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	withKernels(t, func(tb testing.TB, kern string) {
		for _, shape := range [][2]int{{4, 32}, {7, 64}, {130, 896}, {37, 96}, {200, 256}} {
			rows, cols := shape[0], shape[1]
			w := QuantizeQ8(randMat(rng, rows, cols, BF16))
			if w.DType != Q8 {
				tb.Fatal("not quantized")
			}
			row := make([]float32, cols)
			for _, n := range []int{1, 3, 5, 7, 13, 33} {
				x := randRows(rng, n, cols)
				out := newRows(n, rows)
				w.mulRows(out, x, 0, rows)
				for r := 0; r < rows; r++ {
					w.Row(r, row)
					for ti := 0; ti < n; ti++ {
						var ref float64
						for j := range row {
							ref += float64(row[j]) * float64(x[ti][j])
						}
						if d := math.Abs(float64(out[ti][r]) - ref); d > 1e-5*float64(cols) {
							tb.Fatalf("%s [%d,%d] n=%d: out[%d][%d] = %v, want %v", kern, rows, cols, n, ti, r, out[ti][r], ref)
						}
					}
				}
				one := newRows(1, rows)
				part := newRows(n, rows)
				w.mulRows(part, x, 1, rows)
				for ti := 0; ti < n; ti++ {
					w.mulRows(one, x[ti:ti+1], 0, rows)
					for r := 0; r < rows; r++ {
						if one[0][r] != out[ti][r] || (r >= 1 && part[ti][r] != out[ti][r]) {
							tb.Fatalf("%s: row %d token %d differs alone or in a row range", kern, r, ti)
						}
					}
				}
			}
		}
	})
}
