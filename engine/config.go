package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Architectures the engine runs, as spelled in config.json "architectures".
const (
	ArchLlama     = "LlamaForCausalLM"
	ArchMistral   = "MistralForCausalLM" // Llama's network, with a sliding window
	ArchQwen2     = "Qwen2ForCausalLM"
	ArchMamba2    = "Mamba2ForCausalLM"
	ArchNemotronH = "NemotronHForCausalLM"
)

// Layer kinds of a hybrid model, one character each as in Nemotron-H's
// hybrid_override_pattern.
const (
	LayerMamba     = 'M'
	LayerAttention = '*'
	LayerMLP       = '-'
)

// layerMoE is a mixture-of-experts layer, which the engine does not run
// (a config with one is ErrUnsupported).
const layerMoE = 'E'

// ErrUnsupported marks a checkpoint the engine cannot run.
var ErrUnsupported = errors.New("engine: unsupported model")

// errConfig marks a config.json that is malformed or inconsistent.
var errConfig = errors.New("engine: bad config")

// RopeScaling describes how RoPE frequencies are rescaled (rope_scaling or
// rope_parameters in config.json).
type RopeScaling struct {
	Type                          string  // "default", "linear" or "llama3"
	Factor                        float64 // linear and llama3
	LowFreqFactor, HighFreqFactor float64 // llama3
	OriginalMaxPositionEmbeddings float64 // llama3
}

// Config is the part of a Hugging Face config.json that the engine uses,
// with key aliases and defaults resolved.
type Config struct {
	Architecture string
	ModelType    string

	VocabSize        int
	HiddenSize       int
	IntermediateSize int
	NumLayers        int
	NormEps          float64
	TieEmbeddings    bool
	MaxPositions     int

	// Attention.
	NumHeads      int
	NumKVHeads    int
	HeadDim       int
	AttentionBias bool
	MLPBias       bool
	RopeTheta     float64
	RopeScaling   RopeScaling
	// SlidingWindow, when > 0, limits each token's attention to the last
	// SlidingWindow positions, itself included (Mistral's sliding_window).
	SlidingWindow int

	// Mamba-2.
	MambaHeads   int // H
	MambaHeadDim int // P
	StateSize    int // N
	NGroups      int // G
	ConvKernel   int // K
	UseConvBias  bool
	UseProjBias  bool
	// DtMin and DtMax clamp the softplus'd time step (time_step_limit;
	// [0, +Inf] means no clamp, the canonical Mamba-2 behaviour).
	DtMin, DtMax float64

	// Pattern has one LayerMamba / LayerAttention / LayerMLP byte per layer
	// (Nemotron-H; all 'M' for Mamba2, unused for Llama/Qwen2).
	Pattern string

	BOSTokenID int   // -1 when absent
	EOSTokenID []int // may be empty

	// mambaSSM marks a Mamba-2 config in mamba_ssm's own format
	// (state-spaces/mamba2-*: d_model, n_layer, ssm_cfg), whose checkpoints
	// name the embeddings backbone.embedding.
	mambaSSM bool
}

// attentionOnly reports whether every layer is attention + MLP (the Llama
// family).
func (c *Config) attentionOnly() bool {
	return c.Architecture == ArchLlama || c.Architecture == ArchMistral || c.Architecture == ArchQwen2
}

// DInner is the Mamba-2 inner width H*P (never expand*hidden).
func (c *Config) DInner() int { return c.MambaHeads * c.MambaHeadDim }

// ConvDim is the number of conv channels: x, B and C.
func (c *Config) ConvDim() int { return c.DInner() + 2*c.NGroups*c.StateSize }

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return c, nil
}

// SanitizeJSON replaces the non-standard number tokens Infinity, -Infinity
// and NaN outside strings by null, so that encoding/json accepts the file
// (hub config.json files carry "time_step_limit": [0.0, Infinity]).
func SanitizeJSON(b []byte) []byte {
	if !bytes.Contains(b, []byte("Infinity")) && !bytes.Contains(b, []byte("NaN")) {
		return b
	}
	out := make([]byte, 0, len(b))
	inStr := false
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if inStr {
			out = append(out, ch)
			if ch == '\\' && i+1 < len(b) {
				i++
				out = append(out, b[i])
			} else if ch == '"' {
				inStr = false
			}
			continue
		}
		switch {
		case ch == '"':
			inStr = true
			out = append(out, ch)
		case bytes.HasPrefix(b[i:], []byte("-Infinity")):
			out = append(out, "null"...)
			i += len("-Infinity") - 1
		case bytes.HasPrefix(b[i:], []byte("Infinity")):
			out = append(out, "null"...)
			i += len("Infinity") - 1
		case bytes.HasPrefix(b[i:], []byte("NaN")):
			out = append(out, "null"...)
			i += len("NaN") - 1
		default:
			out = append(out, ch)
		}
	}
	return out
}

// rawConfig looks keys up with aliases.
type rawConfig map[string]json.RawMessage

func (r rawConfig) has(keys ...string) (json.RawMessage, string, bool) {
	for _, k := range keys {
		if v, ok := r[k]; ok && string(v) != "null" {
			return v, k, true
		}
	}
	return nil, "", false
}

func (r rawConfig) int(def int, keys ...string) (int, error) {
	v, k, ok := r.has(keys...)
	if !ok {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<40 {
		return 0, fmt.Errorf("%w: %s: want an integer, have %s", errConfig, k, v)
	}
	return int(f), nil
}

func (r rawConfig) float(def float64, keys ...string) (float64, error) {
	v, k, ok := r.has(keys...)
	if !ok {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		return 0, fmt.Errorf("%w: %s: want a number, have %s", errConfig, k, v)
	}
	return f, nil
}

func (r rawConfig) bool(def bool, keys ...string) (bool, error) {
	v, k, ok := r.has(keys...)
	if !ok {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		return false, fmt.Errorf("%w: %s: want true or false, have %s", errConfig, k, v)
	}
	return b, nil
}

// ids reads a token id or a list of them.
func (r rawConfig) ids(keys ...string) ([]int, error) {
	v, k, ok := r.has(keys...)
	if !ok {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(v, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(v, &many); err != nil {
		return nil, fmt.Errorf("%w: %s: want a token id or a list, have %s", errConfig, k, v)
	}
	return many, nil
}

// ParseConfig parses the bytes of a config.json.
func ParseConfig(b []byte) (*Config, error) {
	var r rawConfig
	if err := json.Unmarshal(SanitizeJSON(b), &r); err != nil {
		return nil, fmt.Errorf("%w: %v", errConfig, err)
	}
	c := &Config{}
	var archs []string
	if v, _, ok := r.has("architectures"); ok {
		if err := json.Unmarshal(v, &archs); err != nil {
			return nil, fmt.Errorf("%w: architectures: %v", errConfig, err)
		}
	}
	if v, _, ok := r.has("model_type"); ok {
		_ = json.Unmarshal(v, &c.ModelType)
	}
	if len(archs) > 0 {
		c.Architecture = archs[0]
	} else if _, _, ok := r.has("ssm_cfg"); ok && c.ModelType == "" {
		c.Architecture, c.mambaSSM = ArchMamba2, true
	} else {
		c.Architecture = map[string]string{"llama": ArchLlama, "mistral": ArchMistral, "qwen2": ArchQwen2,
			"mamba2": ArchMamba2, "nemotron_h": ArchNemotronH}[c.ModelType]
	}
	var errs []error
	geti := func(dst *int, def int, keys ...string) {
		v, err := r.int(def, keys...)
		errs = append(errs, err)
		*dst = v
	}
	getf := func(dst *float64, def float64, keys ...string) {
		v, err := r.float(def, keys...)
		errs = append(errs, err)
		*dst = v
	}
	getb := func(dst *bool, def bool, keys ...string) {
		v, err := r.bool(def, keys...)
		errs = append(errs, err)
		*dst = v
	}
	geti(&c.VocabSize, 0, "vocab_size")
	geti(&c.HiddenSize, 0, "hidden_size", "d_model")
	geti(&c.IntermediateSize, 0, "intermediate_size")
	geti(&c.NumLayers, 0, "num_hidden_layers", "n_layer")
	getf(&c.NormEps, 1e-5, "rms_norm_eps", "layer_norm_epsilon", "norm_eps", "norm_epsilon")
	getb(&c.TieEmbeddings, c.mambaSSM, "tie_word_embeddings", "tie_embeddings")
	geti(&c.MaxPositions, 0, "max_position_embeddings")
	geti(&c.NumHeads, 0, "num_attention_heads")
	geti(&c.NumKVHeads, c.NumHeads, "num_key_value_heads")
	getb(&c.AttentionBias, c.Architecture == ArchQwen2, "attention_bias")
	getb(&c.MLPBias, false, "mlp_bias")
	getf(&c.RopeTheta, 10000, "rope_theta")
	bos, err := r.ids("bos_token_id")
	errs = append(errs, err)
	c.BOSTokenID = -1
	if len(bos) > 0 {
		c.BOSTokenID = bos[0]
	}
	c.EOSTokenID, err = r.ids("eos_token_id")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}

	switch c.Architecture {
	case ArchLlama, ArchMistral, ArchQwen2:
		if err := c.parseRope(r); err != nil {
			return nil, err
		}
		if c.Architecture == ArchQwen2 {
			c.AttentionBias = true // Qwen2 always has q/k/v biases
		}
		geti(&c.HeadDim, 0, "head_dim")
		if err := c.parseSlidingWindow(r); err != nil {
			return nil, err
		}
	case ArchMamba2:
		if c.mambaSSM {
			if err := c.parseMambaSSM(r); err != nil {
				return nil, err
			}
			break
		}
		geti(&c.MambaHeads, 0, "num_heads")
		geti(&c.MambaHeadDim, 64, "head_dim")
		geti(&c.StateSize, 128, "state_size")
		geti(&c.NGroups, 1, "n_groups")
		geti(&c.ConvKernel, 4, "conv_kernel")
		getb(&c.UseConvBias, true, "use_conv_bias")
		getb(&c.UseProjBias, false, "use_bias")
		errs = append(errs, c.parseDtLimit(r))
		c.Pattern = strings.Repeat(string(rune(LayerMamba)), max(c.NumLayers, 0))
	case ArchNemotronH:
		geti(&c.HeadDim, 0, "head_dim", "attention_head_dim")
		geti(&c.MambaHeads, 0, "mamba_num_heads")
		geti(&c.MambaHeadDim, 64, "mamba_head_dim")
		geti(&c.StateSize, 128, "ssm_state_size")
		geti(&c.NGroups, 8, "n_groups", "mamba_n_groups")
		geti(&c.ConvKernel, 4, "conv_kernel", "mamba_d_conv")
		getb(&c.UseConvBias, true, "use_conv_bias", "mamba_conv_bias")
		getb(&c.UseProjBias, false, "mamba_proj_bias", "use_bias")
		errs = append(errs, c.parseDtLimit(r))
		if err := c.parsePattern(r); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: architecture %q (model_type %q)", ErrUnsupported, c.Architecture, c.ModelType)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.HeadDim == 0 && c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) parseRope(r rawConfig) error {
	c.RopeScaling = RopeScaling{Type: "default"}
	v, _, ok := r.has("rope_scaling", "rope_parameters")
	if !ok {
		return nil
	}
	var rp struct {
		RopeType      string   `json:"rope_type"`
		Type          string   `json:"type"`
		Theta         *float64 `json:"rope_theta"`
		Factor        float64  `json:"factor"`
		Low           float64  `json:"low_freq_factor"`
		High          float64  `json:"high_freq_factor"`
		OrigMax       float64  `json:"original_max_position_embeddings"`
		PartialFactor *float64 `json:"partial_rotary_factor"`
	}
	if err := json.Unmarshal(v, &rp); err != nil {
		return fmt.Errorf("%w: rope parameters: %v", errConfig, err)
	}
	if rp.Theta != nil {
		c.RopeTheta = *rp.Theta
	}
	t := rp.RopeType
	if t == "" {
		t = rp.Type
	}
	if t == "" {
		t = "default"
	}
	if rp.PartialFactor != nil && *rp.PartialFactor != 1 {
		return fmt.Errorf("%w: partial_rotary_factor %v", ErrUnsupported, *rp.PartialFactor)
	}
	c.RopeScaling = RopeScaling{Type: t, Factor: rp.Factor, LowFreqFactor: rp.Low, HighFreqFactor: rp.High,
		OriginalMaxPositionEmbeddings: rp.OrigMax}
	switch t {
	case "default":
	case "linear":
		if rp.Factor <= 0 {
			return fmt.Errorf("%w: linear rope scaling factor %v", errConfig, rp.Factor)
		}
	case "llama3":
		if rp.Factor <= 0 || rp.Low <= 0 || rp.High <= rp.Low || rp.OrigMax <= 0 {
			return fmt.Errorf("%w: llama3 rope scaling %+v", errConfig, rp)
		}
	default:
		return fmt.Errorf("%w: rope scaling type %q", ErrUnsupported, t)
	}
	return nil
}

// parseSlidingWindow reads Mistral's sliding_window (null or absent: none).
// Qwen2 declares one too but applies it only with use_sliding_window, and
// then only from layer max_window_layers on, which the engine does not run.
func (c *Config) parseSlidingWindow(r rawConfig) error {
	w, err := r.int(0, "sliding_window")
	if err != nil {
		return err
	}
	switch c.Architecture {
	case ArchMistral:
		if w < 0 {
			return fmt.Errorf("%w: sliding_window %d", errConfig, w)
		}
		c.SlidingWindow = w
	case ArchQwen2:
		use, err := r.bool(false, "use_sliding_window")
		if err != nil {
			return err
		}
		if use && w > 0 {
			return fmt.Errorf("%w: use_sliding_window with Qwen2 (sliding_window %d)", ErrUnsupported, w)
		}
	}
	return nil
}

// parseMambaSSM reads a config.json of mamba_ssm's MambaConfig, as
// state-spaces/mamba2-130m … 2.7b ship it: d_model, n_layer, vocab_size
// padded up to pad_vocab_size_multiple, tie_embeddings (default true), and
// the mixer's settings in ssm_cfg with Mamba2's defaults (d_state 128,
// d_conv 4, expand 2, headdim 64, ngroups 1). Attention layers
// (attn_layer_idx), MLPs (d_intermediate) and LayerNorm (rms_norm false)
// are not run.
func (c *Config) parseMambaSSM(r rawConfig) error {
	var ssm rawConfig
	v, _, _ := r.has("ssm_cfg")
	if err := json.Unmarshal(v, &ssm); err != nil {
		return fmt.Errorf("%w: ssm_cfg: %v", errConfig, err)
	}
	var layer string
	if v, _, ok := ssm.has("layer"); ok {
		_ = json.Unmarshal(v, &layer)
	}
	if layer != "Mamba2" {
		return fmt.Errorf("%w: mamba_ssm layer %q (only Mamba2)", ErrUnsupported, layer)
	}
	if v, _, ok := r.has("attn_layer_idx"); ok && string(v) != "[]" {
		var idx []int
		if json.Unmarshal(v, &idx) != nil || len(idx) > 0 {
			return fmt.Errorf("%w: mamba_ssm attention layers (attn_layer_idx %s)", ErrUnsupported, v)
		}
	}
	var errs []error
	get := func(r rawConfig, def int, key string) int {
		v, err := r.int(def, key)
		errs = append(errs, err)
		return v
	}
	flag := func(r rawConfig, def bool, key string) bool {
		v, err := r.bool(def, key)
		errs = append(errs, err)
		return v
	}
	dInter := get(r, 0, "d_intermediate")
	rmsNorm := flag(r, true, "rms_norm")
	pad := get(r, 8, "pad_vocab_size_multiple")
	c.StateSize = get(ssm, 128, "d_state")
	c.ConvKernel = get(ssm, 4, "d_conv")
	expand := get(ssm, 2, "expand")
	c.MambaHeadDim = get(ssm, 64, "headdim")
	c.NGroups = get(ssm, 1, "ngroups")
	dSSM := get(ssm, 0, "d_ssm")
	c.UseProjBias = flag(ssm, false, "bias")
	c.UseConvBias = flag(ssm, true, "conv_bias")
	gated := flag(ssm, true, "rmsnorm")
	before := flag(ssm, false, "norm_before_gate")
	dHead := flag(ssm, false, "D_has_hdim")
	errs = append(errs, c.parseDtLimit(ssm))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	switch {
	case dInter > 0:
		return fmt.Errorf("%w: mamba_ssm MLP layers (d_intermediate %d)", ErrUnsupported, dInter)
	case !rmsNorm:
		return fmt.Errorf("%w: mamba_ssm LayerNorm (rms_norm false)", ErrUnsupported)
	case !gated || before || dHead:
		return fmt.Errorf("%w: mamba_ssm mixer with rmsnorm=%v norm_before_gate=%v D_has_hdim=%v", ErrUnsupported, gated, before, dHead)
	case c.MambaHeadDim <= 0 || expand <= 0:
		return fmt.Errorf("%w: ssm_cfg headdim %d, expand %d", errConfig, c.MambaHeadDim, expand)
	}
	dInner := expand * c.HiddenSize
	if dSSM > 0 && dSSM != dInner {
		return fmt.Errorf("%w: mamba_ssm d_ssm %d below d_inner %d", ErrUnsupported, dSSM, dInner)
	}
	if dInner%c.MambaHeadDim != 0 {
		return fmt.Errorf("%w: d_inner %d not a multiple of headdim %d", errConfig, dInner, c.MambaHeadDim)
	}
	c.MambaHeads = dInner / c.MambaHeadDim
	if pad > 0 && c.VocabSize%pad != 0 {
		c.VocabSize += pad - c.VocabSize%pad
	}
	c.Pattern = strings.Repeat(string(rune(LayerMamba)), max(c.NumLayers, 0))
	return nil
}

// parseDtLimit reads time_step_limit (or the legacy mamba_dt_limit): a pair
// whose bound may be Infinity, null after sanitizing, or transformers 5's
// {"__float__": "Infinity"}.
func (c *Config) parseDtLimit(r rawConfig) error {
	c.DtMin, c.DtMax = 0, math.Inf(1)
	v, k, ok := r.has("time_step_limit", "mamba_dt_limit")
	if !ok {
		return nil
	}
	var pair []json.RawMessage
	if err := json.Unmarshal(v, &pair); err != nil || len(pair) != 2 {
		return fmt.Errorf("%w: %s: want a pair, have %s", errConfig, k, v)
	}
	bound := func(m json.RawMessage, def float64) float64 {
		var f float64
		if json.Unmarshal(m, &f) == nil && string(m) != "null" {
			return f
		}
		var o struct {
			F string `json:"__float__"`
		}
		if json.Unmarshal(m, &o) == nil {
			switch o.F {
			case "Infinity":
				return math.Inf(1)
			case "-Infinity":
				return math.Inf(-1)
			}
		}
		return def
	}
	c.DtMin, c.DtMax = bound(pair[0], 0), bound(pair[1], math.Inf(1))
	if math.IsNaN(c.DtMin) || math.IsNaN(c.DtMax) || c.DtMin > c.DtMax {
		return fmt.Errorf("%w: %s = %s", errConfig, k, v)
	}
	return nil
}

func (c *Config) parsePattern(r rawConfig) error {
	if v, _, ok := r.has("hybrid_override_pattern"); ok {
		if err := json.Unmarshal(v, &c.Pattern); err != nil {
			return fmt.Errorf("%w: hybrid_override_pattern: %v", errConfig, err)
		}
	} else if v, _, ok := r.has("layers_block_type"); ok {
		var kinds []string
		if err := json.Unmarshal(v, &kinds); err != nil {
			return fmt.Errorf("%w: layers_block_type: %v", errConfig, err)
		}
		var sb strings.Builder
		for _, k := range kinds {
			switch k {
			case "mamba", "linear_attention", "M":
				sb.WriteByte(LayerMamba)
			case "attention", "full_attention", "*":
				sb.WriteByte(LayerAttention)
			case "mlp", "-":
				sb.WriteByte(LayerMLP)
			case "moe", "E":
				sb.WriteByte(layerMoE)
			default:
				return fmt.Errorf("%w: layers_block_type: unknown kind %q", errConfig, k)
			}
		}
		c.Pattern = sb.String()
	} else {
		return fmt.Errorf("%w: neither hybrid_override_pattern nor layers_block_type", errConfig)
	}
	if c.NumLayers == 0 {
		c.NumLayers = len(c.Pattern)
	}
	if len(c.Pattern) != c.NumLayers {
		return fmt.Errorf("%w: layer pattern %q has %d layers, num_hidden_layers is %d", errConfig, c.Pattern, len(c.Pattern), c.NumLayers)
	}
	for _, ch := range []byte(c.Pattern) {
		switch ch {
		case LayerMamba, LayerAttention, LayerMLP:
		case layerMoE:
			return fmt.Errorf("%w: MoE layers (pattern %q)", ErrUnsupported, c.Pattern)
		default:
			return fmt.Errorf("%w: layer pattern %q: unknown layer %q", errConfig, c.Pattern, ch)
		}
	}
	return nil
}

// maxDim bounds every size in a config, so that a corrupt file cannot ask
// for a huge allocation.
const maxDim = 1 << 24

func (c *Config) validate() error {
	pos := func(name string, v int) error {
		if v <= 0 || v > maxDim {
			return fmt.Errorf("%w: %s = %d", errConfig, name, v)
		}
		return nil
	}
	if err := errors.Join(pos("vocab_size", c.VocabSize), pos("hidden_size", c.HiddenSize),
		pos("num_hidden_layers", c.NumLayers)); err != nil {
		return err
	}
	if c.NumLayers > 4096 {
		return fmt.Errorf("%w: %d layers", errConfig, c.NumLayers)
	}
	if !(c.NormEps >= 0) || math.IsInf(c.NormEps, 0) {
		return fmt.Errorf("%w: norm epsilon %v", errConfig, c.NormEps)
	}
	hasAttn := c.attentionOnly() || strings.ContainsRune(c.Pattern, LayerAttention)
	hasMLP := c.attentionOnly() || strings.ContainsRune(c.Pattern, LayerMLP)
	hasMamba := strings.ContainsRune(c.Pattern, LayerMamba)
	if hasAttn {
		if err := errors.Join(pos("num_attention_heads", c.NumHeads), pos("num_key_value_heads", c.NumKVHeads),
			pos("head_dim", c.HeadDim)); err != nil {
			return err
		}
		if c.NumHeads%c.NumKVHeads != 0 {
			return fmt.Errorf("%w: %d heads not a multiple of %d kv heads", errConfig, c.NumHeads, c.NumKVHeads)
		}
		if c.Architecture != ArchNemotronH && c.HeadDim%2 != 0 {
			return fmt.Errorf("%w: odd head_dim %d with RoPE", errConfig, c.HeadDim)
		}
	}
	if hasMLP {
		if err := pos("intermediate_size", c.IntermediateSize); err != nil {
			return err
		}
	}
	if hasMamba {
		if err := errors.Join(pos("mamba heads", c.MambaHeads), pos("mamba head_dim", c.MambaHeadDim),
			pos("state size", c.StateSize), pos("n_groups", c.NGroups), pos("conv_kernel", c.ConvKernel)); err != nil {
			return err
		}
		if c.MambaHeads%c.NGroups != 0 {
			return fmt.Errorf("%w: %d mamba heads not a multiple of %d groups", errConfig, c.MambaHeads, c.NGroups)
		}
		if c.ConvKernel > 64 {
			return fmt.Errorf("%w: conv_kernel %d", errConfig, c.ConvKernel)
		}
	}
	return nil
}

// GenerationConfig is the part of generation_config.json the engine uses.
// Pointer fields are nil when absent.
type GenerationConfig struct {
	BOSTokenID        int
	EOSTokenIDs       []int
	PadTokenID        int
	DoSample          bool
	Temperature       *float64
	TopP              *float64
	TopK              *int
	MinP              *float64
	RepetitionPenalty *float64
	MaxNewTokens      *int
}

// LoadGenerationConfig reads dir/generation_config.json; a missing file gives
// an empty config and no error.
func LoadGenerationConfig(dir string) (*GenerationConfig, error) {
	path := filepath.Join(dir, "generation_config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &GenerationConfig{BOSTokenID: -1, PadTokenID: -1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load generation config: %w", err)
	}
	g, err := parseGenerationConfig(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return g, nil
}

// parseGenerationConfig parses the bytes of a generation_config.json.
func parseGenerationConfig(b []byte) (*GenerationConfig, error) {
	var r rawConfig
	if err := json.Unmarshal(SanitizeJSON(b), &r); err != nil {
		return nil, fmt.Errorf("%w: %v", errConfig, err)
	}
	g := &GenerationConfig{}
	var errs []error
	bos, err := r.ids("bos_token_id")
	errs = append(errs, err)
	g.BOSTokenID = -1
	if len(bos) > 0 {
		g.BOSTokenID = bos[0]
	}
	g.EOSTokenIDs, err = r.ids("eos_token_id")
	errs = append(errs, err)
	pad, err := r.ids("pad_token_id")
	errs = append(errs, err)
	g.PadTokenID = -1
	if len(pad) > 0 {
		g.PadTokenID = pad[0]
	}
	g.DoSample, err = r.bool(false, "do_sample")
	errs = append(errs, err)
	optf := func(key string) *float64 {
		if _, _, ok := r.has(key); !ok {
			return nil
		}
		v, err := r.float(0, key)
		errs = append(errs, err)
		return &v
	}
	opti := func(key string) *int {
		if _, _, ok := r.has(key); !ok {
			return nil
		}
		v, err := r.int(0, key)
		errs = append(errs, err)
		return &v
	}
	g.Temperature = optf("temperature")
	g.TopP = optf("top_p")
	g.MinP = optf("min_p")
	g.RepetitionPenalty = optf("repetition_penalty")
	g.TopK = opti("top_k")
	g.MaxNewTokens = opti("max_new_tokens")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return g, nil
}
