package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/crucible-ml/crucible/engine"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// TestWriteRead: every value type and tensor survives a write and a read.
func TestWriteRead(t *testing.T) {
	kvs := []KV{{"a.u8", uint8(7)}, {"a.i8", int8(-7)}, {"a.u16", uint16(700)}, {"a.i16", int16(-700)},
		{"a.u32", uint32(70000)}, {"a.i32", int32(-70000)}, {"a.f32", float32(1.5)}, {"a.bool", true},
		{"a.str", "héllo"}, {"a.u64", uint64(1 << 40)}, {"a.i64", int64(-1 << 40)}, {"a.f64", 2.25},
		{"a.strs", []string{"x", "", "yz"}}, {"a.i32s", []int32{1, -2, 3}}, {"a.f32s", []float32{0.5, -1}}}
	ts := []Tensor{{Name: "w", Type: F32, Dims: []uint64{3, 2}, Data: make([]byte, 24)},
		{Name: "b", Type: BF16, Dims: []uint64{5}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}}
	ts[0].Data[5] = 9
	var buf bytes.Buffer
	if err := Write(&buf, kvs, ts); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		if got := f.Value(kv.Key); fmt.Sprint(got) != fmt.Sprint(kv.Value) || fmt.Sprintf("%T", got) != fmt.Sprintf("%T", kv.Value) {
			t.Errorf("%s: %T %v, want %T %v", kv.Key, got, got, kv.Value, kv.Value)
		}
	}
	for _, want := range ts {
		got, ok := f.Tensor(want.Name)
		if !ok || got.Type != want.Type || !slices.Equal(got.Dims, want.Dims) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %s: %+v", want.Name, got)
		}
	}
	// Truncations and corruptions are errors, not panics.
	b := buf.Bytes()
	for n := 0; n < len(b); n += 7 {
		Parse(b[:n])
	}
}

func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, []KV{{"k", "v"}, {"n", []int32{1}}}, []Tensor{{Name: "t", Type: F32, Dims: []uint64{2}, Data: make([]byte, 8)}})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) { Parse(b) })
}

// TestExportRoundTrip exports each fixture architecture, reads the file
// back and checks llama.cpp's names, shapes, metadata and the values.
func TestExportRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name, arch string
		tensors    []string
	}{
		{"llama_tiny", "llama", []string{"token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.attn_output.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "output_norm.weight"}},
		{"llama3_rope_scaling", "llama", []string{"rope_freqs.weight"}},
		{"qwen2_tiny_bf16", "qwen2", []string{"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias"}},
		{"mamba2_tiny", "mamba2", []string{"blk.0.ssm_in.weight", "blk.0.ssm_conv1d.weight", "blk.0.ssm_dt.bias", "blk.0.ssm_a", "blk.0.ssm_d", "blk.0.ssm_norm.weight", "blk.0.ssm_out.weight"}},
		{"nemotron_h_tiny", "nemotron_h", []string{"blk.0.ssm_in.weight", "blk.1.ffn_up.weight", "blk.1.ffn_down.weight", "blk.3.attn_q.weight", "blk.3.attn_output.weight", "output.weight"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join("../testdata/models", c.name)
			if _, err := os.Stat(dir); err != nil {
				t.Skip("fixture missing")
			}
			out := filepath.Join(t.TempDir(), "m.gguf")
			if err := Export(dir, out); err != nil {
				t.Fatal(err)
			}
			f, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := engine.LoadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			if a := f.String("general.architecture"); a != c.arch {
				t.Fatalf("architecture %q, want %q", a, c.arch)
			}
			if v := f.Value(c.arch + ".block_count"); v != uint32(cfg.NumLayers) {
				t.Errorf("block_count %v", v)
			}
			if v := f.Value(c.arch + ".embedding_length"); v != uint32(cfg.HiddenSize) {
				t.Errorf("embedding_length %v", v)
			}
			for _, name := range c.tensors {
				if _, ok := f.Tensor(name); !ok {
					t.Errorf("no tensor %s", name)
				}
			}
			ck, err := safetensors.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			hf := func(name string) *safetensors.Tensor {
				for _, p := range []string{"model.", "backbone.", ""} {
					if tt, ok := ck.Tensor(p + name); ok {
						return tt
					}
				}
				t.Fatalf("no HF tensor %s", name)
				return nil
			}
			// The embedding: same bytes, dims reversed.
			emb, _ := f.Tensor("token_embd.weight")
			src := hf(map[bool]string{true: "embed_tokens.weight", false: "embeddings.weight"}[c.arch == "llama" || c.arch == "qwen2"])
			if !bytes.Equal(emb.Data, src.Data) || emb.Dims[0] != uint64(src.Shape[1]) || emb.Dims[1] != uint64(src.Shape[0]) {
				t.Errorf("token_embd differs from %s", src.Name)
			}
			switch c.arch {
			case "llama":
				// q rows are permuted to adjacent-pair RoPE: row h*hd+2i+j = HF row h*hd+j*hd/2+i.
				q, _ := f.Tensor("blk.0.attn_q.weight")
				hq := hf("layers.0.self_attn.q_proj.weight")
				rb := hq.Shape[1] * hq.DType.Size()
				hd := cfg.HeadDim
				for r := 0; r < hq.Shape[0]; r++ {
					h, i, j := r/hd, (r%hd)/2, r%2
					s := h*hd + j*hd/2 + i
					if !bytes.Equal(q.Data[r*rb:(r+1)*rb], hq.Data[s*rb:(s+1)*rb]) {
						t.Fatalf("attn_q row %d is not HF row %d", r, s)
					}
				}
			case "qwen2":
				q, _ := f.Tensor("blk.0.attn_q.weight")
				if !bytes.Equal(q.Data, hf("layers.0.self_attn.q_proj.weight").Data) {
					t.Error("qwen2 attn_q must not be permuted")
				}
				if m := f.String("tokenizer.ggml.model"); m != "none" || f.Value("tokenizer.ggml.tokens") != nil {
					t.Errorf("no tokenizer.json: tokenizer.ggml.model %q (want none), tokens %v", m, f.Value("tokenizer.ggml.tokens") != nil)
				}
			case "mamba2", "nemotron_h":
				a, _ := f.Tensor("blk.0.ssm_a")
				alog, _ := engine.Float32s(hf("layers.0.mixer.A_log"))
				for i, v := range alog {
					got := math.Float32frombits(binary.LittleEndian.Uint32(a.Data[4*i:]))
					if got != -float32(math.Exp(float64(v))) {
						t.Fatalf("ssm_a[%d] = %v, want -exp(%v)", i, got, v)
					}
				}
				if !slices.Equal(a.Dims, []uint64{1, uint64(cfg.MambaHeads)}) {
					t.Errorf("ssm_a dims %v", a.Dims)
				}
				conv, _ := f.Tensor("blk.0.ssm_conv1d.weight")
				if !slices.Equal(conv.Dims, []uint64{uint64(cfg.ConvKernel), uint64(cfg.ConvDim())}) {
					t.Errorf("ssm_conv1d dims %v", conv.Dims)
				}
				if v := f.Value(c.arch + ".ssm.time_step_rank"); v != uint32(cfg.MambaHeads) {
					t.Errorf("time_step_rank %v", v)
				}
				if c.arch == "nemotron_h" {
					ff, _ := f.Value("nemotron_h.feed_forward_length").([]int32)
					kv, _ := f.Value("nemotron_h.attention.head_count_kv").([]int32)
					for l := 0; l < cfg.NumLayers; l++ {
						wantFF, wantKV := int32(0), int32(0)
						switch cfg.Pattern[l] {
						case engine.LayerMLP:
							wantFF = int32(cfg.IntermediateSize)
						case engine.LayerAttention:
							wantKV = int32(cfg.NumKVHeads)
						}
						if len(ff) != cfg.NumLayers || len(kv) != cfg.NumLayers || ff[l] != wantFF || kv[l] != wantKV {
							t.Fatalf("layer %d (%c): ff %v kv %v", l, cfg.Pattern[l], ff, kv)
						}
					}
				}
			}
		})
	}
}

// TestExportTokenizer: a folder with tokenizer.json gets llama.cpp's
// gpt2 tokenizer metadata.
func TestExportTokenizer(t *testing.T) {
	dir := t.TempDir()
	for _, src := range []string{"../testdata/models/qwen2_tiny_bf16", "../tokenizer/testdata/bpe_qwen2"} {
		es, _ := os.ReadDir(src)
		for _, e := range es {
			b, _ := os.ReadFile(filepath.Join(src, e.Name()))
			os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
		}
	}
	out := filepath.Join(t.TempDir(), "m.gguf")
	if err := Export(dir, out); err != nil {
		t.Fatal(err)
	}
	f, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := f.Value("tokenizer.ggml.tokens").([]string)
	types, _ := f.Value("tokenizer.ggml.token_type").([]int32)
	merges, _ := f.Value("tokenizer.ggml.merges").([]string)
	if f.String("tokenizer.ggml.model") != "gpt2" || f.String("tokenizer.ggml.pre") != "qwen2" || len(toks) != 512 || len(types) != 512 || len(merges) == 0 {
		t.Fatalf("tokenizer metadata: model %q pre %q, %d tokens, %d types, %d merges", f.String("tokenizer.ggml.model"),
			f.String("tokenizer.ggml.pre"), len(toks), len(types), len(merges))
	}
	if toks[0] != "<|endoftext|>" || types[0] != 3 {
		t.Errorf("token 0 %q type %d", toks[0], types[0])
	}
	if f.String("tokenizer.chat_template") == "" {
		t.Error("no chat template")
	}
}
