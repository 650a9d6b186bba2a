package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// FP8 checkpoints store a linear layer's weight as F8_E4M3 (or F8_E5M2)
// beside a float scale tensor, in one of the published layouts, all of
// which dequantize as w = q · s:
//
//	NAME.weight_scale      [] or [1]              per tensor (ModelOpt FP8, compressed-tensors "tensor")
//	NAME.weight_scale      [out] or [out, 1]      per output channel (ModelOpt FP8_PER_CHANNEL_PER_TOKEN,
//	                                              compressed-tensors "channel")
//	NAME.weight_scale      [⌈out/b⌉, ⌈in/b⌉]      per b×b block (compressed-tensors "block", ModelOpt FP8_PB_WO)
//	NAME.weight_scale_inv  [⌈out/b⌉, ⌈in/b⌉]      per b×b block (DeepSeek-V3 / Qwen3 FP8; multiplied, despite the name)
//
// The block size b is 128, or whatever divides the matrix into the scale's
// shape. NAME.input_scale (a static activation scale) is not needed: the
// engine computes activations in float32, so an FP8 checkpoint runs as its
// weights dequantized to bfloat16 (rounded to nearest even; an FP8 value
// times a float32 scale keeps about 8 significant bits in bf16).

// fp8BlockSize is the usual block of block-scaled FP8 checkpoints.
const fp8BlockSize = 128

// fp8Scale reads the scale of an FP8 weight t ([rows, cols]) and returns a
// function giving the scale of element (r, c).
func fp8Scale(ck *safetensors.Checkpoint, t *safetensors.Tensor, rows, cols int) (func(r, c int) float32, error) {
	base := strings.TrimSuffix(t.Name, "weight")
	st, ok := ck.Tensor(base + "weight_scale")
	if !ok {
		if st, ok = ck.Tensor(base + "weight_scale_inv"); !ok {
			return nil, fmt.Errorf("tensor %s: %s weights without %sweight_scale or %sweight_scale_inv", t.Name, t.DType, base, base)
		}
	}
	s, err := Float32s(st)
	if err != nil {
		return nil, fmt.Errorf("scale %s: %w", st.Name, err)
	}
	for _, v := range s {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("scale %s: non-finite value %v", st.Name, v)
		}
	}
	switch n := len(s); {
	case n == 1:
		return func(int, int) float32 { return s[0] }, nil
	case n == rows && (len(st.Shape) == 1 || len(st.Shape) == 2 && st.Shape[1] == 1):
		return func(r, _ int) float32 { return s[r] }, nil
	case len(st.Shape) == 2:
		s0, s1 := st.Shape[0], st.Shape[1]
		b0, b1 := fp8BlockSize, fp8BlockSize
		if ceilDiv(rows, b0) != s0 || ceilDiv(cols, b1) != s1 {
			if rows%s0 != 0 || cols%s1 != 0 {
				return nil, fmt.Errorf("scale %s: shape %v fits no block layout of a [%d %d] weight", st.Name, st.Shape, rows, cols)
			}
			b0, b1 = rows/s0, cols/s1
		}
		return func(r, c int) float32 { return s[(r/b0)*s1+c/b1] }, nil
	}
	return nil, fmt.Errorf("scale %s: shape %v fits no scale layout of a [%d %d] weight", st.Name, st.Shape, rows, cols)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// fp8Mat dequantizes the FP8 matrix t ([rows, cols]) with its scale into a
// bfloat16 matrix.
func (l *weightLoader) fp8Mat(t *safetensors.Tensor, rows, cols int) (*kernel.Mat, error) {
	scale, err := fp8Scale(l.ck, t, rows, cols)
	if err != nil {
		return nil, err
	}
	dec := DecodeE4M3
	if t.DType == safetensors.F8E5M2 {
		dec = DecodeE5M2
	}
	out := make([]byte, 2*rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			v := dec(t.Data[r*cols+c]) * scale(r, c)
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("tensor %s: element [%d %d] is %v", t.Name, r, c, v)
			}
			binary.LittleEndian.PutUint16(out[2*(r*cols+c):], bf16Round(v))
		}
	}
	l.saved -= int64(len(out) - len(t.Data)) // held as bf16, twice the file's bytes
	return kernel.NewMat(rows, cols, kernel.BF16, out), nil
}
