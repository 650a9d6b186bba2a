package main

import (
	"github.com/spf13/pflag"

	"github.com/crucible-ml/crucible/backend/local"
)

// The help of the built-in engine's flags, one text per flag on every
// command that runs the engine (generate, eval, curate and synth through
// backendFlags; serve; model check; bench engine).
const (
	threadsHelp = "built-in engine: threads per forward pass (0: all cores)"
	matmulHelp  = "built-in engine: bf16 multiplies bf16 weights with inputs rounded to bf16 (VDPBF16PS, llama.cpp's arithmetic; ~2x faster batched decode and prefill, not exact); f32 (default) is exact"
	kvCacheHelp = "built-in engine: bf16 keeps attention keys and values in bf16 (half the memory per sequence, faster long contexts, not exact); f32 (default) is exact"
	// quantizeHelp documents --quantize.
	quantizeHelp = "built-in engine: int8 stores the weight matrices as int8 with a scale per block of 32 at load (faster single-sequence decode, not exact)"
	maxBatchHelp = "built-in engine: sequences decoded together"
)

// defaultMaxBatch is the default of --max-batch wherever it appears.
const defaultMaxBatch = 32

// engineFlags configure the built-in engine.
type engineFlags struct {
	threads                   int
	matmul, kvCache, quantize string
	maxBatch                  int
}

// register adds --threads, --matmul, --kv-cache, --quantize and, with
// batch, --max-batch.
func (f *engineFlags) register(fl *pflag.FlagSet, batch bool) {
	fl.IntVar(&f.threads, "threads", 0, threadsHelp)
	fl.StringVar(&f.matmul, "matmul", "", matmulHelp)
	fl.StringVar(&f.kvCache, "kv-cache", "", kvCacheHelp)
	fl.StringVar(&f.quantize, "quantize", "", quantizeHelp)
	if batch {
		fl.IntVar(&f.maxBatch, "max-batch", defaultMaxBatch, maxBatchHelp)
	}
}

// localOptions are the options of a local backend of model with these
// flags; maxBatch caps the batch (0: --max-batch as given).
func (f *engineFlags) localOptions(model string, maxBatch int) local.Options {
	batch := max(f.maxBatch, 1)
	if maxBatch > 0 && maxBatch < batch {
		batch = maxBatch
	}
	return local.Options{Model: model, MaxBatch: batch, Threads: f.threads, Quantize: f.quantize, Matmul: f.matmul, KVCache: f.kvCache}
}
