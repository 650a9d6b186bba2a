package engine

import (
	"context"
	"math"
	"testing"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// TestRandomPresets builds every preset (shrunk to two layers and a small
// vocabulary, to stay fast) from random weights and runs a finite forward
// pass over a randomly filled state.
func TestRandomPresets(t *testing.T) {
	for _, name := range Presets() {
		t.Run(name, func(t *testing.T) {
			cfg, err := PresetConfig(name)
			if err != nil {
				t.Fatal(err)
			}
			cfg.VocabSize = 1000
			if cfg.Pattern != "" {
				cfg.Pattern = "M*-"
			}
			cfg.NumLayers = max(len(cfg.Pattern), 2)
			ck, err := randomCheckpoint(cfg, safetensors.BF16, 1)
			if err != nil {
				t.Fatal(err)
			}
			m, err := newModel(cfg, ck, Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			st := m.newState(16)
			fillRandom(st, 20, 1)
			logits := make([]float32, cfg.VocabSize)
			if err := prefill(context.Background(), m, st, []int{1, 2, 3}, nil, logits); err != nil {
				t.Fatal(err)
			}
			if st.Pos() != 23 {
				t.Errorf("position %d, want 23", st.Pos())
			}
			for i, v := range logits {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("logit %d = %v", i, v)
				}
			}
		})
	}
}
