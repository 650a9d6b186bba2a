package engine

import (
	"errors"
	"math"
	"strings"
	"testing"
)

const nemotronBase = `"architectures": ["NemotronHForCausalLM"], "vocab_size": 100, "hidden_size": 32,
	"num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
	"mamba_num_heads": 4, "mamba_head_dim": 8, "ssm_state_size": 8, "layer_norm_epsilon": 1e-5`

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		check func(*Config) string
	}{
		{"pattern string and Infinity", `{` + nemotronBase + `, "hybrid_override_pattern": "M-*",
			"n_groups": 2, "time_step_limit": [0.0, Infinity], "x": -Infinity, "y": NaN, "s": "NaN Infinity"}`,
			func(c *Config) string {
				if c.Pattern != "M-*" || c.NumLayers != 3 || c.NGroups != 2 || c.HeadDim != 8 {
					return "pattern/layers/groups/head_dim"
				}
				return ""
			}},
		{"layers_block_type, transformers 5 names", `{` + nemotronBase + `, "layers_block_type": ["linear_attention", "mlp", "full_attention"],
			"head_dim": 16, "n_groups": 1, "time_step_limit": [0.0, {"__float__": "Infinity"}]}`,
			func(c *Config) string {
				if c.Pattern != "M-*" || c.HeadDim != 16 || c.DtMin != 0 || !math.IsInf(c.DtMax, 1) {
					return "pattern " + c.Pattern
				}
				return ""
			}},
		{"layers_block_type, older names", `{` + nemotronBase + `, "layers_block_type": ["mamba", "attention", "mlp", "mamba"], "n_groups": 2}`,
			func(c *Config) string {
				if c.Pattern != "M*-M" || c.NumLayers != 4 {
					return "pattern " + c.Pattern
				}
				return ""
			}},
		{"legacy keys", `{` + nemotronBase + `, "hybrid_override_pattern": "MM", "mamba_n_groups": 4, "mamba_d_conv": 3,
			"mamba_conv_bias": false, "attention_head_dim": 12}`,
			func(c *Config) string {
				if c.NGroups != 4 || c.ConvKernel != 3 || c.UseConvBias || c.HeadDim != 12 {
					return "legacy aliases not applied"
				}
				return ""
			}},
		{"llama3 rope scaling", `{"architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 8,
			"intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "eos_token_id": [2, 3],
			"rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4,
			"original_max_position_embeddings": 8192}, "rope_theta": 500000}`,
			func(c *Config) string {
				if c.RopeScaling.Type != "llama3" || c.RopeTheta != 500000 || c.NumKVHeads != 2 || c.HeadDim != 4 ||
					len(c.EOSTokenID) != 2 {
					return "rope/kv heads/head_dim/eos"
				}
				return ""
			}},
		{"qwen2 rope_parameters", `{"architectures": ["Qwen2ForCausalLM"], "vocab_size": 10, "hidden_size": 8,
			"intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
			"rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}`,
			func(c *Config) string {
				if c.RopeTheta != 1e6 || !c.AttentionBias {
					return "theta or bias"
				}
				return ""
			}},
		{"mamba2", `{"architectures": ["Mamba2ForCausalLM"], "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 2,
			"num_heads": 2, "head_dim": 8, "state_size": 4, "n_groups": 1, "time_step_limit": [0.001, 100]}`,
			func(c *Config) string {
				if c.Pattern != "MM" || c.DInner() != 16 || c.ConvDim() != 24 || c.DtMin != 0.001 || c.DtMax != 100 {
					return "pattern or sizes"
				}
				return ""
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(c); msg != "" {
				t.Errorf("%s: %+v", msg, c)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, json string
		want       error
	}{
		{"not json", `{`, errConfig},
		{"unknown architecture", `{"architectures": ["GPT2LMHeadModel"], "vocab_size": 1, "hidden_size": 1}`, ErrUnsupported},
		{"moe layer", `{` + nemotronBase + `, "hybrid_override_pattern": "ME"}`, ErrUnsupported},
		{"bad pattern char", `{` + nemotronBase + `, "hybrid_override_pattern": "MX"}`, errConfig},
		{"pattern length", `{` + nemotronBase + `, "hybrid_override_pattern": "MM", "num_hidden_layers": 3}`, errConfig},
		{"no pattern", `{` + nemotronBase + `}`, errConfig},
		{"heads not multiple of groups", `{` + nemotronBase + `, "hybrid_override_pattern": "M", "n_groups": 3}`, errConfig},
		{"huge size", `{` + nemotronBase + `, "hybrid_override_pattern": "M", "ssm_state_size": 1e15}`, errConfig},
		{"string for int", `{` + nemotronBase + `, "hybrid_override_pattern": "M", "hidden_size": "64"}`, errConfig},
		{"fractional int", `{` + nemotronBase + `, "hybrid_override_pattern": "M", "hidden_size": 64.5}`, errConfig},
		{"bad dt limit", `{` + nemotronBase + `, "hybrid_override_pattern": "M", "n_groups": 1, "time_step_limit": [1, 0]}`, errConfig},
		{"yarn rope", `{"architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
			"num_hidden_layers": 1, "num_attention_heads": 2, "rope_scaling": {"type": "yarn", "factor": 4}}`, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.json))
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSanitizeJSON(t *testing.T) {
	in := `{"a": [Infinity, -Infinity, NaN], "s": "Infinity \"NaN\"", "b": 1}`
	want := `{"a": [null, null, null], "s": "Infinity \"NaN\"", "b": 1}`
	if got := string(SanitizeJSON([]byte(in))); got != want {
		t.Errorf("got %s", got)
	}
}

func TestGenerationConfig(t *testing.T) {
	g, err := parseGenerationConfig([]byte(`{"bos_token_id": 1, "eos_token_id": [2, 7], "temperature": 0.6, "top_p": 0.95, "do_sample": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if g.BOSTokenID != 1 || len(g.EOSTokenIDs) != 2 || g.EOSTokenIDs[1] != 7 || *g.Temperature != 0.6 || g.TopK != nil || !g.DoSample {
		t.Errorf("%+v", g)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{` + nemotronBase + `, "hybrid_override_pattern": "M-*", "time_step_limit": [0.0, Infinity]}`))
	f.Add([]byte(`{"architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
		"num_hidden_layers": 1, "num_attention_heads": 2, "rope_scaling": {"rope_type": "llama3", "factor": 8}}`))
	f.Add([]byte(`{"architectures": ["Mamba2ForCausalLM"], "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 2, "num_heads": 2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		// A config that parses has sane sizes: nothing can ask for a huge state.
		if c.VocabSize > maxDim || c.HiddenSize > maxDim || c.NumLayers > 4096 || c.HeadDim > maxDim {
			t.Fatalf("accepted huge sizes: %+v", c)
		}
		if strings.ContainsRune(c.Pattern, LayerMamba) && (c.MambaHeads%c.NGroups != 0 || c.ConvKernel < 1) {
			t.Fatalf("accepted bad mamba config: %+v", c)
		}
		_, _ = parseGenerationConfig(data)
	})
}
