package engine

import (
	"fmt"
	"math"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// Q8 is the dtype of matrices quantized at load (Options.Quantize
// "int8"): int8 values in blocks of Q8Block columns, each block with its
// own float32 scale (max|w|/127), like llama.cpp's q8_0.
const Q8 safetensors.DType = "Q8"

// Q8Block is the number of columns that share one scale.
const Q8Block = 32

// q8Scale returns the scale of row r's block b. Scales are stored by
// tiles of 4 rows, block-major within a tile ([rows/4][blocks][4]), so
// the assembly reads one pointer per tile.
func (m *Mat) q8Scale(r, b int) float32 {
	nb := m.Cols / Q8Block
	return m.scales[((r/4)*nb+b)*4+r%4]
}

// quantizeQ8 returns m quantized to Q8 (m unchanged), or m itself when its
// columns are not a multiple of Q8Block.
func quantizeQ8(m *Mat) *Mat {
	if m.Cols%Q8Block != 0 || m.DType == Q8 {
		return m
	}
	nb := m.Cols / Q8Block
	q := &Mat{Rows: m.Rows, Cols: m.Cols, DType: Q8, q8: make([]int8, m.Rows*m.Cols),
		scales: make([]float32, (m.Rows+3)/4*4*nb)}
	row := make([]float32, m.Cols)
	for r := 0; r < m.Rows; r++ {
		m.Row(r, row)
		for b := 0; b < nb; b++ {
			blk := row[b*Q8Block : (b+1)*Q8Block]
			var amax float32
			for _, v := range blk {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			scale := amax / 127
			q.scales[((r/4)*nb+b)*4+r%4] = scale
			inv := float32(0)
			if scale != 0 {
				inv = 1 / scale
			}
			dst := q.q8[r*m.Cols+b*Q8Block:]
			for i, v := range blk {
				dst[i] = int8(max(-127, min(127, math.Round(float64(v*inv)))))
			}
		}
	}
	return q
}

// q8Dot is W[r,:]·x on the portable path: per block Σ q·x, times the
// block's scale.
func (m *Mat) q8Dot(r int, x []float32) float32 {
	c := m.Cols
	row := m.q8[r*c : r*c+c]
	var s float32
	for b := 0; b < c/Q8Block; b++ {
		var t float32
		for i, v := range row[b*Q8Block : (b+1)*Q8Block] {
			t += float32(v) * x[b*Q8Block+i]
		}
		s += t * m.q8Scale(r, b)
	}
	return s
}

// mulRowsQ8 is mulRows for Q8 matrices: tiles of 4 rows in assembly
// where there is a kernel (the whole tile computed, the rows in [r0, r1)
// kept), the rest with q8Dot; each token on its own. A row is computed
// the same way whatever the batch and the row range.
func (m *Mat) mulRowsQ8(out, x [][]float32, r0, r1 int) {
	var tmp [4]float32
	for t := range x {
		r := r0
		for r < r1 {
			tile := r &^ 3
			if nt := (min(r1, m.Rows&^3) - r) / 4; r == tile && nt > 0 && q8Rows(m, r, nt, x[t], out[t][r:r+4*nt]) {
				r += 4 * nt
				continue
			}
			if tile+4 <= m.Rows && q8Rows(m, tile, 1, x[t], tmp[:]) {
				for ; r < min(tile+4, r1); r++ {
					out[t][r] = tmp[r-tile]
				}
				continue
			}
			out[t][r] = m.q8Dot(r, x[t])
			r++
		}
	}
}

// ParseMatmul checks an Options.Matmul value.
func ParseMatmul(s string) (string, error) {
	switch s {
	case "", "f32", "float32":
		return "", nil
	case "bf16":
		return "bf16", nil
	}
	return "", fmt.Errorf("matmul %q: want f32 or bf16", s)
}

// ParseKVCache checks an Options.KVCache value.
func ParseKVCache(s string) (string, error) {
	switch s {
	case "", "f32", "float32":
		return "", nil
	case "bf16":
		return "bf16", nil
	}
	return "", fmt.Errorf("kv cache %q: want f32 or bf16", s)
}

// ParseQuantize checks an Options.Quantize value.
func ParseQuantize(s string) (string, error) {
	switch s {
	case "", "none":
		return "", nil
	case "int8", "q8":
		return "int8", nil
	}
	return "", fmt.Errorf("quantize %q: want int8 or none", s)
}
