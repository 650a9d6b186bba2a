package engine

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// TestFP8ScaleLayouts dequantizes one random FP8 matrix under each
// published scale layout and compares with q·s computed here.
func TestFP8ScaleLayouts(t *testing.T) {
	const rows, cols = 200, 300 // not multiples of 128: partial blocks
	r := rand.New(rand.NewPCG(3, 4))
	q := make([]byte, rows*cols)
	for i := range q {
		q[i] = byte(r.IntN(256))
		if q[i]&0x7c == 0x7c { // no NaN (E4M3, E5M2) or Inf (E5M2) in a weight
			q[i] = 0x10
		}
	}
	rnd := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = 0.001 + r.Float32()/100
		}
		return s
	}
	perTensor, perRow, block, block64 := rnd(1), rnd(rows), rnd(2*3), rnd(4*5)
	tests := []struct {
		name      string
		dtype     safetensors.DType
		scaleName string
		shape     []int
		scale     []float32
		want      func(r, c int) float32
		wantErr   string
	}{
		{"per-tensor scalar", safetensors.F8E4M3, "weight_scale", []int{}, perTensor, func(int, int) float32 { return perTensor[0] }, ""},
		{"per-tensor [1]", safetensors.F8E4M3, "weight_scale", []int{1}, perTensor, func(int, int) float32 { return perTensor[0] }, ""},
		{"per-channel [out]", safetensors.F8E4M3, "weight_scale", []int{rows}, perRow, func(r, _ int) float32 { return perRow[r] }, ""},
		{"per-channel [out,1]", safetensors.F8E4M3, "weight_scale", []int{rows, 1}, perRow, func(r, _ int) float32 { return perRow[r] }, ""},
		{"block 128 scale_inv", safetensors.F8E4M3, "weight_scale_inv", []int{2, 3}, block, func(r, c int) float32 { return block[(r/128)*3+c/128] }, ""},
		{"block 50x60", safetensors.F8E4M3, "weight_scale", []int{4, 5}, block64, func(r, c int) float32 { return block64[(r/50)*5+c/60] }, ""},
		{"E5M2 per-channel", safetensors.F8E5M2, "weight_scale", []int{rows}, perRow, func(r, _ int) float32 { return perRow[r] }, ""},
		{"no scale", safetensors.F8E4M3, "other", []int{1}, perTensor, nil, "without"},
		{"bad shape", safetensors.F8E4M3, "weight_scale", []int{7}, rnd(7), nil, "fits no"},
		{"NaN scale", safetensors.F8E4M3, "weight_scale", []int{1}, []float32{float32(math.NaN())}, nil, "non-finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck, err := safetensors.FromTensors([]safetensors.Tensor{
				{Name: "l.weight", DType: tt.dtype, Shape: []int{rows, cols}, Data: q},
				{Name: "l." + tt.scaleName, DType: safetensors.F32, Shape: tt.shape, Data: f32Bytes(tt.scale)},
			})
			if err != nil {
				t.Fatal(err)
			}
			l := &weightLoader{ck: ck, prefixes: []string{""}}
			m, err := l.mat("l.weight", rows, cols)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.DType != kernel.BF16 {
				t.Fatalf("dtype %s, want BF16", m.DType)
			}
			dec := DecodeE4M3
			if tt.dtype == safetensors.F8E5M2 {
				dec = DecodeE5M2
			}
			row := make([]float32, cols)
			for i := 0; i < rows; i++ {
				m.Row(i, row)
				for c, got := range row {
					want := kernel.RoundBF16(dec(q[i*cols+c]) * tt.want(i, c))
					if got != want && !(math.IsInf(float64(want), 0)) {
						t.Fatalf("[%d %d] = %v, want %v", i, c, got, want)
					}
				}
			}
		})
	}
}
