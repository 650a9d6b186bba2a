package engine

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// Mat is a [Rows, Cols] weight matrix in PyTorch nn.Linear layout (one row per
// output), kept in its stored dtype: f32 rows are used as they are, bf16 and
// f16 rows are converted to float32 on the fly.
type Mat struct {
	Rows, Cols int
	DType      safetensors.DType
	f32        []float32 // F32
	u16        []uint16  // BF16 or F16
	q8         []int8    // Q8 values
	scales     []float32 // Q8 block scales (see quant.go)
	packed     bool      // f32/u16 hold panels (pack.go), not rows
	pairs      bool      // packed bf16 in pair panels, for bf16 products (pack.go)
}

// Bytes is the size of the stored matrix.
func (m *Mat) Bytes() int64 {
	if m.DType == Q8 {
		return int64(len(m.q8)) + 4*int64(len(m.scales))
	}
	return int64(m.Rows) * int64(m.Cols) * int64(m.DType.Size())
}

// newMat views t as a matrix. The tensor's bytes are aliased when they are
// suitably aligned (always, for files written by the safetensors library);
// otherwise they are copied once, still in the stored dtype.
func newMat(t *safetensors.Tensor) (*Mat, error) {
	var rows, cols int
	switch len(t.Shape) {
	case 1:
		rows, cols = 1, t.Shape[0]
	case 2:
		rows, cols = t.Shape[0], t.Shape[1]
	default:
		return nil, fmt.Errorf("tensor %s: want a matrix, have shape %v", t.Name, t.Shape)
	}
	m := &Mat{Rows: rows, Cols: cols, DType: t.DType}
	n := rows * cols
	switch t.DType {
	case safetensors.F32:
		m.f32 = asF32(t.Data, n)
	case safetensors.BF16, safetensors.F16:
		m.u16 = asU16(t.Data, n)
	default:
		return nil, fmt.Errorf("tensor %s: dtype %s: %w", t.Name, t.DType, ErrUnsupported)
	}
	return m, nil
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

// roundBF16 rounds x to the nearest bfloat16 (ties to even), as
// PyTorch's .to(torch.bfloat16) does.
func roundBF16(x float32) float32 {
	b := math.Float32bits(x)
	if b&0x7fffffff > 0x7f800000 { // NaN
		return x
	}
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

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
	case safetensors.F32:
		copy(dst, m.f32[off:off+m.Cols])
	case safetensors.BF16:
		for j, h := range m.u16[off : off+m.Cols] {
			dst[j] = bf16(h)
		}
	case safetensors.F16:
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
	case safetensors.F32:
		for r := r0; r < r1; r++ {
			row := m.f32[r*c : r*c+c]
			for t := 0; t < n; t++ {
				out[t][r] = dotF32(row, x[t][:c])
			}
		}
	case safetensors.BF16, safetensors.F16:
		var buf [segment]float32
		var acc [MaxChunk]float32
		conv := bf16
		if m.DType == safetensors.F16 {
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

// vector reads a 1-D (or any-shaped) small parameter as float32. These
// (norm weights, biases, A_log, D, conv kernels) are tiny next to the
// matrices, so a float32 copy costs nothing.
func vector(t *safetensors.Tensor) ([]float32, error) {
	n := t.NumElements()
	out := make([]float32, n)
	switch t.DType {
	case safetensors.F32:
		copy(out, asF32(t.Data, n))
	case safetensors.BF16:
		for i, h := range asU16(t.Data, n) {
			out[i] = bf16(h)
		}
	case safetensors.F16:
		for i, h := range asU16(t.Data, n) {
			out[i] = f16(h)
		}
	case safetensors.F64:
		for i := range out {
			var u uint64
			for k := 0; k < 8; k++ {
				u |= uint64(t.Data[8*i+k]) << (8 * k)
			}
			out[i] = float32(math.Float64frombits(u))
		}
	default:
		return nil, fmt.Errorf("tensor %s: dtype %s: %w", t.Name, t.DType, ErrUnsupported)
	}
	return out, nil
}

// Int64s reads an I64 (or I32) tensor, e.g. token ids in a reference file.
func Int64s(t *safetensors.Tensor) ([]int64, error) {
	n := t.NumElements()
	out := make([]int64, n)
	switch t.DType {
	case safetensors.I64:
		for i := range out {
			var u uint64
			for k := 0; k < 8; k++ {
				u |= uint64(t.Data[8*i+k]) << (8 * k)
			}
			out[i] = int64(u)
		}
	case safetensors.I32:
		for i := range out {
			out[i] = int64(int32(uint32(t.Data[4*i]) | uint32(t.Data[4*i+1])<<8 | uint32(t.Data[4*i+2])<<16 | uint32(t.Data[4*i+3])<<24))
		}
	default:
		return nil, fmt.Errorf("tensor %s: want integers, have %s", t.Name, t.DType)
	}
	return out, nil
}

// Float32s reads a float tensor of any stored dtype as float32.
func Float32s(t *safetensors.Tensor) ([]float32, error) { return vector(t) }

// weightLoader resolves tensor names in a checkpoint, trying prefixes, and
// checks shapes, so that a missing or misshapen weight is a clear error.
type weightLoader struct {
	ck       *safetensors.Checkpoint
	prefixes []string // tried in order, e.g. "backbone.", "model."
	params   int64
	quantize bool  // matrices to Q8
	dot      bool  // bf16 matrices in pair panels (Options.Matmul "bf16")
	saved    int64 // bytes quantization saved
}

// weightBytes is the size of the weights as the model holds them.
func (l *weightLoader) weightBytes() int64 { return l.ck.Bytes() - l.saved }

func (l *weightLoader) find(name string) (*safetensors.Tensor, string) {
	for _, p := range l.prefixes {
		if t, ok := l.ck.Tensor(p + name); ok {
			return t, p + name
		}
	}
	return nil, ""
}

func (l *weightLoader) has(name string) bool {
	t, _ := l.find(name)
	return t != nil
}

func checkShape(t *safetensors.Tensor, shape ...int) error {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if t.NumElements() != n {
		return fmt.Errorf("tensor %s: shape %v, want %v", t.Name, t.Shape, shape)
	}
	return nil
}

// mat loads a [rows, cols] matrix.
func (l *weightLoader) mat(name string, rows, cols int) (*Mat, error) {
	t, _ := l.find(name)
	if t == nil {
		return nil, fmt.Errorf("missing tensor %q (tried prefixes %q)", name, l.prefixes)
	}
	if len(t.Shape) != 2 || t.Shape[0] != rows || t.Shape[1] != cols {
		return nil, fmt.Errorf("tensor %s: shape %v, want [%d %d]", t.Name, t.Shape, rows, cols)
	}
	l.params += int64(rows) * int64(cols)
	m, err := newMat(t)
	if err != nil || !l.quantize {
		return m, err
	}
	q := quantizeQ8(m)
	l.saved += m.Bytes() - q.Bytes()
	return q, nil
}

// pack lays out a linear layer's matrix for the kernels (pack.go).
func (l *weightLoader) pack(m *Mat) {
	if l.dot {
		m.packPairs()
	} else {
		m.pack()
	}
}

// vec loads a parameter with the given shape as float32.
func (l *weightLoader) vec(name string, shape ...int) ([]float32, error) {
	t, _ := l.find(name)
	if t == nil {
		return nil, fmt.Errorf("missing tensor %q (tried prefixes %q)", name, l.prefixes)
	}
	if err := checkShape(t, shape...); err != nil {
		return nil, err
	}
	l.params += int64(t.NumElements())
	return vector(t)
}

// optVec loads a parameter if present (nil, nil if absent).
func (l *weightLoader) optVec(name string, shape ...int) ([]float32, error) {
	if !l.has(name) {
		return nil, nil
	}
	return l.vec(name, shape...)
}

// linear loads name.weight [out, in] and name.bias [out] (the bias when
// present, or required when bias is true).
func (l *weightLoader) linear(name string, out, in int, bias bool) (Linear, error) {
	w, err := l.mat(name+".weight", out, in)
	if err != nil {
		return Linear{}, err
	}
	l.pack(w)
	lin := Linear{W: w}
	if bias || l.has(name+".bias") {
		lin.B, err = l.vec(name+".bias", out)
		if err != nil {
			return Linear{}, err
		}
	}
	return lin, nil
}
