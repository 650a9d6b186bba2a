package kernel

import (
	"math"
	"unsafe"
)

// DType is the element type of a matrix, spelled as in safetensors.
type DType string

// The dtypes of matrices.
const (
	F32  DType = "F32"
	BF16 DType = "BF16"
	F16  DType = "F16"
	// Q8 is the dtype of matrices quantized at load (QuantizeQ8): int8
	// values in blocks of Q8Block columns, each block with its own
	// float32 scale (max|w|/127), like llama.cpp's q8_0.
	Q8 DType = "Q8"
)

// elemSize is the bytes of one element (1 for Q8).
func (d DType) elemSize() int {
	if d == Q8 {
		return 1
	}
	return d.size()
}

// size is the bytes of one element of an f32, bf16 or f16 matrix.
func (d DType) size() int {
	if d == F32 {
		return 4
	}
	return 2
}

// Mat is a [Rows, Cols] weight matrix in PyTorch nn.Linear layout (one row per
// output), kept in its stored dtype: f32 rows are used as they are, bf16 and
// f16 rows are converted to float32 on the fly.
type Mat struct {
	Rows, Cols int
	DType      DType
	f32        []float32 // F32
	u16        []uint16  // BF16 or F16
	q8         []int8    // Q8 values
	scales     []float32 // Q8 block scales (see quant.go)
	packed     bool      // f32/u16 hold panels (pack.go), not rows
	pairs      bool      // packed bf16 in pair panels, for bf16 products (pack.go)
	mem        [2]*block // the memory of the packed values and scales (hugepage.go)
	// Released, when set, is called by Pack, PackPairs and QuantizeQ8 with
	// each range of rows [r0, r1) of this matrix's source bytes that they
	// have copied and will not read again (possibly from several
	// goroutines at once), so that a loader can release the mapped file's
	// pages while the copy grows.
	Released func(r0, r1 int)
}

// Bytes is the size of the stored matrix.
func (m *Mat) Bytes() int64 {
	if m.DType == Q8 {
		return int64(len(m.q8)) + 4*int64(len(m.scales))
	}
	return int64(m.Rows) * int64(m.Cols) * int64(m.DType.size())
}

// NewMat views data, the little-endian values of a row-major [rows, cols]
// matrix of dtype dt (F32, BF16 or F16; it panics on another), as a
// matrix. The bytes are aliased when they are suitably aligned (always,
// for files written by the safetensors library); otherwise they are
// copied once, still in the stored dtype.
func NewMat(rows, cols int, dt DType, data []byte) *Mat {
	m := &Mat{Rows: rows, Cols: cols, DType: dt}
	n := rows * cols
	switch dt {
	case F32:
		m.f32 = asF32(data, n)
	case BF16, F16:
		m.u16 = asU16(data, n)
	default:
		panic("kernel: NewMat of dtype " + string(dt))
	}
	return m
}

func asF32(b []byte, n int) []float32 {
	if n == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}

func asU16(b []byte, n int) []uint16 {
	if n == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%2 == 0 {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]uint16, n)
	for i := range out {
		out[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return out
}

// bf16 converts a bfloat16 bit pattern to float32 (a 16-bit shift).
func bf16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// RoundBF16 rounds x to the nearest bfloat16 (ties to even), as
// PyTorch's .to(torch.bfloat16) does.
func RoundBF16(x float32) float32 {
	b := math.Float32bits(x)
	if b&0x7fffffff > 0x7f800000 { // NaN
		return x
	}
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

// bf16Bits rounds x to bfloat16 (ties to even) and returns its bits.
func bf16Bits(x float32) uint16 { return uint16(math.Float32bits(RoundBF16(x)) >> 16) }

// f16 converts an IEEE half-precision bit pattern to float32.
func f16(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: value = frac * 2^-24
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// Row writes row i as float32 into dst[:Cols].
func (m *Mat) Row(i int, dst []float32) {
	dst = dst[:m.Cols]
	if m.packed && m.DType != Q8 {
		m.rowPacked(i, dst)
		return
	}
	off := i * m.Cols
	switch m.DType {
	case F32:
		copy(dst, m.f32[off:off+m.Cols])
	case BF16:
		for j, h := range m.u16[off : off+m.Cols] {
			dst[j] = bf16(h)
		}
	case F16:
		for j, h := range m.u16[off : off+m.Cols] {
			dst[j] = f16(h)
		}
	case Q8:
		for j := range dst {
			dst[j] = float32(m.q8At(i, j)) * m.q8Scale(i, j/Q8Block)
		}
	}
}

// segment is how many columns of a bf16/f16 row are converted at a time
// (on the stack) before being multiplied with every token.
const segment = 256

// mulRowsGo is mulRows in plain Go (the portable kernel path).
func (m *Mat) mulRowsGo(out, x [][]float32, r0, r1 int) {
	c := m.Cols
	n := len(x)
	switch m.DType {
	case F32:
		for r := r0; r < r1; r++ {
			row := m.f32[r*c : r*c+c]
			for t := 0; t < n; t++ {
				out[t][r] = dotF32(row, x[t][:c])
			}
		}
	case BF16, F16:
		var buf [segment]float32
		var acc [MaxTokens]float32
		conv := bf16
		if m.DType == F16 {
			conv = f16
		}
		for r := r0; r < r1; r++ {
			row := m.u16[r*c : r*c+c]
			clear(acc[:n])
			for c0 := 0; c0 < c; c0 += segment {
				seg := min(segment, c-c0)
				b := buf[:seg]
				for j, h := range row[c0 : c0+seg] {
					b[j] = conv(h)
				}
				for t := 0; t < n; t++ {
					acc[t] += dotF32(b, x[t][c0:c0+seg])
				}
			}
			for t := 0; t < n; t++ {
				out[t][r] = acc[t]
			}
		}
	}
}

func dotF32(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Linear is y = W·x (+ b).
type Linear struct {
	W *Mat
	B []float32 // nil when the layer has no bias
}
