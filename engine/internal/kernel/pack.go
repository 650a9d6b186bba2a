package kernel

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// Packed matrices. The f32 and bf16 matrices of the linear layers are
// stored in panels of panelRows rows, each panel column-major: element
// (r, k) of panel p = r/panelRows is at p·Cols·panelRows + k·panelRows +
// r%panelRows. A panel's column k is then 32 consecutive values (two
// AVX-512 vectors), so the kernels compute 32 rows × N tokens at a time by
// outer products (a weight vector times a broadcast input value) with no
// horizontal sums, and a panel is one contiguous stream for the prefetcher.
// The last panel is padded with zero rows.
//
// Each output value out[t][r] is the sum over k in order of W[r,k]·x[t][k],
// one fused multiply-add per k, whatever the number of tokens, the tile or
// the kernel (AVX-512 or AVX2): a batch never changes a result. The
// portable path adds the same products in the same order without fusing.
//
// Packing copies the weights out of the memory-mapped file (whose pages
// the loader then releases, tensor by tensor) into memory outside the Go
// heap, aligned for 2 MiB pages where the kernel offers them (hugepage.go):
// the same bytes, read faster (fewer TLB misses), and held once.

// Pair panels. With bf16 products (PackPairs; engine.Options.Matmul "bf16",
// llama.cpp's arithmetic for bf16 weights) a bf16 matrix is packed in pairs of
// columns: element (r, k) at p·kp·32 + (k/2)·64 + (r%32)·2 + k%2, where kp
// is Cols rounded up to even (a zero column pads an odd width). The inputs
// are rounded to bf16 and paired the same way, and one VDPBF16PS adds
// w[r,k+1]·x[k+1] then w[r,k]·x[k] to each row's sum (products of two bf16
// are exact in float32). Sums still go column by column in order, so a batch
// never changes a result; they differ from the float32 path by the
// rounding of the inputs (relative 2^-9 per input value).

// panelRows is the number of rows of a panel.
const panelRows = 32

// maxTile is the largest token group a kernel multiplies at once.
const maxTile = 12

// packable reports whether m can be packed (f32 or bf16, not yet packed).
func (m *Mat) packable() bool {
	return !m.packed && (m.DType == F32 || m.DType == BF16)
}

// panels is the number of panels of a packed m.
func (m *Mat) panels() int { return (m.Rows + panelRows - 1) / panelRows }

// Pack rearranges m into panels in place (see above); matrices of other
// dtypes are left as they are.
func (m *Mat) Pack() {
	if !m.packable() {
		return
	}
	c, n := m.Cols, m.panels()*panelRows*m.Cols
	if m.DType == BF16 {
		dst, blk := alignedU16(n)
		src := m.u16
		eachPanel(m, func(p int) { packPanel(dst[p*panelRows*c:], src, p, m.Rows, c) })
		m.u16, m.mem[0] = dst, blk
	} else {
		dst, blk := alignedF32(n)
		src := m.f32
		eachPanel(m, func(p int) { packPanel(dst[p*panelRows*c:], src, p, m.Rows, c) })
		m.f32, m.mem[0] = dst, blk
	}
	m.packed = true
}

// packPanel writes panel p of the row-major [rows, c] src into d: column
// by column, so that the writes are sequential and the reads 32 short
// streams.
func packPanel[T uint16 | float32](d, src []T, p, rows, c int) {
	r0 := p * panelRows
	nr := min(panelRows, rows-r0)
	d = d[:c*panelRows]
	src = src[r0*c : (r0+nr)*c]
	for k := 0; k < c; k++ {
		col := d[k*panelRows : k*panelRows+nr]
		for i := range col {
			col[i] = src[i*c+k]
		}
	}
}

// eachPanel runs f for every panel of m, on all CPUs for large matrices
// (packing a model's weights is the bulk of its load time), in chunks of
// panels of about a megabyte of source rows; after each chunk it tells
// m.Released, when set, which source rows it is done with.
func eachPanel(m *Mat, f func(p int)) {
	np := m.panels()
	per := max(1, (1<<20)/max(1, panelRows*m.Cols*m.DType.elemSize()))
	chunks := (np + per - 1) / per
	chunk := func(ch int) {
		p0, p1 := ch*per, min(np, (ch+1)*per)
		for p := p0; p < p1; p++ {
			f(p)
		}
		if m.Released != nil {
			m.Released(p0*panelRows, min(m.Rows, p1*panelRows))
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if np*panelRows*m.Cols < 1<<20 || workers == 1 {
		for ch := 0; ch < chunks; ch++ {
			chunk(ch)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := int(next.Add(1) - 1); ch < chunks; ch = int(next.Add(1) - 1) {
				chunk(ch)
			}
		}()
	}
	wg.Wait()
}

// PackPairs rearranges a bf16 m into pair panels in place (see above);
// other matrices get Pack.
func (m *Mat) PackPairs() {
	if !m.packable() || m.DType != BF16 {
		m.Pack()
		return
	}
	c, kp := m.Cols, m.pairCols()
	dst, blk := alignedU16(m.panels() * panelRows * kp)
	src := m.u16
	eachPanel(m, func(p int) {
		// Pair by pair of columns, so that the writes are sequential.
		d := dst[p*panelRows*kp : (p+1)*panelRows*kp]
		r0 := p * panelRows
		nr := min(panelRows, m.Rows-r0)
		rows := src[r0*c : (r0+nr)*c]
		for k := 0; k+1 < c; k += 2 {
			col := d[k*panelRows : k*panelRows+2*nr]
			for i := 0; i < nr; i++ {
				col[2*i], col[2*i+1] = rows[i*c+k], rows[i*c+k+1]
			}
		}
		if c%2 == 1 {
			col := d[(c-1)*panelRows:]
			for i := 0; i < nr; i++ {
				col[2*i] = rows[i*c+c-1]
			}
		}
	})
	m.u16, m.mem[0] = dst, blk
	m.packed, m.pairs = true, true
}

// pairCols is Cols rounded up to even (the width of a pair panel).
func (m *Mat) pairCols() int { return (m.Cols + 1) &^ 1 }

// at returns element (r, k) of a packed bf16 or f32 matrix as float32.
func (m *Mat) at(r, k int) float32 {
	if m.pairs {
		return bf16(m.u16[(r/panelRows)*panelRows*m.pairCols()+(k/2)*2*panelRows+(r%panelRows)*2+k%2])
	}
	i := (r/panelRows)*panelRows*m.Cols + k*panelRows + r%panelRows
	if m.DType == BF16 {
		return bf16(m.u16[i])
	}
	return m.f32[i]
}

// rowPacked writes row i of a packed matrix into dst[:Cols].
func (m *Mat) rowPacked(i int, dst []float32) {
	if m.pairs {
		for k := range dst[:m.Cols] {
			dst[k] = m.at(i, k)
		}
		return
	}
	base := (i/panelRows)*panelRows*m.Cols + i%panelRows
	if m.DType == BF16 {
		for k := range dst[:m.Cols] {
			dst[k] = bf16(m.u16[base+k*panelRows])
		}
		return
	}
	for k := range dst[:m.Cols] {
		dst[k] = m.f32[base+k*panelRows]
	}
}

// mulRowsPackedGo is mulRows on a packed matrix in plain Go: each panel's
// 32 sums are carried across the columns in order.
func (m *Mat) mulRowsPackedGo(out, x [][]float32, r0, r1 int) {
	if m.pairs {
		m.mulRowsPairsGo(out, x, r0, r1)
		return
	}
	c := m.Cols
	var acc [panelRows]float32
	for p := r0 / panelRows; p*panelRows < r1; p++ {
		base := p * panelRows * c
		lo, hi := max(r0, p*panelRows), min(r1, (p+1)*panelRows)
		for t := range x {
			xt := x[t][:c]
			clear(acc[:])
			if m.DType == BF16 {
				w := m.u16[base : base+c*panelRows]
				for k, xv := range xt {
					col := (*[panelRows]uint16)(w[k*panelRows:])
					for i := range acc {
						acc[i] += bf16(col[i]) * xv
					}
				}
			} else {
				w := m.f32[base : base+c*panelRows]
				for k, xv := range xt {
					col := (*[panelRows]float32)(w[k*panelRows:])
					for i := range acc {
						acc[i] += col[i] * xv
					}
				}
			}
			copy(out[t][lo:hi], acc[lo-p*panelRows:hi-p*panelRows])
		}
	}
}

// mulRowsPairsGo is mulRows on pair panels in plain Go, with the
// arithmetic of VDPBF16PS: inputs rounded to bf16; per pair of columns the
// odd column's product is added first, then the even one's (each product
// exact, each addition rounded).
func (m *Mat) mulRowsPairsGo(out, x [][]float32, r0, r1 int) {
	kp := m.pairCols()
	var acc [panelRows]float32
	scratch := xPacks.Get().(*xPack) // for the rounded inputs
	defer xPacks.Put(scratch)
	if cap(scratch.buf) < kp {
		scratch.buf = make([]float32, kp)
	}
	xr := scratch.buf[:kp]
	scratch.kind = 0 // holds no layout
	for t := range x {
		clear(xr)
		for k, v := range x[t][:m.Cols] {
			xr[k] = RoundBF16(v)
		}
		for p := r0 / panelRows; p*panelRows < r1; p++ {
			w := m.u16[p*panelRows*kp : (p+1)*panelRows*kp]
			lo, hi := max(r0, p*panelRows), min(r1, (p+1)*panelRows)
			clear(acc[:])
			for k2 := 0; k2 < kp/2; k2++ {
				col := (*[2 * panelRows]uint16)(w[k2*2*panelRows:])
				x0, x1 := xr[2*k2], xr[2*k2+1]
				for i := range acc {
					acc[i] += bf16(col[2*i+1]) * x1
					acc[i] += bf16(col[2*i]) * x0
				}
			}
			copy(out[t][lo:hi], acc[lo-p*panelRows:hi-p*panelRows])
		}
	}
}

// xPack is a reusable buffer for the inputs of a product laid out for the
// kernels (see packInputs).
type xPack struct {
	buf    []float32
	pairs  []uint32           // bf16 input pairs, for pair panels
	groups [MaxTokens + 1]int // token group bounds: group g is [groups[g], groups[g+1])
	ng     int
	kind   packKind // the matrices the layout is for
	cols   int      // the inputs' width
}

// packKind tells apart the input layouts of the kernel families.
type packKind int

const (
	kindPanels packKind = iota + 1 // f32/bf16 panels: float32 groups of tokenGroups()
	kindPairs                      // pair panels: bf16 pairs, groups of tokenGroups()
	kindQ8                         // int8 panels: float32 groups of q8Groups
)

// q8Groups are the token-group sizes of the int8 kernels.
var q8Groups = []int{6, 4, 2, 1}

// kind is the input layout m's kernels read.
func (m *Mat) kind() packKind {
	switch {
	case m.DType == Q8:
		return kindQ8
	case m.pairs:
		return kindPairs
	}
	return kindPanels
}

var xPacks = sync.Pool{New: func() any { return new(xPack) }}

// fits reports whether xp holds inputs laid out for m.
func (xp *xPack) fits(m *Mat) bool { return xp != nil && xp.kind == m.kind() && xp.cols == m.Cols }

// packInputs lays out x (n tokens of m.Cols values) for m's kernels on the
// active path: tokens in groups (sizes from tokenGroups or q8Groups), each
// group column-major ([c][size], at offset start·c), so that a kernel reads
// one group's values for a column as consecutive floats; for pair panels
// the values are rounded to bf16 and two consecutive columns share a word
// (the even column in the low half), [c/2 rounded up][size] per group.
func (xp *xPack) packInputs(x [][]float32, m *Mat) {
	n, c := len(x), m.Cols
	xp.kind, xp.cols, xp.ng = m.kind(), c, 0
	sizes := tokenGroups()
	if xp.kind == kindQ8 {
		sizes = q8Groups
	}
	if xp.kind == kindPairs {
		k2 := (c + 1) / 2
		if cap(xp.pairs) < n*k2 {
			xp.pairs = make([]uint32, n*k2)
		}
		xp.pairs = xp.pairs[:n*k2]
	} else {
		if cap(xp.buf) < n*c {
			xp.buf = make([]float32, n*c)
		}
		xp.buf = xp.buf[:n*c]
	}
	for t := 0; t < n; {
		g := groupSize(sizes, n-t)
		xp.groups[xp.ng] = t
		xp.ng++
		if xp.kind == kindPairs {
			k2 := (c + 1) / 2
			d := xp.pairs[t*k2 : (t+g)*k2]
			for j := 0; j < g; j++ {
				src := x[t+j][:c]
				for i := 0; i < c/2; i++ {
					lo := math.Float32bits(RoundBF16(src[2*i])) >> 16
					hi := math.Float32bits(RoundBF16(src[2*i+1])) &^ 0xffff
					d[i*g+j] = hi | lo
				}
				if c%2 == 1 {
					d[(k2-1)*g+j] = math.Float32bits(RoundBF16(src[c-1])) >> 16
				}
			}
		} else {
			d := xp.buf[t*c : (t+g)*c]
			for j := 0; j < g; j++ {
				for k, v := range x[t+j][:c] {
					d[k*g+j] = v
				}
			}
		}
		t += g
	}
	xp.groups[xp.ng] = n
}

// groupSize is the size of the next token group when left tokens remain.
func groupSize(sizes []int, left int) int {
	for _, g := range sizes {
		if left >= g {
			return g
		}
	}
	return 1
}

// Packed reports whether m holds panels (Pack, PackPairs, QuantizeQ8)
// rather than the rows it was made from.
func (m *Mat) Packed() bool { return m.packed }
