package engine

import (
	"fmt"
	"os"
	"slices"
	"unsafe"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// KernelGo is the portable kernel path (plain Go, any CPU).
const KernelGo = "go"

// activeKernel is the kernel path in use: an assembly path from
// cpuKernels, or KernelGo. CRUCIBLE_KERNELS=go|avx2|avx512 picks one.
var activeKernel = defaultKernel()

func defaultKernel() string {
	ks := cpuKernels()
	if want := os.Getenv("CRUCIBLE_KERNELS"); want != "" {
		if want == KernelGo || slices.Contains(ks, want) {
			return want
		}
	}
	if len(ks) > 0 {
		return ks[0]
	}
	return KernelGo
}

// Kernels lists the kernel paths this build and CPU can run, fastest
// first; the last is always KernelGo.
func Kernels() []string { return append(cpuKernels(), KernelGo) }

// Kernel reports the kernel path in use.
func Kernel() string { return activeKernel }

// SetKernel chooses the kernel path for every model (one of Kernels). It
// is meant for tests and benchmarks: call it while no forward pass runs.
func SetKernel(name string) error {
	if !slices.Contains(Kernels(), name) {
		return fmt.Errorf("engine: kernel path %q not available (have %v)", name, Kernels())
	}
	activeKernel = name
	return nil
}

// blockBytes is the size of a block of weight rows kept hot in the L2
// cache while every token of a micro-batch passes over it.
const blockBytes = 128 << 10

// mulRows sets out[t][r] = W[r,:]·x[t] for rows r in [r0, r1) and every
// token t (len(x) <= MaxChunk). The sum for one (row, token) is computed
// the same way whatever the batch and whichever rows share its tile, so
// batching never changes a result.
func (m *Mat) mulRows(out, x [][]float32, r0, r1 int) {
	if m.DType == Q8 {
		m.mulRowsQ8(out, x, r0, r1)
		return
	}
	if activeKernel == KernelGo || (m.DType != safetensors.F32 && m.DType != safetensors.BF16) {
		m.mulRowsGo(out, x, r0, r1)
		return
	}
	m.mulRowsAsm(out, x, r0, r1)
}

// mulRowsAsm runs mulRows with the assembly tiles: blocks of rows that fit
// in L2, and within a block 4 rows x 4 tokens at a time (4 rows x 1 token
// for the tokens left over). Columns past the kernels' vector width are
// added in Go.
func (m *Mat) mulRowsAsm(out, x [][]float32, r0, r1 int) {
	c, n := m.Cols, len(x)
	bf := m.DType == safetensors.BF16
	esz := m.DType.Size()
	ldw := c * esz
	kmain := c &^ (kernelLanes() - 1)
	var base unsafe.Pointer
	if bf {
		base = unsafe.Pointer(unsafe.SliceData(m.u16))
	} else {
		base = unsafe.Pointer(unsafe.SliceData(m.f32))
	}
	rb := max(4, (blockBytes/ldw)&^3)
	var res [16]float32
	var one [4]float32
	var xs [4]*float32
	for b0 := r0; b0 < r1; b0 += rb {
		b1 := min(b0+rb, r1)
		t := 0
		for ; t+4 <= n; t += 4 {
			xs = [4]*float32{&x[t][0], &x[t+1][0], &x[t+2][0], &x[t+3][0]}
			for r := b0; r < b1; r += 4 {
				if r+4 <= b1 {
					tile4x4(bf, unsafe.Add(base, r*ldw), ldw, &xs, kmain, &res)
					if kmain == c {
						*(*[4]float32)(out[t][r:]) = *(*[4]float32)(res[0:])
						*(*[4]float32)(out[t+1][r:]) = *(*[4]float32)(res[4:])
						*(*[4]float32)(out[t+2][r:]) = *(*[4]float32)(res[8:])
						*(*[4]float32)(out[t+3][r:]) = *(*[4]float32)(res[12:])
						continue
					}
					for i := 0; i < 4; i++ {
						for j := 0; j < 4; j++ {
							out[t+j][r+i] = m.tail(res[j*4+i], r+i, x[t+j], kmain)
						}
					}
					continue
				}
				for ; r < b1; r++ { // the last rows, one at a time
					for j := 0; j < 4; j++ {
						tile4x1(bf, unsafe.Add(base, r*ldw), 0, xs[j], kmain, &one)
						out[t+j][r] = m.tail(one[0], r, x[t+j], kmain)
					}
				}
			}
		}
		for ; t < n; t++ {
			xt := &x[t][0]
			if full := (b1 - b0) &^ 3; full > 0 && gemvRows(bf, unsafe.Add(base, b0*ldw), ldw, xt, kmain, full, &out[t][b0]) {
				if kmain != c {
					for r := b0; r < b0+full; r++ {
						out[t][r] = m.tail(out[t][r], r, x[t], kmain)
					}
				}
				for r := b0 + full; r < b1; r++ {
					tile4x1(bf, unsafe.Add(base, r*ldw), 0, xt, kmain, &one)
					out[t][r] = m.tail(one[0], r, x[t], kmain)
				}
				continue
			}
			for r := b0; r < b1; r += 4 {
				if r+4 <= b1 {
					tile4x1(bf, unsafe.Add(base, r*ldw), ldw, xt, kmain, &one)
					if kmain == c {
						copy(out[t][r:r+4], one[:])
						continue
					}
					for i := 0; i < 4; i++ {
						out[t][r+i] = m.tail(one[i], r+i, x[t], kmain)
					}
					continue
				}
				for ; r < b1; r++ {
					tile4x1(bf, unsafe.Add(base, r*ldw), 0, xt, kmain, &one)
					out[t][r] = m.tail(one[0], r, x[t], kmain)
				}
			}
		}
	}
}

// tail adds W[r, k0:]·x[k0:] to s, in column order.
func (m *Mat) tail(s float32, r int, x []float32, k0 int) float32 {
	c := m.Cols
	if k0 == c {
		return s
	}
	off := r * c
	if m.DType == safetensors.BF16 {
		for j := k0; j < c; j++ {
			s += bf16(m.u16[off+j]) * x[j]
		}
		return s
	}
	for j := k0; j < c; j++ {
		s += m.f32[off+j] * x[j]
	}
	return s
}
