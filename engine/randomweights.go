package engine

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// Random weights: the tensors the engine loads for a config, filled with
// values that keep activations in range (matrices uniform in ±1/√cols,
// norms 1, Mamba-2's A_log, D and dt_bias in their usual ranges), held in
// memory for benchmarks (randomCheckpoint) or streamed into a model folder
// (InitModel). A model on them computes garbage at the real model's cost.

// fillKind says how a tensor's random values are drawn.
type fillKind uint8

const (
	fillUniform fillKind = iota // uniform in ±scale
	fillOnes
	fillZeros
	fillALog // log(1 + 15u), u uniform in [0, 1): A in [-16, -1]
)

// tensorSpec is one tensor of a random checkpoint.
type tensorSpec struct {
	name  string
	shape []int
	fill  fillKind
	scale float32 // fillUniform
}

func (s *tensorSpec) numElements() int64 {
	n := int64(1)
	for _, d := range s.shape {
		n *= int64(d)
	}
	return n
}

// checkpointSpecs lists the tensors of cfg's checkpoint under the names the
// Hugging Face (or mamba_ssm) checkpoints of its architecture use, in model
// order.
func checkpointSpecs(cfg *Config) ([]tensorSpec, error) {
	var ts []tensorSpec
	d, ff, hd, nq, nkv, V := cfg.HiddenSize, cfg.IntermediateSize, cfg.HeadDim, cfg.NumHeads, cfg.NumKVHeads, cfg.VocabSize
	mat := func(name string, rows, cols int) {
		ts = append(ts, tensorSpec{name: name, shape: []int{rows, cols}, scale: float32(1 / math.Sqrt(float64(cols)))})
	}
	vec := func(name string, fill fillKind, scale float32, shape ...int) {
		ts = append(ts, tensorSpec{name: name, shape: shape, fill: fill, scale: scale})
	}
	mamba := func(p string) {
		di, cd, h := cfg.DInner(), cfg.ConvDim(), cfg.MambaHeads
		mat(p+"in_proj.weight", di+cd+h, d)
		if cfg.UseProjBias {
			vec(p+"in_proj.bias", fillZeros, 0, di+cd+h)
		}
		vec(p+"conv1d.weight", fillUniform, 0.5, cd, 1, cfg.ConvKernel)
		if cfg.UseConvBias {
			vec(p+"conv1d.bias", fillZeros, 0, cd)
		}
		vec(p+"dt_bias", fillUniform, 1, h)
		vec(p+"A_log", fillALog, 0, h)
		vec(p+"D", fillOnes, 0, h)
		vec(p+"norm.weight", fillOnes, 0, di)
		mat(p+"out_proj.weight", d, di)
		if cfg.UseProjBias {
			vec(p+"out_proj.bias", fillZeros, 0, d)
		}
	}
	head := func() {
		if !cfg.TieEmbeddings {
			mat("lm_head.weight", V, d)
		}
	}
	switch cfg.Architecture {
	case ArchLlama, ArchMistral, ArchQwen2:
		mat("model.embed_tokens.weight", V, d)
		for i := 0; i < cfg.NumLayers; i++ {
			p := fmt.Sprintf("model.layers.%d.", i)
			vec(p+"input_layernorm.weight", fillOnes, 0, d)
			mat(p+"self_attn.q_proj.weight", nq*hd, d)
			mat(p+"self_attn.k_proj.weight", nkv*hd, d)
			mat(p+"self_attn.v_proj.weight", nkv*hd, d)
			if cfg.AttentionBias {
				vec(p+"self_attn.q_proj.bias", fillUniform, 0.1, nq*hd)
				vec(p+"self_attn.k_proj.bias", fillUniform, 0.1, nkv*hd)
				vec(p+"self_attn.v_proj.bias", fillUniform, 0.1, nkv*hd)
			}
			mat(p+"self_attn.o_proj.weight", d, nq*hd)
			vec(p+"post_attention_layernorm.weight", fillOnes, 0, d)
			mat(p+"mlp.gate_proj.weight", ff, d)
			mat(p+"mlp.up_proj.weight", ff, d)
			mat(p+"mlp.down_proj.weight", d, ff)
			if cfg.MLPBias {
				vec(p+"mlp.gate_proj.bias", fillZeros, 0, ff)
				vec(p+"mlp.up_proj.bias", fillZeros, 0, ff)
				vec(p+"mlp.down_proj.bias", fillZeros, 0, d)
			}
		}
		vec("model.norm.weight", fillOnes, 0, d)
		head()
	case ArchMamba2:
		if cfg.mambaSSM {
			mat("backbone.embedding.weight", V, d)
		} else {
			mat("backbone.embeddings.weight", V, d)
		}
		for i := 0; i < cfg.NumLayers; i++ {
			p := fmt.Sprintf("backbone.layers.%d.", i)
			vec(p+"norm.weight", fillOnes, 0, d)
			mamba(p + "mixer.")
		}
		vec("backbone.norm_f.weight", fillOnes, 0, d)
		head()
	case ArchNemotronH:
		mat("backbone.embeddings.weight", V, d)
		for i := 0; i < cfg.NumLayers; i++ {
			p := fmt.Sprintf("backbone.layers.%d.", i)
			vec(p+"norm.weight", fillOnes, 0, d)
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
		vec("backbone.norm_f.weight", fillOnes, 0, d)
		head()
	default:
		return nil, fmt.Errorf("random weights: %w: %s", ErrUnsupported, cfg.Architecture)
	}
	return ts, nil
}

// fillChunk is the number of values generated per piece when streaming.
const fillChunk = 1 << 20

// fillTensor generates spec's values in dtype (F32 or BF16, little-endian)
// from the seed and hands them to emit in pieces of at most fillChunk
// values; buf is scratch of at least 4*fillChunk bytes. The values depend
// only on the seed, not on the piece size.
func fillTensor(spec *tensorSpec, dtype safetensors.DType, seed uint64, buf []byte, emit func([]byte) error) error {
	// A cheap generator (xorshift64): each draw gives one value.
	s := seed | 1
	next := func() float32 {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		return float32(uint32(s>>40)) / (1 << 24) // [0, 1)
	}
	es := dtype.Size()
	for left := spec.numElements(); left > 0; {
		n := int(min(left, fillChunk))
		for i := 0; i < n; i++ {
			var v float32
			switch spec.fill {
			case fillUniform:
				v = (2*next() - 1) * spec.scale
			case fillOnes:
				v = 1
			case fillALog:
				v = float32(math.Log(1 + 15*float64(next())))
			}
			if dtype == safetensors.BF16 {
				binary.LittleEndian.PutUint16(buf[2*i:], bf16Round(v))
			} else {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
		}
		if err := emit(buf[:n*es]); err != nil {
			return err
		}
		left -= int64(n)
	}
	return nil
}

// bf16Round rounds v to bfloat16, to nearest even (v is finite here).
func bf16Round(v float32) uint16 {
	b := math.Float32bits(v)
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

func checkRandomDType(dtype safetensors.DType) error {
	if dtype != safetensors.F32 && dtype != safetensors.BF16 {
		return fmt.Errorf("random weights: dtype %s: want F32 or BF16", dtype)
	}
	return nil
}

// randomCheckpoint makes random weights of cfg's shape, held in memory, in
// dtype (F32 or BF16), for benchmarks.
func randomCheckpoint(cfg *Config, dtype safetensors.DType, seed uint64) (*safetensors.Checkpoint, error) {
	if err := checkRandomDType(dtype); err != nil {
		return nil, err
	}
	specs, err := checkpointSpecs(cfg)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	buf := make([]byte, 4*fillChunk)
	ts := make([]safetensors.Tensor, len(specs))
	for i := range specs {
		sp := &specs[i]
		data := make([]byte, 0, sp.numElements()*int64(dtype.Size()))
		if err := fillTensor(sp, dtype, rng.Uint64(), buf, func(b []byte) error { data = append(data, b...); return nil }); err != nil {
			return nil, err
		}
		ts[i] = safetensors.Tensor{Name: sp.name, DType: dtype, Shape: sp.shape, Data: data}
	}
	return safetensors.FromTensors(ts)
}

// InitOptions configure InitModel.
type InitOptions struct {
	Seed  uint64
	DType safetensors.DType // F32 or BF16 (the default)
	// Tokenizer, when set, is a folder whose tokenizer files
	// (tokenizer.json, tokenizer_config.json, special_tokens_map.json,
	// tokenizer.model, vocab.json, merges.txt, added_tokens.json,
	// chat_template.jinja) and generation_config.json are copied.
	Tokenizer string
	// MaxShardBytes splits the weights into model-0000i-of-0000n.safetensors
	// shards with a model.safetensors.index.json, as save_pretrained does,
	// when they exceed it (0: 5 GB, its default; < 0: one file).
	MaxShardBytes int64
	// Progress, when set, is told the bytes of weights written so far.
	Progress func(done, total int64)
}

// InitResult describes the folder InitModel wrote.
type InitResult struct {
	Config      *Config
	Parameters  int64
	WeightBytes int64
	Files       []string // names in the folder, weights first
}

// tokenizerFiles are the files InitOptions.Tokenizer copies when present.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
	"vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "generation_config.json"}

// InitModel writes into dir (created if needed; it must hold no model
// already) a model folder for the Hugging Face config.json at configPath:
// random weights of every tensor the engine loads for it, in the shapes and
// under the names of the architecture's real checkpoints, then the config
// copied byte for byte (last, so that an interrupted run leaves no folder
// that loads), and the tokenizer files when opts.Tokenizer is set. The
// weights are generated and written tensor by tensor, a few MB at a time,
// so that a 16 GB model needs no more memory than a small one.
func InitModel(configPath, dir string, opts InitOptions) (*InitResult, error) {
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return nil, fmt.Errorf("init model: %w", err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("init model: %s: %w", configPath, err)
	}
	if opts.DType == "" {
		opts.DType = safetensors.BF16
	}
	if err := checkRandomDType(opts.DType); err != nil {
		return nil, fmt.Errorf("init model: %w", err)
	}
	specs, err := checkpointSpecs(cfg)
	if err != nil {
		return nil, fmt.Errorf("init model: %w", err)
	}
	var copies []string
	if opts.Tokenizer != "" {
		for _, name := range tokenizerFiles {
			if _, err := os.Stat(filepath.Join(opts.Tokenizer, name)); err == nil {
				copies = append(copies, name)
			}
		}
		if len(copies) == 0 {
			return nil, fmt.Errorf("init model: no tokenizer files (%v) in %s", tokenizerFiles[:3], opts.Tokenizer)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("init model: %w", err)
	}
	for _, name := range []string{"config.json", "model.safetensors", "model.safetensors.index.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("init model: %s already holds %s: give a new folder", dir, name)
		}
	}

	res := &InitResult{Config: cfg}
	es := int64(opts.DType.Size())
	for i := range specs {
		res.Parameters += specs[i].numElements()
	}
	res.WeightBytes = res.Parameters * es
	shards := shardSpecs(specs, es, opts.MaxShardBytes)
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	buf := make([]byte, 4*fillChunk)
	var done int64
	weightMap := map[string]string{}
	for k, shard := range shards {
		name := "model.safetensors"
		if len(shards) > 1 {
			name = fmt.Sprintf("model-%05d-of-%05d.safetensors", k+1, len(shards))
		}
		err := writeShard(filepath.Join(dir, name), shard, opts.DType, rng, buf, func(n int64) {
			done += n
			if opts.Progress != nil {
				opts.Progress(done, res.WeightBytes)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("init model: %w", err)
		}
		res.Files = append(res.Files, name)
		for _, sp := range shard {
			weightMap[sp.name] = name
		}
	}
	if len(shards) > 1 {
		idx, _ := json.MarshalIndent(map[string]any{"metadata": map[string]any{"total_size": res.WeightBytes},
			"weight_map": weightMap}, "", "  ")
		if err := writeFileAtomic(filepath.Join(dir, "model.safetensors.index.json"), idx); err != nil {
			return nil, fmt.Errorf("init model: %w", err)
		}
		res.Files = append(res.Files, "model.safetensors.index.json")
	}
	for _, name := range copies {
		b, err := os.ReadFile(filepath.Join(opts.Tokenizer, name))
		if err == nil {
			err = writeFileAtomic(filepath.Join(dir, name), b)
		}
		if err != nil {
			return nil, fmt.Errorf("init model: copy tokenizer: %w", err)
		}
		res.Files = append(res.Files, name)
	}
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), raw); err != nil {
		return nil, fmt.Errorf("init model: %w", err)
	}
	res.Files = append(res.Files, "config.json")
	return res, nil
}

// shardSpecs splits specs, in order, into shards of at most maxBytes (a
// tensor larger than that gets a shard of its own).
func shardSpecs(specs []tensorSpec, elemSize, maxBytes int64) [][]tensorSpec {
	if maxBytes == 0 {
		maxBytes = 5_000_000_000
	}
	var shards [][]tensorSpec
	var cur []tensorSpec
	var size int64
	for _, sp := range specs {
		b := sp.numElements() * elemSize
		if maxBytes > 0 && len(cur) > 0 && size+b > maxBytes {
			shards = append(shards, cur)
			cur, size = nil, 0
		}
		cur = append(cur, sp)
		size += b
	}
	return append(shards, cur)
}

// writeShard streams one safetensors file of random tensors to path (through
// a temporary file renamed at the end), drawing each tensor's seed from rng.
func writeShard(path string, specs []tensorSpec, dtype safetensors.DType, rng *rand.Rand, buf []byte, wrote func(int64)) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 4<<20)
	header := make([]safetensors.Tensor, len(specs))
	for i, sp := range specs {
		header[i] = safetensors.Tensor{Name: sp.name, DType: dtype, Shape: sp.shape}
	}
	enc, err := safetensors.NewEncoder(bw, header, map[string]string{"format": "pt"})
	if err != nil {
		return err
	}
	for i := range specs {
		err := fillTensor(&specs[i], dtype, rng.Uint64(), buf, func(b []byte) error {
			_, err := enc.Write(b)
			wrote(int64(len(b)))
			return err
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := errors.Join(enc.Close(), bw.Flush(), f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err = errors.Join(err, f.Chmod(0o644), f.Close()); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
