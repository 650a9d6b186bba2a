package main

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/crucible-ml/crucible/backend/local"
)

// The help of the built-in engine's flags, one text per flag on every
// command that runs the engine (generate, eval, curate and synth through
// backendFlags; serve; model check; bench engine).
const (
	threadsHelp = "built-in engine: threads per forward pass (0: all cores)"
	matmulHelp  = "built-in engine: the products of bf16 weights: f32 is exact; bf16 rounds the inputs to bf16 (VDPBF16PS, llama.cpp's arithmetic; not exact; faster batched decode and prefill only on CPUs where it measures faster, e.g. Zen 5, slower on some Xeons); auto takes whichever a short probe at load finds faster here, f32 on a tie (default: f32, or auto with a non-exact --quantize or --kv-cache)"
	exactHelp   = "built-in engine: the exact arithmetic, float32 products and KV cache, no quantization (the default without other engine flags; refuses the ones that are not exact)"
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
	exact                     bool
	maxBatch                  int
}

// register adds --threads, --matmul, --exact, --kv-cache, --quantize and,
// with batch, --max-batch.
func (f *engineFlags) register(fl *pflag.FlagSet, batch bool) {
	fl.IntVar(&f.threads, "threads", 0, threadsHelp)
	fl.StringVar(&f.matmul, "matmul", "", matmulHelp)
	fl.BoolVar(&f.exact, "exact", false, exactHelp)
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
	return local.Options{Model: model, MaxBatch: batch, Threads: f.threads, Quantize: f.quantize, Matmul: f.matmulMode(), KVCache: f.kvCache}
}

// check refuses --exact next to a flag that is not exact.
func (f *engineFlags) check() error {
	if !f.exact {
		return nil
	}
	if (f.matmul != "" && f.matmul != "f32" && f.matmul != "exact") || (f.kvCache != "" && f.kvCache != "f32") ||
		(f.quantize != "" && f.quantize != "none") {
		return errors.New("--exact runs float32 products and KV cache without quantization: drop --matmul, --kv-cache and --quantize, or --exact")
	}
	return nil
}

// matmulMode is the engine's Options.Matmul for these flags: --matmul as
// given; unset, f32 (exact), or auto when --quantize or --kv-cache
// already gave up exactness.
func (f *engineFlags) matmulMode() string {
	switch {
	case f.matmul != "":
		return f.matmul
	case f.exact:
		return "f32"
	case (f.quantize != "" && f.quantize != "none") || (f.kvCache != "" && f.kvCache != "f32"):
		return "auto"
	}
	return "f32"
}
