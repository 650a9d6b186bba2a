package engine

import (
	"fmt"
	"sort"
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
