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
	// Matmul chooses the arithmetic of the products of bf16 matrices. ""
	// (or "f32", or "exact") keeps the exact float32 products: each bf16
	// weight widened to float32, one fused multiply-add per weight. "bf16"
	// multiplies with the inputs rounded to bf16, two columns per
	// instruction (VDPBF16PS, as llama.cpp does for bf16 weights), at the
	// cost of exactness (relative 2^-9 per input value); whether that is
	// faster depends on the CPU (about 2x the arithmetic rate on Zen 5,
	// slower than float32 on some Xeons). "auto" picks whichever of the two
	// a short probe finds faster on this CPU (see ResolveMatmul), and
	// keeps float32 on a tie. Matrices of other dtypes are unaffected.
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

// ActiveKernel is the kernel path in use (one of Kernels).
func ActiveKernel() string { return kernel.Active() }

// SetKernel chooses the kernel path for every model (one of Kernels). It
// is meant for tests and benchmarks: call it while no forward pass runs.
func SetKernel(name string) error { return kernel.Set(name) }

// parseMatmul checks an Options.Matmul value and resolves "auto": the
// result is "" (exact float32 products) or "bf16".
func parseMatmul(s string) (string, error) {
	c, err := ResolveMatmul(s)
	if err != nil || c.Product == "f32" {
		return "", err
	}
	return c.Product, nil
}

// MatmulChoice is the product an Options.Matmul value runs on this CPU.
type MatmulChoice struct {
	// Product is "f32" (exact float32 products) or "bf16" (VDPBF16PS).
	Product string
	// Auto reports that the probe chose (Options.Matmul "auto"); then
	// F32GFLOPs and BF16GFLOPs are the two products' rates that it
	// measured on one thread (BF16GFLOPs 0: this CPU or kernel path has
	// no bf16 products).
	Auto                  bool
	F32GFLOPs, BF16GFLOPs float64
}

// String describes the choice, e.g. "bf16 (auto: bf16 products 152
// GFLOP/s, f32 71 GFLOP/s per thread)".
func (c MatmulChoice) String() string {
	if !c.Auto {
		return c.Product
	}
	if c.BF16GFLOPs == 0 {
		return fmt.Sprintf("%s (auto: no bf16 products on this CPU; f32 %.0f GFLOP/s per thread)", c.Product, c.F32GFLOPs)
	}
	return fmt.Sprintf("%s (auto: bf16 products %.0f GFLOP/s, f32 %.0f GFLOP/s per thread)", c.Product, c.BF16GFLOPs, c.F32GFLOPs)
}

// ResolveMatmul tells which product an Options.Matmul value runs here. For
// "auto" the first call probes the CPU (about 20 ms, see
// kernel.ChooseProduct); later calls, and loads, reuse the answer.
func ResolveMatmul(s string) (MatmulChoice, error) {
	switch s {
	case "", "f32", "float32", "exact":
		return MatmulChoice{Product: "f32"}, nil
	case "bf16":
		return MatmulChoice{Product: "bf16"}, nil
	case "auto":
		p := kernel.ChooseProduct()
		c := MatmulChoice{Product: "f32", Auto: true, F32GFLOPs: p.F32GFLOPs, BF16GFLOPs: p.BF16GFLOPs}
		if p.BF16 {
			c.Product = "bf16"
		}
		return c, nil
	}
	return MatmulChoice{}, fmt.Errorf("matmul %q: want auto, f32 or bf16", s)
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
