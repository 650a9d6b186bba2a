// Package kernel holds the compute kernels of package engine: products of
// a weight matrix with a batch of input vectors (f32, bf16 and f16
// weights, bf16 products, int8 weights), grouped-query attention over a
// KV cache, the Mamba-2 scan step, RMSNorm, SwiGLU, softmax and the
// sampler's exponentials; the pool of worker threads that splits them; the
// packing and quantization of weights into memory backed by huge pages;
// and the bandwidth and arithmetic probes of `crucible bench engine`.
//
// Every kernel has Go assembly versions (panel_amd64.s, written by
// panel_gen.go, and kernels_amd64.s: AVX-512, else AVX2+FMA, chosen at run
// time; CRUCIBLE_KERNELS=go|avx2|avx512 or Set force one) and a portable
// Go one (other CPUs, -tags purego), every path passing the same
// reference checks. Matrices keep their dtype, packed in 32-row panels
// (pack.go) so that products are outer products with no horizontal sums,
// and a sum never depends on the batch it is computed in.
//
// The package knows nothing of models: it imports no other package of
// the module. Package engine builds the architectures on it (a Mat per
// weight matrix, a KVCache per attention layer and sequence, one Workers
// per model); after changing panel_gen.go, run go generate here.
package kernel

import (
	"fmt"
	"os"
	"slices"
)

// kernelGo is the portable kernel path (plain Go, any CPU).
const kernelGo = "go"

// activeKernel is the kernel path in use: an assembly path from
// cpuKernels, or kernelGo. CRUCIBLE_KERNELS=go|avx2|avx512 picks one.
var activeKernel = defaultKernel()

func defaultKernel() string {
	ks := cpuKernels()
	if want := os.Getenv("CRUCIBLE_KERNELS"); want != "" {
		if want == kernelGo || slices.Contains(ks, want) {
			return want
		}
	}
	if len(ks) > 0 {
		return ks[0]
	}
	return kernelGo
}

// Kernels lists the kernel paths this build and CPU can run, fastest
// first; the last is always "go", the portable path (plain Go, any CPU).
func Kernels() []string { return append(cpuKernels(), kernelGo) }

// Active reports the kernel path in use.
func Active() string { return activeKernel }

// Set chooses the kernel path for every product (one of Kernels). It is
// meant for tests and benchmarks: call it while no kernel runs.
func Set(name string) error {
	if !slices.Contains(Kernels(), name) {
		return fmt.Errorf("engine: kernel path %q not available (have %v)", name, Kernels())
	}
	activeKernel = name
	return nil
}
