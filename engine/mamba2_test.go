package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// gatedNormRef is the float64 gated RMSNorm of mamba_ssm's RMSNormGated
// (norm_before_gate=False) with group_size = len(y)/groups:
// u = y·silu(z); each group of u divided by its rms; times w.
func gatedNormRef(y, z, w []float32, groups int, eps float64) []float64 {
	u := make([]float64, len(y))
	for i := range y {
		zv := float64(z[i])
		u[i] = float64(y[i]) * zv / (1 + math.Exp(-zv))
	}
	gs := len(u) / groups
	for g := 0; g < groups; g++ {
		var ss float64
		for _, v := range u[g*gs : (g+1)*gs] {
			ss += v * v
		}
		r := 1 / math.Sqrt(ss/float64(gs)+eps)
		for i := g * gs; i < (g+1)*gs; i++ {
			u[i] *= r * float64(w[i])
		}
	}
	return u
}

// TestMamba2GroupedGateNorm loads Mamba2ForCausalLM configs with n_groups
// > 1 and checks the mixers' gate and norm against the grouped float64
// reference. The inputs make the groups' scales differ by 100x, so the
// whole-width norm (the old behaviour) misses by far more than the
// tolerance; the test checks that too.
func TestMamba2GroupedGateNorm(t *testing.T) {
	tests := []struct{ heads, headDim, groups int }{
		{8, 16, 1},
		{8, 16, 2},
		{8, 16, 8},
		{24, 64, 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("H%d_P%d_G%d", tt.heads, tt.headDim, tt.groups), func(t *testing.T) {
			js := fmt.Sprintf(`{"architectures": ["Mamba2ForCausalLM"], "vocab_size": 64, "hidden_size": 32,
				"num_hidden_layers": 1, "num_heads": %d, "head_dim": %d, "state_size": 8, "n_groups": %d,
				"expand": 2, "conv_kernel": 4, "layer_norm_epsilon": 1e-5}`, tt.heads, tt.headDim, tt.groups)
			cfg, err := ParseConfig([]byte(js))
			if err != nil {
				t.Fatal(err)
			}
			ck, err := randomCheckpoint(cfg, safetensors.F32, 7)
			if err != nil {
				t.Fatal(err)
			}
			m, err := newModel(cfg, ck, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			mx := m.(*mamba2).mixers[0]
			di := cfg.DInner()
			rng := rand.New(rand.NewPCG(1, uint64(tt.groups)))
			for i := range mx.norm {
				mx.norm[i] = 0.5 + rng.Float32()
			}
			const n = 3
			zx := make([][]float32, n)
			y := make([][]float32, n)
			for i := range zx {
				zx[i] = make([]float32, di+cfg.ConvDim()+cfg.MambaHeads)
				y[i] = make([]float32, di)
				for c := 0; c < di; c++ {
					scale := float32(1)
					if (c/(di/max(tt.groups, 2)))%2 == 1 {
						scale = 100 // odd groups (or the second half) 100x larger
					}
					zx[i][c] = 2*rng.Float32() - 1
					y[i][c] = scale * (2*rng.Float32() - 1)
				}
			}
			in := make([][]float32, n)
			for i := range y {
				in[i] = append([]float32(nil), y[i]...)
			}
			want := make([][]float64, n)
			whole := make([][]float64, n)
			for i := range want {
				want[i] = gatedNormRef(in[i], zx[i][:di], mx.norm, tt.groups, cfg.NormEps)
				whole[i] = gatedNormRef(in[i], zx[i][:di], mx.norm, 1, cfg.NormEps)
			}
			(&gateTask{mx: mx, zx: zx, y: y}).Run(0, 0, n)
			var maxErr, maxWhole float64
			for i := range y {
				for c := range y[i] {
					maxErr = max(maxErr, math.Abs(float64(y[i][c])-want[i][c]))
					maxWhole = max(maxWhole, math.Abs(whole[i][c]-want[i][c]))
				}
			}
			if maxErr > 1e-4 {
				t.Errorf("gated norm with %d groups: max|Δ| %.3g from the grouped reference", tt.groups, maxErr)
			}
			if tt.groups > 1 && maxWhole < 100*1e-4 {
				t.Errorf("the whole-width norm is within %.3g of the grouped one: the test cannot tell them apart", maxWhole)
			}
		})
	}
}
