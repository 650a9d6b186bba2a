package engine

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// TestQ8Kernels: Q8 products on every kernel path match a float64 product
// with the dequantized weights, and a row's sum does not depend on the
// batch or the row range.
func TestQ8Kernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	withKernels(t, func(tb testing.TB, kern string) {
		for _, shape := range [][2]int{{4, 32}, {7, 64}, {130, 896}, {37, 96}, {200, 256}} {
			rows, cols := shape[0], shape[1]
			w := quantizeQ8(randMat(rng, rows, cols, safetensors.BF16))
			if w.DType != Q8 {
				tb.Fatal("not quantized")
			}
			row := make([]float32, cols)
			for _, n := range []int{1, 3, 5, 7, 13, 33} {
				x := randRows(rng, n, cols)
				out := newRows(n, rows).v
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
				one := newRows(1, rows).v
				part := newRows(n, rows).v
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

// TestQuantizeInt8Model: an int8 model stays close to the original: logits
// within a few percent of their range, on every kernel path.
func TestQuantizeInt8Model(t *testing.T) {
	for _, name := range []string{"qwen2_tiny_bf16", "nemotron_h_tiny"} {
		dir := filepath.Join("testdata/models", name)
		ref, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		q, err := LoadWith(dir, Options{Quantize: "int8"})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		if q.Info().WeightBytes >= ref.Info().WeightBytes {
			t.Errorf("%s: int8 weights %d bytes, original %d", name, q.Info().WeightBytes, ref.Info().WeightBytes)
		}
		prompt := []int{1, 17, 300, 42, 9, 9, 100}
		V := ref.Config().VocabSize
		a, b := make([]float32, V), make([]float32, V)
		if err := Prefill(context.Background(), ref, ref.NewState(8), prompt, nil, a); err != nil {
			t.Fatal(err)
		}
		withKernels(t, func(tb testing.TB, kern string) {
			if err := Prefill(context.Background(), q, q.NewState(8), prompt, nil, b); err != nil {
				tb.Fatal(err)
			}
			var maxErr, maxAbs float64
			for i := range a {
				maxErr = math.Max(maxErr, math.Abs(float64(a[i]-b[i])))
				maxAbs = math.Max(maxAbs, math.Abs(float64(a[i])))
			}
			if maxErr > 0.05*math.Max(1, maxAbs) {
				tb.Errorf("%s %s: int8 logits differ by %.3g (max |logit| %.3g)", name, kern, maxErr, maxAbs)
			}
		})
	}
	if _, err := LoadWith("testdata/models/llama_tiny", Options{Quantize: "int4"}); err == nil {
		t.Error("int4 accepted")
	}
}
