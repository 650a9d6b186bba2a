package engine

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// sharedFixture returns a model folder of the shared fixtures, skipping
// the test when they are absent (unless CI=true).
func sharedFixture(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(sharedModels, name)
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("fixture %s missing (CI=true requires the shared fixtures)", dir)
		}
		t.Skipf("fixture %s absent", dir)
	}
	return dir
}

// randomSeqs draws n sequences of length T of token ids in [3, vocab).
func randomSeqs(seed uint64, n, T, vocab int) [][]int {
	r := rand.New(rand.NewPCG(seed, 7))
	seqs := make([][]int, n)
	for i := range seqs {
		seqs[i] = make([]int, T)
		for j := range seqs[i] {
			seqs[i][j] = 3 + r.IntN(vocab-3)
		}
	}
	return seqs
}

// FP8 tolerance of a quantized model's logits against its source: E4M3
// keeps 3 mantissa bits, so a weight moves by up to 2⁻⁴ of its magnitude
// (1/28 of a row's amax at most with per-channel scales, about 2% RMS);
// through the layers of these random-weight fixtures the largest logit
// moves by 3–19% of the logit range (a maximum over every position and
// vocabulary entry), while the distributions barely move. The documented
// bound is a mean KL(source ‖ FP8) of at most 0.02 nats per position, and
// max|Δlogit| / max(1, max|logit|) of at most 0.25.
const (
	fp8LogitRelTol = 0.25
	fp8KLTol       = 0.02
)

func TestQuantizeFP8Fixtures(t *testing.T) {
	for _, name := range []string{"nemotron_h_wide_bf16", "llama3_rope_scaling", "mamba2_tiny", "qwen2_tiny_bf16"} {
		for _, perTensor := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/channel", true: "/tensor"}[perTensor], func(t *testing.T) {
				dir := sharedFixture(t, name)
				out := t.TempDir()
				res, err := QuantizeFP8(context.Background(), dir, out, QuantizeFP8Options{PerTensor: perTensor})
				if err != nil {
					t.Fatal(err)
				}
				src, err := Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				q, err := Load(out)
				if err != nil {
					t.Fatal(err)
				}
				defer q.Close()
				ck, err := safetensors.OpenDir(out)
				if err != nil {
					t.Fatal(err)
				}
				defer ck.Close()
				nFP8 := 0
				for _, n := range ck.Names() {
					tt, _ := ck.Tensor(n)
					if tt.DType != safetensors.F8E4M3 {
						continue
					}
					nFP8++
					sc, ok := ck.Tensor(strings.TrimSuffix(n, "weight") + "weight_scale")
					want := []int{tt.Shape[0]}
					if perTensor {
						want = []int{}
					}
					if !ok || sc.DType != safetensors.F32 || len(sc.Shape) != len(want) || (len(want) == 1 && sc.Shape[0] != want[0]) {
						t.Errorf("%s: scale %v, want F32 %v", n, sc, want)
					}
				}
				if nFP8 != res.Quantized || nFP8 == 0 {
					t.Errorf("%d FP8 tensors, result says %d", nFP8, res.Quantized)
				}
				var cfg struct {
					QC map[string]any `json:"quantization_config"`
				}
				raw, _ := os.ReadFile(filepath.Join(out, "config.json"))
				if err := json.Unmarshal(SanitizeJSON(raw), &cfg); err != nil || cfg.QC["quant_method"] != "modelopt" {
					t.Errorf("quantization_config %v (%v)", cfg.QC, err)
				}
				stats, err := CompareLogits(context.Background(), src, q, randomSeqs(1, 2, 24, src.Config().VocabSize))
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %d FP8 weights, max weight error %.4f of row amax; logits rel err %.4f, mean KL %.2e, top-1 agreement %.3f",
					name, res.Quantized, res.MaxRelErr, stats.RelErr, stats.MeanKL, stats.Agreement)
				if res.MaxRelErr > 1.0/16+1e-6 {
					t.Errorf("weight error %v beyond half an E4M3 ulp of amax", res.MaxRelErr)
				}
				if stats.RelErr > fp8LogitRelTol || stats.MeanKL > fp8KLTol {
					t.Errorf("FP8 logits off: rel err %v (tol %v), KL %v (tol %v)", stats.RelErr, fp8LogitRelTol, stats.MeanKL, fp8KLTol)
				}
				if _, err := QuantizeFP8(context.Background(), out, t.TempDir(), QuantizeFP8Options{}); err == nil {
					t.Error("quantizing an FP8 checkpoint again succeeded")
				}
				if _, err := QuantizeFP8(context.Background(), dir, out, QuantizeFP8Options{}); err == nil {
					t.Error("writing over a model folder succeeded")
				}
			})
		}
	}
}
