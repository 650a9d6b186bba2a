package engine

import (
	"fmt"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
)

// Options tune how a model runs; the zero value is the default.
type Options struct {
	// Threads is the number of threads that share the matrix products and
	// the attention of a forward pass (0: GOMAXPROCS).
	Threads int
	// Quantize "int8" stores the matrices as int8 in blocks of 32 with a
	// scale each (llama.cpp's q8_0) at load: half the bytes of bf16 per
	// token, at the cost of exactness (no reference check holds then). ""
	// keeps the dtype.
	Quantize string
	// Matmul "bf16" multiplies bf16 matrices with the inputs rounded to
	// bf16, two columns per instruction (VDPBF16PS, as llama.cpp does for
	// bf16 weights): about twice the arithmetic rate of float32, for
	// batched decode and prefill, at the cost of exactness (relative 2^-9
	// per input value). "" (or "f32") keeps the exact float32 products.
	Matmul string
	// KVCache "bf16" keeps attention keys and values in bfloat16, as
	// llama.cpp keeps them in f16: half the memory per sequence and half
	// the bytes read per step at long context, at the cost of exactness
	// (each key and value rounded to 8 bits of mantissa). "" (or "f32")
	// keeps them in float32.
	KVCache string
}

// Kernels lists the kernel paths this build and CPU can run, fastest
// first: "avx512" and "avx2" where the CPU has them, and last always "go"
// (plain Go, any CPU).
func Kernels() []string { return kernel.Kernels() }

// SetKernel chooses the kernel path for every model (one of Kernels). It
// is meant for tests and benchmarks: call it while no forward pass runs.
func SetKernel(name string) error { return kernel.Set(name) }

// parseMatmul checks an Options.Matmul value.
func parseMatmul(s string) (string, error) {
	switch s {
	case "", "f32", "float32":
		return "", nil
	case "bf16":
		return "bf16", nil
	}
	return "", fmt.Errorf("matmul %q: want f32 or bf16", s)
}

// parseKVCache checks an Options.KVCache value.
func parseKVCache(s string) (string, error) {
	switch s {
	case "", "f32", "float32":
		return "", nil
	case "bf16":
		return "bf16", nil
	}
	return "", fmt.Errorf("kv cache %q: want f32 or bf16", s)
}

// parseQuantize checks an Options.Quantize value.
func parseQuantize(s string) (string, error) {
	switch s {
	case "", "none":
		return "", nil
	case "int8", "q8":
		return "int8", nil
	}
	return "", fmt.Errorf("quantize %q: want int8 or none", s)
}
