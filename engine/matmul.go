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

// mulRows sets out[t][r] = W[r,:]·x[t] for rows r in [r0, r1) and every
// token t (len(x) <= MaxChunk). The sum for one (row, token) is computed
// the same way whatever the batch and whichever rows share its tile, so
// batching never changes a result.
func (m *Mat) mulRows(out, x [][]float32, r0, r1 int) { m.mulRowsX(out, x, nil, r0, r1) }

// mulRowsX is mulRows with the inputs already laid out for the kernels
// (xp from packInputs, or nil to lay them out here when needed).
func (m *Mat) mulRowsX(out, x [][]float32, xp *xPack, r0, r1 int) {
	switch {
	case m.DType == Q8:
		m.mulRowsQ8(out, x, xp, r0, r1)
	case !m.packed:
		m.mulRowsGo(out, x, r0, r1)
	case activeKernel == KernelGo || (m.pairs && !hasDot()):
		m.mulRowsPackedGo(out, x, r0, r1)
	case m.pairs:
		if !xp.fits(m) {
			xp = xPacks.Get().(*xPack)
			defer xPacks.Put(xp)
			xp.packInputs(x, m)
		}
		m.mulRowsPairs(out, xp, r0, r1)
	default:
		if !xp.fits(m) && len(x) > 1 {
			xp = xPacks.Get().(*xPack)
			defer xPacks.Put(xp)
			xp.packInputs(x, m)
		}
		m.mulRowsPacked(out, x, xp, r0, r1)
	}
}

// mulRowsPacked runs mulRows on a packed matrix with the assembly kernels:
// panel by panel, every token group of xp over the panel while it is in
// cache (one token: four panels at a time, read as four streams).
func (m *Mat) mulRowsPacked(out, x [][]float32, xp *xPack, r0, r1 int) {
	c := m.Cols
	bf := m.DType == safetensors.BF16
	ldp := panelRows * c * m.DType.Size()
	var base unsafe.Pointer
	if bf {
		base = unsafe.Pointer(unsafe.SliceData(m.u16))
	} else {
		base = unsafe.Pointer(unsafe.SliceData(m.f32))
	}
	var tile [MaxTile * panelRows]float32
	p0, p1 := r0/panelRows, (r1+panelRows-1)/panelRows
	if len(x) == 1 {
		xt := &x[0][0]
		p := p0
		for ; p+4 <= p1 && panelGemv4(bf, unsafe.Add(base, p*ldp), ldp, xt, c, &tile); p += 4 {
			lo, hi := max(r0, p*panelRows), min(r1, (p+4)*panelRows)
			copy(out[0][lo:hi], tile[lo-p*panelRows:])
		}
		for ; p < p1; p++ {
			panelTile(bf, 1, unsafe.Add(base, p*ldp), xt, c, &tile)
			lo, hi := max(r0, p*panelRows), min(r1, (p+1)*panelRows)
			copy(out[0][lo:hi], tile[lo-p*panelRows:])
		}
		return
	}
	for p := p0; p < p1; p++ {
		w := unsafe.Add(base, p*ldp)
		lo, hi := max(r0, p*panelRows), min(r1, (p+1)*panelRows)
		for g := 0; g < xp.ng; g++ {
			t0, t1 := xp.groups[g], xp.groups[g+1]
			panelTile(bf, t1-t0, w, &xp.buf[t0*c], c, &tile)
			for j := t0; j < t1; j++ {
				copy(out[j][lo:hi], tile[(j-t0)*panelRows+lo-p*panelRows:])
			}
		}
	}
}

// mulRowsPairs runs mulRows on pair panels with the bf16 dot kernels, as
// mulRowsPacked does on panels.
func (m *Mat) mulRowsPairs(out [][]float32, xp *xPack, r0, r1 int) {
	k2 := m.pairCols() / 2
	ldp := panelRows * 2 * k2 * 2
	base := unsafe.Pointer(unsafe.SliceData(m.u16))
	var tile [MaxTile * panelRows]float32
	p0, p1 := r0/panelRows, (r1+panelRows-1)/panelRows
	if xp.ng == 1 && xp.groups[1] == 1 {
		xt := &xp.pairs[0]
		p := p0
		for ; p+4 <= p1; p += 4 {
			dotGemv4(unsafe.Add(base, p*ldp), ldp, xt, k2, &tile)
			lo, hi := max(r0, p*panelRows), min(r1, (p+4)*panelRows)
			copy(out[0][lo:hi], tile[lo-p*panelRows:])
		}
		for ; p < p1; p++ {
			dotTile(1, unsafe.Add(base, p*ldp), xt, k2, &tile)
			lo, hi := max(r0, p*panelRows), min(r1, (p+1)*panelRows)
			copy(out[0][lo:hi], tile[lo-p*panelRows:])
		}
		return
	}
	for p := p0; p < p1; p++ {
		w := unsafe.Add(base, p*ldp)
		lo, hi := max(r0, p*panelRows), min(r1, (p+1)*panelRows)
		for g := 0; g < xp.ng; g++ {
			t0, t1 := xp.groups[g], xp.groups[g+1]
			dotTile(t1-t0, w, &xp.pairs[t0*k2], k2, &tile)
			for j := t0; j < t1; j++ {
				copy(out[j][lo:hi], tile[(j-t0)*panelRows+lo-p*panelRows:])
			}
		}
	}
}
