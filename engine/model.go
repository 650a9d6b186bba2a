// Package engine runs Llama, Qwen2, Mamba-2 and Nemotron-H checkpoints on
// the CPU, straight from Hugging Face folders (config.json and safetensors),
// exact to the reference implementation in float32.
//
// The package has two layers. engine itself holds the architectures
// (llama.go, mamba2.go, nemotronh.go: each one's forward pass reads top to
// bottom in its own file), the loading of configs and weights, sampling,
// generation, the continuous Batcher with its prefix cache, the reference
// Check and BenchEngine. Beneath it, package engine/internal/kernel holds
// everything that computes: matrix products over weights packed in panels,
// attention over the KV caches, the Mamba-2 scan, the norms and
// activations, the worker threads, weight packing and int8 quantization,
// and the Go assembly for AVX-512 and AVX2 (chosen at run time;
// CRUCIBLE_KERNELS=go|avx2|avx512 or SetKernel force a path). The kernel
// package depends on nothing in engine; engine reaches it only through its
// exported matrices (kernel.Mat, kernel.Linear), caches (kernel.KVCache)
// and worker pool (kernel.Workers).
//
// A Model is immutable and shared; each sequence's state holds its caches,
// allocated once, so that decoding allocates nothing per token. A sum
// never depends on the batch, so batching never changes a result; a fixed
// pool of Options.Threads workers splits each product, and the sequences
// of one forward pass read each weight once. Options.Matmul, KVCache and
// Quantize trade exactness for speed. Batcher adds continuous batching,
// chunked prefill, forks of one prompt's state and a prefix cache;
// BenchEngine measures all of it on random weights of a real shape.
//
//	m, err := engine.Load("models/Qwen2.5-0.5B")
//	if err != nil { ... }
//	defer m.Close()
//	tok, err := tokenizer.Load("models/Qwen2.5-0.5B")
//	b := engine.NewBatcher(m, tok, 32) // then, from any number of goroutines:
//	res, err := b.Generate(ctx, engine.GenRequest{Prompt: tok.Encode(text, true), MaxTokens: 256,
//		Sampling: engine.SamplingParams{Temperature: 0.7, Seed: 1}})
package engine

import (
	"context"
	"fmt"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// Model is a loaded checkpoint of one architecture (see Load). It is
// immutable, and safe for concurrent use: generate with GenerateBatch, or
// serve many requests at once with a Batcher.
type Model interface {
	// Config is the model's parsed config.json.
	Config() *Config
	// Info describes the model's size and memory costs.
	Info() Info
	// Close releases the mapped weights.
	Close() error

	// newState allocates one sequence's state with room for capTokens
	// positions of KV cache (it grows past that if needed).
	newState(capTokens int) state
	// forward feeds tokens[i] to the sequence states[i] at its next
	// position and advances it: one micro-batch of at most maxChunk tokens
	// (forwardAll takes any number). The tokens of one sequence (a prompt
	// chunk) must appear in order; tokens of many sequences (a decode step)
	// run together, reading each weight row once. When logits is non-nil,
	// each non-nil logits[i] receives token i's next-token logits
	// [VocabSize].
	forward(states []state, tokens []int, logits [][]float32)
}

// state is one sequence's decoding state: KV caches of attention layers,
// conv and SSM state of Mamba layers, and scratch buffers.
type state interface {
	// Pos is the number of tokens fed so far.
	Pos() int
	// Reset empties the state for a new sequence, keeping its memory.
	Reset()
}

// Info summarizes a model for `crucible model info`.
type Info struct {
	Architecture string
	Layers       string // e.g. the Nemotron-H pattern, or "24 x attention+MLP"
	Parameters   int64
	WeightBytes  int64
	// KVBytesPerToken is the KV cache growth per token of context (float32).
	KVBytesPerToken int64
	// StateBytes is the constant recurrent state of one sequence (float32
	// conv windows and SSM states).
	StateBytes int64
}

// Load reads the model in dir: config.json and the safetensors weights.
func Load(dir string) (Model, error) { return LoadWith(dir, Options{}) }

// LoadWith is Load with options.
func LoadWith(dir string, opts Options) (Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	m, err := newModel(cfg, ck, opts)
	if err != nil {
		ck.Close()
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return m, nil
}

// newModel builds a model of cfg's architecture over the weights in ck (which
// may be mapped files or tensors in memory, see safetensors.FromTensors).
// The model's Close closes ck; on error the caller still owns ck.
func newModel(cfg *Config, ck *safetensors.Checkpoint, opts Options) (Model, error) {
	q, err := parseQuantize(opts.Quantize)
	if err != nil {
		return nil, err
	}
	opts.Quantize = q
	if opts.Matmul, err = parseMatmul(opts.Matmul); err != nil {
		return nil, err
	}
	if opts.KVCache, err = parseKVCache(opts.KVCache); err != nil {
		return nil, err
	}
	switch cfg.Architecture {
	case ArchLlama, ArchMistral, ArchQwen2:
		return newLlama(cfg, ck, opts)
	case ArchMamba2:
		return newMamba2(cfg, ck, opts)
	case ArchNemotronH:
		return newNemotronH(cfg, ck, opts)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, cfg.Architecture)
}

// prefill feeds a prompt into st, maxChunk tokens per forward pass. When
// all is non-nil it receives the logits at every prompt position
// ([len(tokens), VocabSize]); when last is non-nil it receives those of the
// final position. It stops early with ctx's error.
func prefill(ctx context.Context, m Model, st state, tokens []int, all, last []float32) error {
	v := m.Config().VocabSize
	if all != nil && len(all) < len(tokens)*v {
		return fmt.Errorf("prefill: logits buffer of %d for %d tokens x %d", len(all), len(tokens), v)
	}
	for _, tok := range tokens {
		if err := checkToken(m, tok); err != nil {
			return err
		}
	}
	var states [maxChunk]state
	var logits [maxChunk][]float32
	for a := 0; a < len(tokens); a += maxChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := min(a+maxChunk, len(tokens))
		n := b - a
		for i := 0; i < n; i++ {
			states[i] = st
			logits[i] = nil
			if all != nil {
				logits[i] = all[(a+i)*v : (a+i+1)*v]
			}
		}
		if b == len(tokens) && all == nil {
			logits[n-1] = last
		}
		m.forward(states[:n], tokens[a:b], logits[:n])
	}
	if all != nil && last != nil && len(tokens) > 0 {
		copy(last, all[(len(tokens)-1)*v:len(tokens)*v])
	}
	return nil
}

// decodeStep feeds one token to each of several sequences, all in the same
// forward passes, and writes each one's next-token logits.
func decodeStep(ctx context.Context, m Model, states []state, tokens []int, logits [][]float32) error {
	if len(states) != len(tokens) || len(states) != len(logits) {
		return fmt.Errorf("decode step: %d states, %d tokens, %d logits", len(states), len(tokens), len(logits))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, tok := range tokens {
		if err := checkToken(m, tok); err != nil {
			return err
		}
		for j := 0; j < i; j++ {
			if states[j] == states[i] {
				return fmt.Errorf("decode step: sequence %d given twice", i)
			}
		}
	}
	forwardAll(m, states, tokens, logits)
	return nil
}

func checkToken(m Model, tok int) error {
	if tok < 0 || tok >= m.Config().VocabSize {
		return fmt.Errorf("token id %d outside the vocabulary of %d", tok, m.Config().VocabSize)
	}
	return nil
}

// loadHead loads the output head headName, or reuses the embedding matrix
// when the embeddings are tied (or the checkpoint has no head).
func loadHead(l *weightLoader, cfg *Config, embed *kernel.Mat, headName string) (kernel.Linear, error) {
	if cfg.TieEmbeddings || !l.has(headName+".weight") {
		l.pack(embed) // the lookups read it packed too (Mat.Row)
		return kernel.Linear{W: embed}, nil
	}
	return l.linear(headName, cfg.VocabSize, cfg.HiddenSize, false)
}
