package gguf

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/crucible-ml/crucible/engine"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// Architecture names in llama.cpp.
var archNames = map[string]string{
	engine.ArchLlama:     "llama",
	engine.ArchQwen2:     "qwen2",
	engine.ArchMamba2:    "mamba2",
	engine.ArchNemotronH: "nemotron_h",
}

// Export converts the Hugging Face model folder dir (config.json,
// safetensors, and tokenizer.json / tokenizer_config.json when present) to
// the GGUF file out, as llama.cpp's convert_hf_to_gguf.py names things.
func Export(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("gguf export: %w", err)
	}
	if err := ExportTo(f, dir); err != nil {
		f.Close()
		os.Remove(out)
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("gguf export: %w", err)
	}
	return nil
}

// ExportTo writes the GGUF image of the model in dir to w.
func ExportTo(w io.Writer, dir string) error {
	cfg, err := engine.LoadConfig(dir)
	if err != nil {
		return fmt.Errorf("gguf export: %w", err)
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("gguf export: %w", err)
	}
	defer ck.Close()
	x := &exporter{cfg: cfg, ck: ck, arch: archNames[cfg.Architecture]}
	if x.arch == "" {
		return fmt.Errorf("gguf export: %w: %s", engine.ErrUnsupported, cfg.Architecture)
	}
	if err := x.build(dir); err != nil {
		return fmt.Errorf("gguf export %s: %w", dir, err)
	}
	return Write(w, x.kvs, x.tensors)
}

type exporter struct {
	cfg     *engine.Config
	ck      *safetensors.Checkpoint
	arch    string
	kvs     []KV
	tensors []Tensor
	matType TensorType // of the matrices
}

func (x *exporter) kv(key string, v any) { x.kvs = append(x.kvs, KV{key, v}) }

// akv sets an architecture-prefixed key.
func (x *exporter) akv(key string, v any) { x.kv(x.arch+"."+key, v) }

// find returns the HF tensor under the first prefix that has it.
func (x *exporter) find(name string) *safetensors.Tensor {
	for _, p := range []string{"model.", "backbone.", ""} {
		if t, ok := x.ck.Tensor(p + name); ok {
			return t
		}
	}
	return nil
}

func (x *exporter) build(dir string) error {
	c := x.cfg
	x.kv("general.architecture", x.arch)
	x.kv("general.name", filepath.Base(filepath.Clean(dir)))
	x.kv("general.alignment", uint32(Alignment))
	emb := x.find("embed_tokens.weight")
	if emb == nil {
		emb = x.find("embeddings.weight")
	}
	if emb == nil {
		emb = x.find("embedding.weight")
	}
	if emb == nil {
		return fmt.Errorf("no embedding tensor")
	}
	switch emb.DType {
	case safetensors.F32:
		x.matType = F32
		x.kv("general.file_type", uint32(0))
	case safetensors.F16:
		x.matType = F16
		x.kv("general.file_type", uint32(1))
	case safetensors.BF16:
		x.matType = BF16
		x.kv("general.file_type", uint32(32))
	default:
		return fmt.Errorf("embedding dtype %s", emb.DType)
	}
	x.akv("vocab_size", uint32(c.VocabSize))
	x.akv("embedding_length", uint32(c.HiddenSize))
	x.akv("block_count", uint32(c.NumLayers))
	x.akv("attention.layer_norm_rms_epsilon", float32(c.NormEps))
	if err := x.mat("token_embd.weight", emb, nil); err != nil {
		return err
	}
	var err error
	switch c.Architecture {
	case engine.ArchLlama, engine.ArchQwen2:
		err = x.llama()
	case engine.ArchMamba2:
		err = x.mamba2()
	case engine.ArchNemotronH:
		err = x.nemotronH()
	}
	if err != nil {
		return err
	}
	if !c.TieEmbeddings {
		if t, ok := x.ck.Tensor("lm_head.weight"); ok {
			if err := x.mat("output.weight", t, nil); err != nil {
				return err
			}
		}
	}
	return x.tokenizer(dir)
}

// need adds HF tensor name (under any prefix) as GGUF name: matrices in
// their dtype (rows permuted when perm is set), vectors as F32.
func (x *exporter) need(ggufName, hfName string) error {
	t := x.find(hfName)
	if t == nil {
		return fmt.Errorf("missing tensor %s", hfName)
	}
	if len(t.Shape) == 2 && t.Shape[0] > 1 && t.Shape[1] > 1 {
		return x.mat(ggufName, t, nil)
	}
	return x.vec(ggufName, t, reverse(t.Shape), nil)
}

// opt is need for a tensor that may be absent.
func (x *exporter) opt(ggufName, hfName string) error {
	if x.find(hfName) == nil {
		return nil
	}
	return x.need(ggufName, hfName)
}

func reverse(shape []int) []uint64 {
	out := make([]uint64, len(shape))
	for i, d := range shape {
		out[len(shape)-1-i] = uint64(d)
	}
	return out
}

// mat adds a matrix in its stored dtype; perm, when set, maps each output
// row to the source row it takes.
func (x *exporter) mat(name string, t *safetensors.Tensor, perm func(r int) int) error {
	if len(t.Shape) != 2 {
		return fmt.Errorf("tensor %s: shape %v, want a matrix", t.Name, t.Shape)
	}
	typ := map[safetensors.DType]TensorType{safetensors.F32: F32, safetensors.F16: F16, safetensors.BF16: BF16}[t.DType]
	if _, ok := map[safetensors.DType]bool{safetensors.F32: true, safetensors.F16: true, safetensors.BF16: true}[t.DType]; !ok {
		return fmt.Errorf("tensor %s: dtype %s", t.Name, t.DType)
	}
	data := t.Data
	if perm != nil {
		rowBytes := t.Shape[1] * t.DType.Size()
		data = make([]byte, len(t.Data))
		for r := 0; r < t.Shape[0]; r++ {
			s := perm(r)
			copy(data[r*rowBytes:(r+1)*rowBytes], t.Data[s*rowBytes:(s+1)*rowBytes])
		}
	}
	x.tensors = append(x.tensors, Tensor{Name: name, Type: typ, Dims: reverse(t.Shape), Data: data})
	return nil
}

// vec adds a small tensor as F32 with the given ggml dims, each value
// passed through f (when set), in the order perm gives (when set).
func (x *exporter) vec(name string, t *safetensors.Tensor, dims []uint64, f func(float32) float32) error {
	v, err := engine.Float32s(t)
	if err != nil {
		return err
	}
	out := make([]byte, 4*len(v))
	for i, a := range v {
		if f != nil {
			a = f(a)
		}
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(a))
	}
	x.tensors = append(x.tensors, Tensor{Name: name, Type: F32, Dims: dims, Data: out})
	return nil
}

func (x *exporter) llama() error {
	c := x.cfg
	hd, nq, nkv := c.HeadDim, c.NumHeads, c.NumKVHeads
	x.akv("context_length", uint32(c.MaxPositions))
	x.akv("feed_forward_length", uint32(c.IntermediateSize))
	x.akv("attention.head_count", uint32(nq))
	x.akv("attention.head_count_kv", uint32(nkv))
	x.akv("rope.freq_base", float32(c.RopeTheta))
	x.akv("rope.dimension_count", uint32(hd))
	if hd*nq != c.HiddenSize {
		x.akv("attention.key_length", uint32(hd))
		x.akv("attention.value_length", uint32(hd))
	}
	if c.RopeScaling.Type == "linear" {
		x.akv("rope.scaling.type", "linear")
		x.akv("rope.scaling.factor", float32(c.RopeScaling.Factor))
	}
	// llama.cpp's "llama" rotates adjacent pairs (GGML NORM); HF rotates
	// halves: convert_hf_to_gguf permutes q and k rows head by head.
	// Qwen2 uses the NEOX (halves) layout: no permutation.
	permute := func(heads int) func(int) int {
		if c.Architecture != engine.ArchLlama {
			return nil
		}
		return func(r int) int {
			h, rem := r/hd, r%hd
			i, j := rem/2, rem%2
			return h*hd + j*(hd/2) + i
		}
	}
	for l := 0; l < c.NumLayers; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		b := fmt.Sprintf("blk.%d.", l)
		if err := x.need(b+"attn_norm.weight", p+"input_layernorm.weight"); err != nil {
			return err
		}
		if err := x.need(b+"ffn_norm.weight", p+"post_attention_layernorm.weight"); err != nil {
			return err
		}
		for _, qk := range []struct {
			g, h  string
			heads int
		}{{"attn_q", "q_proj", nq}, {"attn_k", "k_proj", nkv}} {
			t := x.find(p + "self_attn." + qk.h + ".weight")
			if t == nil {
				return fmt.Errorf("missing tensor %sself_attn.%s.weight", p, qk.h)
			}
			if err := x.mat(b+qk.g+".weight", t, permute(qk.heads)); err != nil {
				return err
			}
			if bt := x.find(p + "self_attn." + qk.h + ".bias"); bt != nil {
				v, err := engine.Float32s(bt)
				if err != nil {
					return err
				}
				pm := permute(qk.heads)
				out := make([]byte, 4*len(v))
				for i := range v {
					s := i
					if pm != nil {
						s = pm(i)
					}
					binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v[s]))
				}
				x.tensors = append(x.tensors, Tensor{Name: b + qk.g + ".bias", Type: F32, Dims: []uint64{uint64(len(v))}, Data: out})
			}
		}
		for _, m := range [][2]string{{"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"},
			{"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"}} {
			if err := x.need(b+m[0]+".weight", p+m[1]+".weight"); err != nil {
				return err
			}
			if err := x.opt(b+m[0]+".bias", p+m[1]+".bias"); err != nil {
				return err
			}
		}
	}
	if err := x.need("output_norm.weight", "norm.weight"); err != nil {
		return err
	}
	if c.RopeScaling.Type == "llama3" {
		x.ropeFreqs()
	}
	return nil
}

// ropeFreqs writes llama3 rope scaling as llama.cpp's rope_freqs factors
// (each frequency is divided by its factor), as convert_hf_to_gguf does.
func (x *exporter) ropeFreqs() {
	c := x.cfg
	rs := c.RopeScaling
	hd := c.HeadDim
	lowWavelen := rs.OriginalMaxPositionEmbeddings / rs.LowFreqFactor
	highWavelen := rs.OriginalMaxPositionEmbeddings / rs.HighFreqFactor
	out := make([]byte, 4*(hd/2))
	for i := 0; i < hd/2; i++ {
		freq := 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(hd))
		wavelen := 2 * math.Pi / freq
		f := 1.0
		switch {
		case wavelen < highWavelen:
		case wavelen > lowWavelen:
			f = rs.Factor
		default:
			smooth := (rs.OriginalMaxPositionEmbeddings/wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
			f = 1 / ((1-smooth)/rs.Factor + smooth)
		}
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(float32(f)))
	}
	x.tensors = append(x.tensors, Tensor{Name: "rope_freqs.weight", Type: F32, Dims: []uint64{uint64(hd / 2)}, Data: out})
}

// ssmKeys writes the Mamba-2 geometry.
func (x *exporter) ssmKeys() {
	c := x.cfg
	x.akv("ssm.conv_kernel", uint32(c.ConvKernel))
	x.akv("ssm.inner_size", uint32(c.DInner()))
	x.akv("ssm.state_size", uint32(c.StateSize))
	x.akv("ssm.time_step_rank", uint32(c.MambaHeads))
	x.akv("ssm.group_count", uint32(c.NGroups))
}

// mixer writes one Mamba-2 mixer (HF prefix p, GGUF prefix b).
func (x *exporter) mixer(p, b string) error {
	c := x.cfg
	H, G, DI, CD, K := c.MambaHeads, c.NGroups, c.DInner(), c.ConvDim(), c.ConvKernel
	if err := x.need(b+"ssm_in.weight", p+"in_proj.weight"); err != nil {
		return err
	}
	if err := x.opt(b+"ssm_in.bias", p+"in_proj.bias"); err != nil {
		return err
	}
	for _, v := range []struct {
		g, h string
		dims []uint64
		f    func(float32) float32
	}{
		{"ssm_conv1d.weight", "conv1d.weight", []uint64{uint64(K), uint64(CD)}, nil}, // squeezed [CD, K]
		{"ssm_dt.bias", "dt_bias", []uint64{uint64(H)}, nil},
		{"ssm_a", "A_log", []uint64{1, uint64(H)}, func(a float32) float32 { return -float32(math.Exp(float64(a))) }},
		{"ssm_d", "D", []uint64{1, uint64(H)}, nil},
		{"ssm_norm.weight", "norm.weight", []uint64{uint64(DI / G), uint64(G)}, nil},
	} {
		t := x.find(p + v.h)
		if t == nil {
			return fmt.Errorf("missing tensor %s%s", p, v.h)
		}
		if err := x.vec(b+v.g, t, v.dims, v.f); err != nil {
			return err
		}
	}
	if t := x.find(p + "conv1d.bias"); t != nil {
		if err := x.vec(b+"ssm_conv1d.bias", t, []uint64{uint64(CD)}, nil); err != nil {
			return err
		}
	}
	if err := x.need(b+"ssm_out.weight", p+"out_proj.weight"); err != nil {
		return err
	}
	return x.opt(b+"ssm_out.bias", p+"out_proj.bias")
}

func (x *exporter) mamba2() error {
	x.akv("context_length", uint32(1<<20))
	x.akv("feed_forward_length", uint32(0))
	x.akv("attention.head_count", uint32(0))
	x.ssmKeys()
	for l := 0; l < x.cfg.NumLayers; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		b := fmt.Sprintf("blk.%d.", l)
		if err := x.need(b+"attn_norm.weight", p+"norm.weight"); err != nil {
			return err
		}
		if err := x.mixer(p+"mixer.", b); err != nil {
			return err
		}
	}
	return x.need("output_norm.weight", "norm_f.weight")
}

func (x *exporter) nemotronH() error {
	c := x.cfg
	x.akv("context_length", uint32(c.MaxPositions))
	x.akv("attention.layer_norm_epsilon", float32(c.NormEps)) // llama.cpp's loader wants both epsilons
	x.akv("attention.head_count", uint32(c.NumHeads))
	x.akv("attention.key_length", uint32(c.HeadDim))
	x.akv("attention.value_length", uint32(c.HeadDim))
	x.ssmKeys()
	ff := make([]int32, c.NumLayers)
	kv := make([]int32, c.NumLayers)
	for l := 0; l < c.NumLayers; l++ {
		switch c.Pattern[l] {
		case engine.LayerMLP:
			ff[l] = int32(c.IntermediateSize)
		case engine.LayerAttention:
			kv[l] = int32(c.NumKVHeads)
		}
	}
	x.akv("feed_forward_length", ff)
	x.akv("attention.head_count_kv", kv)
	for l := 0; l < c.NumLayers; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		b := fmt.Sprintf("blk.%d.", l)
		if err := x.need(b+"attn_norm.weight", p+"norm.weight"); err != nil {
			return err
		}
		mp := p + "mixer."
		var names [][2]string
		switch c.Pattern[l] {
		case engine.LayerMamba:
			if err := x.mixer(mp, b); err != nil {
				return err
			}
		case engine.LayerAttention:
			names = [][2]string{{"attn_q", "q_proj"}, {"attn_k", "k_proj"}, {"attn_v", "v_proj"}, {"attn_output", "o_proj"}}
		case engine.LayerMLP:
			names = [][2]string{{"ffn_up", "up_proj"}, {"ffn_down", "down_proj"}}
		}
		for _, n := range names {
			if err := x.need(b+n[0]+".weight", mp+n[1]+".weight"); err != nil {
				return err
			}
			if err := x.opt(b+n[0]+".bias", mp+n[1]+".bias"); err != nil {
				return err
			}
		}
	}
	return x.need("output_norm.weight", "norm_f.weight")
}

// The token types of llama.cpp's vocabularies (tokenizer.ggml.token_type).
const (
	tokNormal      = 1
	tokUnknown     = 2
	tokControl     = 3
	tokUserDefined = 4
	tokUnused      = 5
	tokByte        = 6
)

// tokenizer writes the vocabulary of tokenizer.json as llama.cpp reads it
// (tokenizer.ggml.model): a byte-level BPE as "gpt2" (tokens, types,
// merges); a SentencePiece-style BPE with byte_fallback (Mistral,
// Llama 2, TinyLlama) as "llama" (tokens, scores, types: llama.cpp's SPM
// tokenizer merges the pair whose token scores highest, so a token made
// by merge r scores -r); no tokenizer.json as "none" (llama.cpp loads the
// model without a vocabulary).
func (x *exporter) tokenizer(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if os.IsNotExist(err) {
		x.kv("tokenizer.ggml.model", "none")
		return nil
	}
	if err != nil {
		return err
	}
	var tj struct {
		Model struct {
			Type         string          `json:"type"`
			Vocab        map[string]int  `json:"vocab"`
			Merges       json.RawMessage `json:"merges"`
			ByteFallback bool            `json:"byte_fallback"`
			Unk          *string         `json:"unk_token"`
		} `json:"model"`
		Normalizer   json.RawMessage `json:"normalizer"`
		PreTokenizer json.RawMessage `json:"pre_tokenizer"`
		AddedTokens  []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(engine.SanitizeJSON(b), &tj); err != nil {
		return fmt.Errorf("tokenizer.json: %w", err)
	}
	if tj.Model.Type != "BPE" {
		return fmt.Errorf("tokenizer.json: model type %q: only BPE exports", tj.Model.Type)
	}
	spm := tj.Model.ByteFallback // SentencePiece's BPE, as HF converts it
	n := x.cfg.VocabSize
	tokens := make([]string, n)
	types := make([]int32, n)
	for tok, id := range tj.Model.Vocab {
		if id >= 0 && id < n {
			tokens[id], types[id] = tok, tokNormal
			if spm && isByteToken(tok) {
				types[id] = tokByte
			}
		}
	}
	if spm && tj.Model.Unk != nil {
		if id, ok := tj.Model.Vocab[*tj.Model.Unk]; ok && id >= 0 && id < n {
			types[id] = tokUnknown
			x.kv("tokenizer.ggml.unknown_token_id", uint32(id))
		}
	}
	for _, a := range tj.AddedTokens {
		if a.ID >= 0 && a.ID < n {
			if types[a.ID] == tokUnknown {
				continue
			}
			tokens[a.ID], types[a.ID] = a.Content, tokUserDefined
			if a.Special {
				types[a.ID] = tokControl
			}
		}
	}
	for i := range tokens {
		if types[i] == 0 {
			tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), tokUnused
		}
	}
	var merges []string
	var strs []string
	var pairs [][2]string
	if json.Unmarshal(tj.Model.Merges, &strs) == nil {
		merges = strs
	} else if json.Unmarshal(tj.Model.Merges, &pairs) == nil {
		for _, p := range pairs {
			merges = append(merges, p[0]+" "+p[1])
		}
	}
	if spm {
		x.kv("tokenizer.ggml.model", "llama")
		x.kv("tokenizer.ggml.tokens", tokens)
		x.kv("tokenizer.ggml.scores", mergeScores(tokens, merges))
		x.kv("tokenizer.ggml.token_type", types)
		x.kv("tokenizer.ggml.add_space_prefix", prependsSpace(tj.Normalizer, tj.PreTokenizer))
	} else {
		x.kv("tokenizer.ggml.model", "gpt2")
		switch {
		case x.cfg.Architecture == engine.ArchQwen2:
			x.kv("tokenizer.ggml.pre", "qwen2")
		case x.cfg.Architecture == engine.ArchLlama && n >= 128000:
			x.kv("tokenizer.ggml.pre", "llama-bpe")
		}
		x.kv("tokenizer.ggml.tokens", tokens)
		x.kv("tokenizer.ggml.token_type", types)
		x.kv("tokenizer.ggml.merges", merges)
	}
	var tc struct {
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
		AddBOS       *bool           `json:"add_bos_token"`
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json")); err == nil {
		json.Unmarshal(engine.SanitizeJSON(b), &tc)
	}
	id := func(raw json.RawMessage) (uint32, bool) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var o struct{ Content string }
			if json.Unmarshal(raw, &o) != nil {
				return 0, false
			}
			s = o.Content
		}
		for i, t := range tokens {
			if t == s && s != "" {
				return uint32(i), true
			}
		}
		return 0, false
	}
	if v, ok := id(tc.BOS); ok {
		x.kv("tokenizer.ggml.bos_token_id", v)
	} else if x.cfg.BOSTokenID >= 0 && x.cfg.BOSTokenID < n {
		x.kv("tokenizer.ggml.bos_token_id", uint32(x.cfg.BOSTokenID))
	}
	if v, ok := id(tc.EOS); ok {
		x.kv("tokenizer.ggml.eos_token_id", v)
	} else if len(x.cfg.EOSTokenID) > 0 {
		x.kv("tokenizer.ggml.eos_token_id", uint32(x.cfg.EOSTokenID[0]))
	}
	// Nemotron-H's post-processor adds BOS, and so does LlamaTokenizer's
	// default.
	addBOS := x.cfg.Architecture == engine.ArchNemotronH || spm
	if tc.AddBOS != nil {
		addBOS = *tc.AddBOS
	}
	x.kv("tokenizer.ggml.add_bos_token", addBOS)
	tmpl := ""
	if json.Unmarshal(tc.ChatTemplate, &tmpl) != nil || tmpl == "" {
		if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
			tmpl = string(b)
		}
	}
	if strings.TrimSpace(tmpl) != "" {
		x.kv("tokenizer.chat_template", tmpl)
	}
	return nil
}

// isByteToken reports whether tok is a byte_fallback token, <0x00> to <0xFF>.
func isByteToken(tok string) bool {
	if len(tok) != 6 || !strings.HasPrefix(tok, "<0x") || tok[5] != '>' {
		return false
	}
	_, err := strconv.ParseUint(tok[3:5], 16, 8)
	return err == nil
}

// mergeScores gives each token the score llama.cpp's SPM tokenizer ranks
// merges by: -r for the token merge r makes (the first merge scores
// highest); tokens no merge makes (characters, bytes, specials) score
// below every merge, in id order, as SentencePiece lists them.
func mergeScores(tokens []string, merges []string) []float32 {
	id := make(map[string]int, len(tokens))
	for i, t := range tokens {
		if _, dup := id[t]; !dup {
			id[t] = i
		}
	}
	scores := make([]float32, len(tokens))
	made := make([]bool, len(tokens))
	for r, m := range merges {
		a, b, ok := strings.Cut(m, " ")
		if !ok {
			continue
		}
		if i, ok := id[a+b]; ok && !made[i] {
			scores[i], made[i] = -float32(r), true
		}
	}
	for i := range scores {
		if !made[i] {
			scores[i] = -float32(len(merges) + i)
		}
	}
	return scores
}

// prependsSpace reports whether a SentencePiece-style tokenizer.json adds
// "▁" before the text: a Prepend("▁") normalizer (Llama 2, Mistral), or a
// Metaspace pre-tokenizer with add_prefix_space or a prepend_scheme other
// than "never".
func prependsSpace(normalizer, preTokenizer json.RawMessage) bool {
	type step struct {
		Type           string          `json:"type"`
		Prepend        string          `json:"prepend"`
		AddPrefixSpace *bool           `json:"add_prefix_space"`
		PrependScheme  string          `json:"prepend_scheme"`
		Normalizers    json.RawMessage `json:"normalizers"`
		PreTokenizers  json.RawMessage `json:"pretokenizers"`
	}
	var walk func(raw json.RawMessage) bool
	walk = func(raw json.RawMessage) bool {
		var st step
		if len(raw) == 0 || json.Unmarshal(raw, &st) != nil {
			return false
		}
		switch st.Type {
		case "Prepend":
			return st.Prepend == "▁"
		case "Metaspace":
			if st.PrependScheme != "" {
				return st.PrependScheme != "never"
			}
			return st.AddPrefixSpace == nil || *st.AddPrefixSpace
		case "Sequence":
			var subs []json.RawMessage
			json.Unmarshal(st.Normalizers, &subs)
			var pre []json.RawMessage
			json.Unmarshal(st.PreTokenizers, &pre)
			for _, r := range append(subs, pre...) {
				if walk(r) {
					return true
				}
			}
		}
		return false
	}
	return walk(normalizer) || walk(preTokenizer)
}
