package kernel

import (
	"math"
	"unsafe"
)

// Q8Block is the number of columns that share one scale.
const Q8Block = 32

// Q8 matrices are packed in panels of 32 rows like f32 and bf16 ones
// (pack.go): panel p holds the int8 values column-major, element (r, k) at
// p·32·Cols + k·32 + r%32, and the scales block-major, row r's block b at
// p·32·nb + b·32 + r%32 (nb = Cols/32). A product sums each block of 32
// columns in order (one multiply-add per column), then adds that sum times
// the row's block scale to the row's total: the same on every path and
// whatever the batch.

// q8Scale returns the scale of row r's block b.
func (m *Mat) q8Scale(r, b int) float32 {
	nb := m.Cols / Q8Block
	return m.scales[(r/panelRows)*panelRows*nb+b*panelRows+r%panelRows]
}

// q8At returns the int8 value of element (r, k).
func (m *Mat) q8At(r, k int) int8 {
	return m.q8[(r/panelRows)*panelRows*m.Cols+k*panelRows+r%panelRows]
}

// QuantizeQ8 returns m quantized to Q8 (m unchanged), or m itself when its
// columns are not a multiple of Q8Block.
func QuantizeQ8(m *Mat) *Mat {
	if m.Cols%Q8Block != 0 || m.DType == Q8 {
		return m
	}
	c, nb := m.Cols, m.Cols/Q8Block
	n := m.panels() * panelRows * c
	q8, blk := alignedBytes(n)
	scales, sblk := alignedF32(m.panels() * panelRows * nb)
	q := &Mat{Rows: m.Rows, Cols: c, DType: Q8, packed: true,
		q8: unsafe.Slice((*int8)(q8), n), scales: scales, mem: [2]*block{blk, sblk}}
	eachPanel(m, func(p int) {
		row := make([]float32, c)
		for r := p * panelRows; r < min(m.Rows, (p+1)*panelRows); r++ {
			m.Row(r, row)
			i := r % panelRows
			for b := 0; b < nb; b++ {
				blk := row[b*Q8Block : (b+1)*Q8Block]
				var amax float32
				for _, v := range blk {
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				scale := amax / 127
				q.scales[p*panelRows*nb+b*panelRows+i] = scale
				inv := float32(0)
				if scale != 0 {
					inv = 1 / scale
				}
				for j, v := range blk {
					q.q8[p*panelRows*c+(b*Q8Block+j)*panelRows+i] = int8(max(-127, min(127, math.Round(float64(v*inv)))))
				}
			}
		}
	})
	return q
}

// mulRowsQ8 is mulRows for Q8 matrices with the assembly kernels (one
// token reads x itself, several xp).
func (m *Mat) mulRowsQ8(out, x [][]float32, xp *xPack, r0, r1 int) {
	c, nb := m.Cols, m.Cols/Q8Block
	ldp, ldps := panelRows*c, panelRows*nb
	var buf tileBuf
	eachTile(out, len(x), xp, r0, r1, &buf,
		func(p int) bool {
			q8Gemv4(&m.q8[p*ldp], ldp, &m.scales[p*ldps], 4*ldps, &x[0][0], c, &buf)
			return true
		},
		func(p, t0, t1 int) {
			xt := &x[0][0]
			if len(x) > 1 {
				xt = &xp.buf[t0*c]
			}
			q8Tile(t1-t0, &m.q8[p*ldp], &m.scales[p*ldps], xt, c, &buf)
		})
}

// mulRowsQ8Go is mulRowsQ8 in plain Go.
func (m *Mat) mulRowsQ8Go(out, x [][]float32, r0, r1 int) {
	c, nb := m.Cols, m.Cols/Q8Block
	var acc, blk [panelRows]float32
	for p := r0 / panelRows; p*panelRows < r1; p++ {
		q := m.q8[p*panelRows*c : (p+1)*panelRows*c]
		sc := m.scales[p*panelRows*nb : (p+1)*panelRows*nb]
		lo, hi := max(r0, p*panelRows), min(r1, (p+1)*panelRows)
		for t := range x {
			xt := x[t][:c]
			clear(acc[:])
			for b := 0; b < nb; b++ {
				clear(blk[:])
				for k := b * Q8Block; k < (b+1)*Q8Block; k++ {
					col := (*[panelRows]int8)(q[k*panelRows:])
					xv := xt[k]
					for i := range blk {
						blk[i] += float32(col[i]) * xv
					}
				}
				s := (*[panelRows]float32)(sc[b*panelRows:])
				for i := range acc {
					acc[i] += blk[i] * s[i]
				}
			}
			copy(out[t][lo:hi], acc[lo-p*panelRows:hi-p*panelRows])
		}
	}
}
