package engine

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// writePublishedFP8 writes a copy of the model in dir with its projection
// weights in E4M3 under a published layout: "block" (DeepSeek-V3 / Qwen3
// FP8: weight_scale_inv per 128×128 block) or "compressed-tensors"
// (weight_scale [out, 1] and a static input_scale).
func writePublishedFP8(t *testing.T, dir, layout string) string {
	t.Helper()
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	var out []safetensors.Tensor
	for _, name := range ck.Names() {
		src, _ := ck.Tensor(name)
		if !isProjection(name, src) {
			out = append(out, *src)
			continue
		}
		w, err := Float32s(src)
		if err != nil {
			t.Fatal(err)
		}
		rows, cols := src.Shape[0], src.Shape[1]
		b0, b1 := 1, cols // per-row scales for compressed-tensors
		if layout == "block" {
			b0, b1 = 128, 128
		}
		s0, s1 := ceilDiv(rows, b0), ceilDiv(cols, b1)
		scale := make([]float32, s0*s1)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				i := (r/b0)*s1 + c/b1
				scale[i] = max(scale[i], float32(math.Abs(float64(w[r*cols+c]))))
			}
		}
		for i := range scale {
			scale[i] = fp8ScaleOf(scale[i])
		}
		q := make([]byte, rows*cols)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				q[r*cols+c] = EncodeE4M3(w[r*cols+c]/scale[(r/b0)*s1+c/b1], true)
			}
		}
		base := strings.TrimSuffix(name, "weight")
		out = append(out, safetensors.Tensor{Name: name, DType: safetensors.F8E4M3, Shape: src.Shape, Data: q})
		if layout == "block" {
			out = append(out, safetensors.Tensor{Name: base + "weight_scale_inv", DType: safetensors.F32, Shape: []int{s0, s1}, Data: f32Bytes(scale)})
		} else {
			out = append(out, safetensors.Tensor{Name: base + "weight_scale", DType: safetensors.F32, Shape: []int{rows, 1}, Data: f32Bytes(scale)},
				safetensors.Tensor{Name: base + "input_scale", DType: safetensors.F32, Shape: []int{1}, Data: f32Bytes([]float32{0.02})})
		}
	}
	outDir := t.TempDir()
	f, err := os.Create(filepath.Join(outDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(f, out, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	qc := map[string]any{"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": []int{128, 128}}
	if layout != "block" {
		qc = map[string]any{"quant_method": "compressed-tensors", "format": "float-quantized",
			"config_groups": map[string]any{"group_0": map[string]any{"targets": []string{"Linear"},
				"weights": map[string]any{"num_bits": 8, "type": "float", "strategy": "channel"}}}}
	}
	patched, err := patchConfigJSON(raw, map[string]any{"quantization_config": qc})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outDir, "config.json"), patched, 0o644)
	return outDir
}

// TestLoadPublishedFP8 loads FP8 checkpoints in the published block and
// compressed-tensors layouts and compares their logits with the source.
func TestLoadPublishedFP8(t *testing.T) {
	for _, name := range []string{"nemotron_h_wide_bf16", "qwen2_tiny_bf16"} {
		for _, layout := range []string{"block", "compressed-tensors"} {
			t.Run(name+"/"+layout, func(t *testing.T) {
				dir := sharedFixture(t, name)
				src, err := Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				q, err := Load(writePublishedFP8(t, dir, layout))
				if err != nil {
					t.Fatal(err)
				}
				defer q.Close()
				st, err := CompareLogits(context.Background(), src, q, randomSeqs(2, 2, 24, src.Config().VocabSize))
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s %s: rel err %.4f, KL %.2e", name, layout, st.RelErr, st.MeanKL)
				if st.RelErr > fp8LogitRelTol || st.MeanKL > fp8KLTol {
					t.Errorf("rel err %v, KL %v beyond %v / %v", st.RelErr, st.MeanKL, fp8LogitRelTol, fp8KLTol)
				}
			})
		}
	}
}
