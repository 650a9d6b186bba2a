package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// familyConfigs are the published config.json files of the families the
// engine runs (engine/testdata/configs/<family>/config.json).
const familyConfigs = "testdata/configs"

// TestFamilyConfigs parses every family's config and checks the fields
// that need more than a plain key: aliases, defaults, mamba_ssm's format,
// Mistral's window, Nemotron-H's pattern and d_inner ≠ expand·hidden.
func TestFamilyConfigs(t *testing.T) {
	tests := []struct {
		family string
		want   func(c *Config) string // "" when right
	}{
		{"qwen2.5-0.5b-instruct", func(c *Config) string {
			return check(c.Architecture == ArchQwen2 && c.TieEmbeddings && c.AttentionBias && c.HeadDim == 64 &&
				c.NumKVHeads == 2 && c.RopeTheta == 1e6 && c.SlidingWindow == 0)
		}},
		{"llama-3.2-1b", func(c *Config) string {
			return check(c.Architecture == ArchLlama && c.TieEmbeddings && c.HeadDim == 64 && c.RopeScaling.Type == "llama3" &&
				c.RopeScaling.Factor == 32)
		}},
		{"smollm2-135m", func(c *Config) string {
			return check(c.TieEmbeddings && c.HeadDim == 64 && c.NumHeads == 9 && c.NumKVHeads == 3 && c.RopeScaling.Type == "default")
		}},
		{"tinyllama-1.1b", func(c *Config) string {
			return check(!c.TieEmbeddings && c.NumKVHeads == 4 && c.VocabSize == 32000 && c.BOSTokenID == 1)
		}},
		{"mistral-7b-v0.1", func(c *Config) string {
			return check(c.Architecture == ArchMistral && c.SlidingWindow == 4096 && !c.AttentionBias && c.HeadDim == 128)
		}},
		{"nemotron-h-4b-base-8k", func(c *Config) string {
			return check(c.NumLayers == 52 && c.MambaHeads == 112 && c.DInner() == 7168 && c.HeadDim == 128 &&
				math.IsInf(c.DtMax, 1) && strings.Count(c.Pattern, "*") == 4)
		}},
		{"nemotron-h-8b-base-8k", func(c *Config) string {
			return check(c.NumLayers == 52 && c.MambaHeads == 128 && c.NGroups == 8 && c.IntermediateSize == 21504 &&
				strings.Count(c.Pattern, "M") == 24)
		}},
		{"nemotron-nano-9b-v2", func(c *Config) string {
			return check(c.NumLayers == 56 && c.MambaHeadDim == 80 && c.DInner() == 10240 && c.HiddenSize == 4480 &&
				c.NumHeads == 40 && c.HeadDim == 128 && strings.Count(c.Pattern, "*") == 4 && strings.Count(c.Pattern, "M") == 27)
		}},
		{"mamba2-130m", func(c *Config) string {
			return check(c.Architecture == ArchMamba2 && c.mambaSSM && c.VocabSize == 50288 && c.TieEmbeddings &&
				c.MambaHeads == 24 && c.MambaHeadDim == 64 && c.StateSize == 128 && c.NGroups == 1 && c.NumLayers == 24)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.family, func(t *testing.T) {
			c, err := LoadConfig(filepath.Join(familyConfigs, tt.family))
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.want(c); msg != "" {
				t.Errorf("%s: %+v", msg, c)
			}
		})
	}
}

func check(ok bool) string {
	if ok {
		return ""
	}
	return "unexpected config"
}

// TestMambaSSMConfigErrors checks that mamba_ssm configs the engine cannot
// run are ErrUnsupported, naming what.
func TestMambaSSMConfigErrors(t *testing.T) {
	tests := []struct{ name, js, want string }{
		{"mamba1", `{"d_model": 64, "n_layer": 2, "vocab_size": 100, "ssm_cfg": {}}`, `layer ""`},
		{"attention", `{"d_model": 64, "n_layer": 2, "vocab_size": 100, "ssm_cfg": {"layer": "Mamba2"}, "attn_layer_idx": [1]}`, "attn_layer_idx"},
		{"mlp", `{"d_model": 64, "n_layer": 2, "vocab_size": 100, "ssm_cfg": {"layer": "Mamba2"}, "d_intermediate": 128}`, "d_intermediate"},
		{"layernorm", `{"d_model": 64, "n_layer": 2, "vocab_size": 100, "ssm_cfg": {"layer": "Mamba2"}, "rms_norm": false}`, "rms_norm"},
		{"norm before gate", `{"d_model": 64, "n_layer": 2, "vocab_size": 100, "ssm_cfg": {"layer": "Mamba2", "norm_before_gate": true}}`, "norm_before_gate=true"},
		{"qwen2 window", `{"architectures": ["Qwen2ForCausalLM"], "vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 1,
			"intermediate_size": 128, "num_attention_heads": 2, "use_sliding_window": true, "sliding_window": 16}`, "use_sliding_window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.js))
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrUnsupported naming %q", err, tt.want)
			}
		})
	}
}

// TestSlidingWindow runs a small Mistral with a window of 4 next to the
// same weights without one: the logits agree while the context fits the
// window and differ once it does not.
func TestSlidingWindow(t *testing.T) {
	js := `{"architectures": ["MistralForCausalLM"], "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "sliding_window": %d}`
	logits := func(window int) []float32 {
		cfg, err := ParseConfig(fmt.Appendf(nil, js, window))
		if err != nil {
			t.Fatal(err)
		}
		ck, err := randomCheckpoint(cfg, safetensors.F32, 3)
		if err != nil {
			t.Fatal(err)
		}
		m, err := newModel(cfg, ck, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		tokens := []int{1, 5, 9, 13, 17, 21, 25, 29, 33, 37}
		all := make([]float32, len(tokens)*cfg.VocabSize)
		if err := prefill(context.Background(), m, m.newState(16), tokens, all, nil); err != nil {
			t.Fatal(err)
		}
		return all
	}
	full, win := logits(0), logits(4)
	for pos := 0; pos < 10; pos++ {
		same := slicesEqual(full[pos*64:(pos+1)*64], win[pos*64:(pos+1)*64])
		if same != (pos < 4) {
			t.Errorf("position %d: windowed logits equal the full ones: %v, want %v", pos, same, pos < 4)
		}
	}
}

func slicesEqual(a, b []float32) bool {
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-6 {
			return false
		}
	}
	return true
}

// TestInitModelFolder checks InitModel's folder on a tiny config: shards
// with their index when the weights exceed the shard size, the config
// copied byte for byte, the tokenizer files copied, the same bytes for the
// same seed, and a refusal to overwrite a model.
func TestInitModelFolder(t *testing.T) {
	src := t.TempDir()
	cfgJSON := []byte(`{"architectures": ["NemotronHForCausalLM"], "vocab_size": 96, "hidden_size": 32,
  "intermediate_size": 64, "hybrid_override_pattern": "M*-M", "num_attention_heads": 4, "num_key_value_heads": 2,
  "head_dim": 8, "mamba_num_heads": 4, "mamba_head_dim": 16, "n_groups": 2, "ssm_state_size": 8,
  "time_step_limit": [0.0, Infinity]}`)
	cfgPath := filepath.Join(src, "config.json")
	if err := os.WriteFile(cfgPath, cfgJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	tokDir := t.TempDir()
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "unrelated.txt"} {
		if err := os.WriteFile(filepath.Join(tokDir, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		opts InitOptions
		want string // the files, with every shard as "shard"
	}{
		{"one file", InitOptions{Seed: 1}, "model.safetensors config.json"},
		{"shards", InitOptions{Seed: 1, MaxShardBytes: 32 << 10, DType: safetensors.F32, Tokenizer: tokDir},
			"shard shard shard shard shard model.safetensors.index.json tokenizer.json tokenizer_config.json config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			res, err := InitModel(cfgPath, dir, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range res.Files {
				if strings.HasPrefix(f, "model-") && strings.HasSuffix(f, "-of-00005.safetensors") {
					f = "shard"
				}
				got = append(got, f)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("files %v, want %s", res.Files, tt.want)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); !bytes.Equal(b, cfgJSON) {
				t.Errorf("config.json not copied byte for byte")
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "tokenizer.json")); tt.opts.Tokenizer != "" && string(b) != "tokenizer.json" {
				t.Errorf("tokenizer.json = %q", b)
			}
			if _, err := os.Stat(filepath.Join(dir, "unrelated.txt")); err == nil {
				t.Errorf("copied a file that is no tokenizer file")
			}
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if p := m.Info().Parameters; p != res.Parameters {
				t.Errorf("the model has %d parameters, InitModel wrote %d", p, res.Parameters)
			}
			m.Close()
			again := filepath.Join(t.TempDir(), "again")
			if _, err := InitModel(cfgPath, again, tt.opts); err != nil {
				t.Fatal(err)
			}
			for _, name := range res.Files {
				a, _ := os.ReadFile(filepath.Join(dir, name))
				b, _ := os.ReadFile(filepath.Join(again, name))
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs between two runs with seed %d", name, tt.opts.Seed)
				}
			}
			if _, err := InitModel(cfgPath, dir, tt.opts); err == nil || !strings.Contains(err.Error(), "already holds") {
				t.Errorf("init over a model: err = %v, want a refusal", err)
			}
		})
	}
}

// initAndDecode writes family's folder with random weights, loads it and
// greedily decodes 8 tokens; it reports the decode speed and the resident
// memory.
func initAndDecode(t testing.TB, family string, opts Options) {
	dir := filepath.Join(t.TempDir(), family)
	t0 := time.Now()
	res, err := InitModel(filepath.Join(familyConfigs, family, "config.json"), dir, InitOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	tInit := time.Since(t0)
	t0 = time.Now()
	m, err := LoadWith(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tLoad := time.Since(t0)
	c := m.Config()
	prompt := []int{max(c.BOSTokenID, 1), 100, 200, 300}
	t0 = time.Now()
	out, err := GenerateBatch(context.Background(), m, nil, []GenRequest{{Prompt: prompt, MaxTokens: 8}})
	if err != nil {
		t.Fatal(err)
	}
	tGen := time.Since(t0)
	toks := out[0].Tokens
	if len(toks) != 8 {
		t.Fatalf("decoded %d tokens, want 8: %v", len(toks), toks)
	}
	for _, id := range toks {
		if id < 0 || id >= c.VocabSize {
			t.Fatalf("token %d outside the vocabulary of %d", id, c.VocabSize)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%s: %.2fB parameters, %.2f GB; init %v, load %v, prefill 4 + decode 8 tokens %v (%.2f tok/s); Go heap %.2f GB; %s; tokens %v",
		family, float64(res.Parameters)/1e9, float64(res.WeightBytes)/1e9, tInit.Round(time.Millisecond),
		tLoad.Round(time.Millisecond), tGen.Round(time.Millisecond), 8/tGen.Seconds(), float64(ms.HeapSys)/1e9, peakRSS(), toks)
}

// peakRSS is this process's peak resident memory (VmHWM), where /proc
// tells it.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "peak RSS unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			return "peak RSS " + f[1] + " kB"
		}
	}
	return "peak RSS unknown"
}

// TestInitFamilies writes each family's folder from its published config
// with random weights, loads it and decodes 8 tokens. The families above
// 1.5B parameters (7-9B: 14-18 GB of bf16) run only with
// CRUCIBLE_BIG_MODELS=1 (or as BenchmarkInitFamilies); those of 1-1.5B
// are skipped with -short.
func TestInitFamilies(t *testing.T) {
	tests := []struct {
		family string
		size   string // "small" (always), "medium" (not with -short), "big" (CRUCIBLE_BIG_MODELS=1)
	}{
		{"smollm2-135m", "small"},
		{"mamba2-130m", "small"},
		{"qwen2.5-0.5b-instruct", "small"},
		{"llama-3.2-1b", "medium"},
		{"tinyllama-1.1b", "medium"},
		{"nemotron-h-4b-base-8k", "big"},
		{"mistral-7b-v0.1", "big"},
		{"nemotron-h-8b-base-8k", "big"},
		{"nemotron-nano-9b-v2", "big"},
	}
	for _, tt := range tests {
		t.Run(tt.family, func(t *testing.T) {
			switch {
			case tt.size == "medium" && testing.Short():
				t.Skip("a 1B model: skipped with -short")
			case tt.size == "big" && os.Getenv("CRUCIBLE_BIG_MODELS") != "1":
				t.Skip("a 4-9B model (8-18 GB): set CRUCIBLE_BIG_MODELS=1")
			}
			initAndDecode(t, tt.family, Options{})
		})
	}
}

// BenchmarkInitFamilies is TestInitFamilies for one family at a time, big
// ones included: go test -run - -bench InitFamilies/nemotron-h-8b -benchtime 1x.
func BenchmarkInitFamilies(b *testing.B) {
	entries, err := os.ReadDir(familyConfigs)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		b.Run(e.Name(), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				initAndDecode(b, e.Name(), Options{})
			}
		})
	}
}
