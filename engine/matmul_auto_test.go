package engine

import (
	"context"
	"path/filepath"
	"testing"
)

// TestMatmulAuto: Options.Matmul "auto" runs exactly the product that
// ResolveMatmul names (the same logits, bit for bit, as asking for it),
// "exact" is the default arithmetic, and an unknown product is refused.
func TestMatmulAuto(t *testing.T) {
	c, err := ResolveMatmul("auto")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Auto || (c.Product != "f32" && c.Product != "bf16") || c.F32GFLOPs <= 0 {
		t.Fatalf("ResolveMatmul(auto) = %+v", c)
	}
	t.Logf("auto: %s", c)
	if again, _ := ResolveMatmul("auto"); again != c {
		t.Errorf("the probe changed its answer: %+v then %+v", c, again)
	}
	dir := filepath.Join("testdata/models", "qwen2_tiny_bf16")
	logits := func(matmul string) []float32 {
		m, err := LoadWith(dir, Options{Matmul: matmul})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		out := make([]float32, m.Config().VocabSize)
		if err := prefill(context.Background(), m, m.newState(8), []int{1, 17, 300, 42, 9}, nil, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	auto, chosen, exact, def := logits("auto"), logits(c.Product), logits("exact"), logits("")
	for i := range auto {
		if auto[i] != chosen[i] {
			t.Fatalf("logit %d: auto %v, %s %v", i, auto[i], c.Product, chosen[i])
		}
		if exact[i] != def[i] {
			t.Fatalf("logit %d: exact %v, default %v", i, exact[i], def[i])
		}
	}
	for _, bad := range []string{"fp8", "Auto", "bf16x"} {
		if _, err := ResolveMatmul(bad); err == nil {
			t.Errorf("matmul %q accepted", bad)
		}
		if _, err := LoadWith(dir, Options{Matmul: bad}); err == nil {
			t.Errorf("LoadWith matmul %q accepted", bad)
		}
	}
}
