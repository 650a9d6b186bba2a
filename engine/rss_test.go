package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// writeSyntheticLlama writes a random bf16 Llama checkpoint of the given
// shape into dir and returns the weight file's size.
func writeSyntheticLlama(t testing.TB, dir string, vocab, hidden, ff, layers int) int64 {
	t.Helper()
	cfg := fmt.Sprintf(`{"architectures": ["LlamaForCausalLM"], "vocab_size": %d, "hidden_size": %d,
		"intermediate_size": %d, "num_hidden_layers": %d, "num_attention_heads": %d, "num_key_value_heads": %d,
		"rms_norm_eps": 1e-5, "rope_theta": 10000, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}`,
		vocab, hidden, ff, layers, hidden/64, hidden/128)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	bf := func(name string, shape ...int) safetensors.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			v := float32(rng.NormFloat64() * 0.05)
			if strings.Contains(name, "norm") {
				v = 1
			}
			binary.LittleEndian.PutUint16(data[2*i:], uint16(math.Float32bits(v)>>16))
		}
		return safetensors.Tensor{Name: name, DType: safetensors.BF16, Shape: shape, Data: data}
	}
	kv := hidden / 2
	ts := []safetensors.Tensor{bf("model.embed_tokens.weight", vocab, hidden), bf("lm_head.weight", vocab, hidden),
		bf("model.norm.weight", hidden)}
	for i := 0; i < layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts, bf(p+"input_layernorm.weight", hidden), bf(p+"post_attention_layernorm.weight", hidden),
			bf(p+"self_attn.q_proj.weight", hidden, hidden), bf(p+"self_attn.k_proj.weight", kv, hidden),
			bf(p+"self_attn.v_proj.weight", kv, hidden), bf(p+"self_attn.o_proj.weight", hidden, hidden),
			bf(p+"mlp.gate_proj.weight", ff, hidden), bf(p+"mlp.up_proj.weight", ff, hidden),
			bf(p+"mlp.down_proj.weight", hidden, ff))
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return int64(buf.Len())
}

// rss reads the resident set size of this process in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestBF16IsMapped loads a 60 MB bf16 checkpoint, runs a token through all
// of it, and checks that resident memory grew by about the file size (the
// mapped pages), not twice or three times it (a float32 copy).
func TestBF16IsMapped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("measures /proc/self/status")
	}
	dir := t.TempDir()
	size := writeSyntheticLlama(t, dir, 8192, 1024, 2816, 1)
	runtime.GC()
	debug.FreeOSMemory()
	before := rss(t)
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st := m.newState(16)
	logits := make([]float32, m.Config().VocabSize)
	m.forward([]state{st}, []int{3}, [][]float32{logits}) // touches every weight row
	row := make([]float32, m.Config().HiddenSize)
	for i := 0; i < m.Config().VocabSize; i++ {
		m.(*llama).embed.Row(i, row) // and every embedding row
	}
	runtime.GC()
	after := rss(t)
	grew := after - before
	t.Logf("weights %.1f MB; resident memory grew %.1f MB (%.2fx)", float64(size)/1e6, float64(grew)/1e6, float64(grew)/float64(size))
	if float64(grew) > 1.3*float64(size) {
		t.Errorf("resident memory grew %d bytes for a %d-byte bf16 checkpoint: weights were copied", grew, size)
	}
	if info := m.Info(); info.WeightBytes < size-4096 {
		t.Errorf("Info.WeightBytes %d for a file of %d", info.WeightBytes, size)
	}
}
