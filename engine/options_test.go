package engine

import (
	"context"
	"math"
	"path/filepath"
	"testing"
)

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
		if err := prefill(context.Background(), ref, ref.newState(8), prompt, nil, a); err != nil {
			t.Fatal(err)
		}
		withKernels(t, func(tb testing.TB, kern string) {
			if err := prefill(context.Background(), q, q.newState(8), prompt, nil, b); err != nil {
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
