package engine

import (
	"fmt"
	"math"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// newMat views t as a matrix (see kernel.NewMat: the tensor's bytes are
// aliased, or copied once when misaligned, in the stored dtype).
func newMat(t *safetensors.Tensor) (*kernel.Mat, error) {
	var rows, cols int
	switch len(t.Shape) {
	case 1:
		rows, cols = 1, t.Shape[0]
	case 2:
		rows, cols = t.Shape[0], t.Shape[1]
	default:
		return nil, fmt.Errorf("tensor %s: want a matrix, have shape %v", t.Name, t.Shape)
	}
	switch t.DType {
	case safetensors.F32, safetensors.BF16, safetensors.F16:
	default:
		return nil, fmt.Errorf("tensor %s: dtype %s: %w", t.Name, t.DType, ErrUnsupported)
	}
	return kernel.NewMat(rows, cols, kernel.DType(t.DType), t.Data), nil
}

// vector reads a 1-D (or any-shaped) small parameter as float32. These
// (norm weights, biases, A_log, D, conv kernels) are tiny next to the
// matrices, so a float32 copy costs nothing.
func vector(t *safetensors.Tensor) ([]float32, error) {
	n := t.NumElements()
	out := make([]float32, n)
	switch t.DType {
	case safetensors.F32, safetensors.BF16, safetensors.F16:
		// As a one-row matrix: the kernels' conversion to float32.
		kernel.NewMat(1, n, kernel.DType(t.DType), t.Data).Row(0, out)
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
	// src is the mapped tensor behind each matrix still aliasing it, so
	// that pack releases the tensor's pages once the panels hold a copy.
	src map[*kernel.Mat]*safetensors.Tensor
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
func (l *weightLoader) mat(name string, rows, cols int) (*kernel.Mat, error) {
	t, _ := l.find(name)
	if t == nil {
		return nil, fmt.Errorf("missing tensor %q (tried prefixes %q)", name, l.prefixes)
	}
	if len(t.Shape) != 2 || t.Shape[0] != rows || t.Shape[1] != cols {
		return nil, fmt.Errorf("tensor %s: shape %v, want [%d %d]", t.Name, t.Shape, rows, cols)
	}
	l.params += int64(rows) * int64(cols)
	var m *kernel.Mat
	var err error
	if t.DType.IsFP8() {
		m, err = l.fp8Mat(t, rows, cols) // fp8load.go: dequantized with its scale
	} else {
		m, err = newMat(t)
	}
	if err != nil {
		return nil, err
	}
	if size := t.DType.Size(); size > 0 && !t.DType.IsFP8() {
		// Packing or quantizing releases the file's pages as it goes.
		m.Released = func(r0, r1 int) { l.ck.EvictRange(t, r0*cols*size, r1*cols*size) }
	}
	if l.quantize {
		if q := kernel.QuantizeQ8(m); q != m {
			l.saved += m.Bytes() - q.Bytes()
			l.ck.EvictTensor(t) // q is a copy
			return q, nil
		}
	}
	if l.src == nil {
		l.src = map[*kernel.Mat]*safetensors.Tensor{}
	}
	l.src[m] = t
	return m, nil
}

// pack lays out a linear layer's matrix for the kernels (in pair panels
// for bf16 products), then releases the mapped pages it was copied from:
// loading holds the file's pages of one matrix at a time beside the
// packed ones, never the whole file.
func (l *weightLoader) pack(m *kernel.Mat) {
	if l.dot {
		m.PackPairs()
	} else {
		m.Pack()
	}
	m.Released = nil
	if t := l.src[m]; t != nil && m.Packed() {
		l.ck.EvictTensor(t)
		delete(l.src, m)
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
	v, err := vector(t)
	l.ck.EvictTensor(t) // v is a copy
	return v, err
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
func (l *weightLoader) linear(name string, out, in int, bias bool) (kernel.Linear, error) {
	w, err := l.mat(name+".weight", out, in)
	if err != nil {
		return kernel.Linear{}, err
	}
	l.pack(w)
	lin := kernel.Linear{W: w}
	if bias || l.has(name+".bias") {
		lin.B, err = l.vec(name+".bias", out)
		if err != nil {
			return kernel.Linear{}, err
		}
	}
	return lin, nil
}
