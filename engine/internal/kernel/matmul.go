package kernel

import "unsafe"

// MaxTokens is the most input vectors (tokens) one product multiplies at
// once: the engine's micro-batch.
const MaxTokens = 64

// mulRows sets out[t][r] = W[r,:]·x[t] for rows r in [r0, r1) and every
// token t (len(x) <= MaxTokens). The sum for one (row, token) is computed
// the same way whatever the batch and whichever rows share its tile, so
// batching never changes a result.
func (m *Mat) mulRows(out, x [][]float32, r0, r1 int) { m.mulRowsX(out, x, nil, r0, r1) }

// mulRowsX is mulRows with the inputs already laid out for the kernels
// (xp from packInputs, or nil to lay them out here when needed).
func (m *Mat) mulRowsX(out, x [][]float32, xp *xPack, r0, r1 int) {
	switch {
	case m.DType == Q8 && !hasQ8():
		m.mulRowsQ8Go(out, x, r0, r1)
		return
	case m.DType == Q8:
	case !m.packed:
		m.mulRowsGo(out, x, r0, r1)
		return
	case activeKernel == kernelGo || (m.pairs && !hasDot()):
		m.mulRowsPackedGo(out, x, r0, r1)
		return
	}
	// The assembly kernels read the inputs laid out (pair panels always,
	// the others for two tokens or more).
	if !xp.fits(m) && (m.pairs || len(x) > 1) {
		xp = xPacks.Get().(*xPack)
		defer xPacks.Put(xp)
		xp.packInputs(x, m)
	}
	switch {
	case m.DType == Q8:
		m.mulRowsQ8(out, x, xp, r0, r1)
	case m.pairs:
		m.mulRowsPairs(out, xp, r0, r1)
	default:
		m.mulRowsPacked(out, x, xp, r0, r1)
	}
}

// tileBuf holds the kernels' output for one panel and a token group, or
// four panels and one token.
type tileBuf [maxTile * panelRows]float32

// eachTile runs a product over the panels of rows [r0, r1), the same way
// for every packed format: one token four panels at a time while gemv4
// has a kernel (it reports false when not), then panel by panel; several
// tokens panel by panel, every token group of xp while the panel is in
// cache. gemv4(p) and tile(p, t0, t1) fill buf for panels p.. and tokens
// [t0, t1); eachTile copies the rows in [r0, r1) to out.
func eachTile(out [][]float32, n int, xp *xPack, r0, r1 int, buf *tileBuf,
	gemv4 func(p int) bool, tile func(p, t0, t1 int)) {
	p0, p1 := r0/panelRows, (r1+panelRows-1)/panelRows
	if n == 1 {
		p := p0
		for ; p+4 <= p1 && gemv4(p); p += 4 {
			lo, hi := max(r0, p*panelRows), min(r1, (p+4)*panelRows)
			copy(out[0][lo:hi], buf[lo-p*panelRows:])
		}
		for ; p < p1; p++ {
			tile(p, 0, 1)
			lo, hi := max(r0, p*panelRows), min(r1, (p+1)*panelRows)
			copy(out[0][lo:hi], buf[lo-p*panelRows:])
		}
		return
	}
	for p := p0; p < p1; p++ {
		lo, hi := max(r0, p*panelRows), min(r1, (p+1)*panelRows)
		for g := 0; g < xp.ng; g++ {
			t0, t1 := xp.groups[g], xp.groups[g+1]
			tile(p, t0, t1)
			for j := t0; j < t1; j++ {
				copy(out[j][lo:hi], buf[(j-t0)*panelRows+lo-p*panelRows:])
			}
		}
	}
}

// mulRowsPacked runs mulRows on f32/bf16 panels with the assembly kernels
// (one token reads x itself, several xp).
func (m *Mat) mulRowsPacked(out, x [][]float32, xp *xPack, r0, r1 int) {
	c := m.Cols
	bf := m.DType == BF16
	ldp := panelRows * c * m.DType.size()
	var base unsafe.Pointer
	if bf {
		base = unsafe.Pointer(unsafe.SliceData(m.u16))
	} else {
		base = unsafe.Pointer(unsafe.SliceData(m.f32))
	}
	var buf tileBuf
	eachTile(out, len(x), xp, r0, r1, &buf,
		func(p int) bool { return panelGemv4(bf, unsafe.Add(base, p*ldp), ldp, &x[0][0], c, &buf) },
		func(p, t0, t1 int) {
			xt := &x[0][0]
			if len(x) > 1 {
				xt = &xp.buf[t0*c]
			}
			panelTile(bf, t1-t0, unsafe.Add(base, p*ldp), xt, c, &buf)
		})
}

// mulRowsPairs runs mulRows on pair panels with the bf16 dot kernels.
func (m *Mat) mulRowsPairs(out [][]float32, xp *xPack, r0, r1 int) {
	k2 := m.pairCols() / 2
	ldp := panelRows * 2 * k2 * 2
	base := unsafe.Pointer(unsafe.SliceData(m.u16))
	var buf tileBuf
	eachTile(out, xp.groups[xp.ng], xp, r0, r1, &buf,
		func(p int) bool {
			dotGemv4(unsafe.Add(base, p*ldp), ldp, &xp.pairs[0], k2, &buf)
			return true
		},
		func(p, t0, t1 int) { dotTile(t1-t0, unsafe.Add(base, p*ldp), &xp.pairs[t0*k2], k2, &buf) })
}
