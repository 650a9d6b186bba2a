package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"unsafe"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// presets are config.json files of real model shapes, for benchmarks with
// random weights.
var presets = map[string]string{
	// Qwen/Qwen2.5-0.5B: 494M parameters, tied embeddings.
	"qwen2.5-0.5b": `{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936,
		"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
		"num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true,
		"max_position_embeddings": 32768, "bos_token_id": 151643, "eos_token_id": 151643}`,
	// A Nemotron-H of about 0.5B parameters (untied, Nemotron-H's vocabulary)
	// with the 8B's layer mix: 26 layers, 12 Mamba-2, 12 MLP and 2 attention
	// (7.7%, as the 8B's 4 of 52), the 8B's Mamba-2 geometry (expand 2, head
	// dim 64, state 128, 8 groups, conv 4) and head sizes (128, 4:1 GQA)
	// scaled to hidden 1024.
	"nemotron-h": `{"architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "vocab_size": 131072,
		"hidden_size": 1024, "intermediate_size": 5376, "num_hidden_layers": 26,
		"hybrid_override_pattern": "M-M-M-M*-M-M-M-M-M*-M-M-M-",
		"num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 128, "mamba_num_heads": 32,
		"mamba_head_dim": 64, "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4, "use_conv_bias": true,
		"mamba_proj_bias": false, "attention_bias": false, "mlp_bias": false, "layer_norm_epsilon": 1e-5,
		"tie_word_embeddings": false, "max_position_embeddings": 8192, "bos_token_id": 1, "eos_token_id": 2}`,
}

// Presets lists the preset model shapes.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PresetConfig returns the config of a preset shape.
func PresetConfig(name string) (*Config, error) {
	js, ok := presets[name]
	if !ok {
		return nil, fmt.Errorf("engine: no preset %q (have %v)", name, Presets())
	}
	return ParseConfig([]byte(js))
}

// randomCheckpoint makes random weights of cfg's shape, held in memory, in
// dtype (F32 or BF16) for the matrices: values uniform in ±1/√cols, norms
// 1, Mamba-2's A_log, D and dt_bias in their usual ranges. It is for
// benchmarks: the model computes garbage at the real model's cost.
func randomCheckpoint(cfg *Config, dtype safetensors.DType, seed uint64) (*safetensors.Checkpoint, error) {
	if dtype != safetensors.F32 && dtype != safetensors.BF16 {
		return nil, fmt.Errorf("random weights: dtype %s: want F32 or BF16", dtype)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var ts []safetensors.Tensor
	d, ff, hd, nq, nkv, V := cfg.HiddenSize, cfg.IntermediateSize, cfg.HeadDim, cfg.NumHeads, cfg.NumKVHeads, cfg.VocabSize
	mat := func(name string, rows, cols int) {
		ts = append(ts, randTensor(rng, name, dtype, []int{rows, cols}, float32(1/math.Sqrt(float64(cols)))))
	}
	vec := func(name string, f func(i int) float32, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = f(i)
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: f32Bytes(v)})
	}
	one := func(int) float32 { return 1 }
	zero := func(int) float32 { return 0 }
	uni := func(a float32) func(int) float32 { return func(int) float32 { return (rng.Float32()*2 - 1) * a } }
	mamba := func(p string) {
		di, cd, h := cfg.DInner(), cfg.ConvDim(), cfg.MambaHeads
		mat(p+"in_proj.weight", di+cd+h, d)
		vec(p+"conv1d.weight", uni(0.5), cd, 1, cfg.ConvKernel)
		if cfg.UseConvBias {
			vec(p+"conv1d.bias", zero, cd)
		}
		vec(p+"dt_bias", uni(1), h)
		vec(p+"A_log", func(int) float32 { return float32(math.Log(1 + 15*rng.Float64())) }, h)
		vec(p+"D", one, h)
		vec(p+"norm.weight", one, di)
		mat(p+"out_proj.weight", d, di)
	}
	switch cfg.Architecture {
	case ArchLlama, ArchQwen2:
		mat("model.embed_tokens.weight", V, d)
		for i := 0; i < cfg.NumLayers; i++ {
			p := fmt.Sprintf("model.layers.%d.", i)
			vec(p+"input_layernorm.weight", one, d)
			vec(p+"post_attention_layernorm.weight", one, d)
			mat(p+"self_attn.q_proj.weight", nq*hd, d)
			mat(p+"self_attn.k_proj.weight", nkv*hd, d)
			mat(p+"self_attn.v_proj.weight", nkv*hd, d)
			if cfg.AttentionBias {
				vec(p+"self_attn.q_proj.bias", uni(0.1), nq*hd)
				vec(p+"self_attn.k_proj.bias", uni(0.1), nkv*hd)
				vec(p+"self_attn.v_proj.bias", uni(0.1), nkv*hd)
			}
			mat(p+"self_attn.o_proj.weight", d, nq*hd)
			mat(p+"mlp.gate_proj.weight", ff, d)
			mat(p+"mlp.up_proj.weight", ff, d)
			mat(p+"mlp.down_proj.weight", d, ff)
		}
		vec("model.norm.weight", one, d)
		if !cfg.TieEmbeddings {
			mat("lm_head.weight", V, d)
		}
	case ArchMamba2:
		mat("backbone.embeddings.weight", V, d)
		for i := 0; i < cfg.NumLayers; i++ {
			p := fmt.Sprintf("backbone.layers.%d.", i)
			vec(p+"norm.weight", one, d)
			mamba(p + "mixer.")
		}
		vec("backbone.norm_f.weight", one, d)
		if !cfg.TieEmbeddings {
			mat("lm_head.weight", V, d)
		}
	case ArchNemotronH:
		mat("backbone.embeddings.weight", V, d)
		for i := 0; i < cfg.NumLayers; i++ {
			p := fmt.Sprintf("backbone.layers.%d.", i)
			vec(p+"norm.weight", one, d)
			mp := p + "mixer."
			switch cfg.Pattern[i] {
			case LayerMamba:
				mamba(mp)
			case LayerAttention:
				mat(mp+"q_proj.weight", nq*hd, d)
				mat(mp+"k_proj.weight", nkv*hd, d)
				mat(mp+"v_proj.weight", nkv*hd, d)
				mat(mp+"o_proj.weight", d, nq*hd)
			case LayerMLP:
				mat(mp+"up_proj.weight", ff, d)
				mat(mp+"down_proj.weight", d, ff)
			}
		}
		vec("backbone.norm_f.weight", one, d)
		if !cfg.TieEmbeddings {
			mat("lm_head.weight", V, d)
		}
	default:
		return nil, fmt.Errorf("random weights: %w: %s", ErrUnsupported, cfg.Architecture)
	}
	return safetensors.FromTensors(ts)
}

// randTensor fills a tensor with values uniform in ±a, in dtype.
func randTensor(rng *rand.Rand, name string, dtype safetensors.DType, shape []int, a float32) safetensors.Tensor {
	n := 1
	for _, s := range shape {
		n *= s
	}
	t := safetensors.Tensor{Name: name, DType: dtype, Shape: shape}
	// A cheap generator: 64 random bits give four 16-bit values.
	s := rng.Uint64() | 1
	next := func() uint64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
	if dtype == safetensors.BF16 {
		v := make([]uint16, n)
		for i := 0; i < n; i += 4 {
			r := next()
			for j := 0; j < 4 && i+j < n; j++ {
				u := float32(uint16(r>>(16*j)))/32768 - 1
				v[i+j] = uint16(math.Float32bits(u*a) >> 16)
			}
		}
		t.Data = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 2*n)
		return t
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = (float32(uint32(next()))/(1<<31) - 1) * a
	}
	t.Data = f32Bytes(v)
	return t
}

func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}
