package gguf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/crucible-ml/crucible/engine"
)

// copyDir copies the files of each src folder into dst.
func copyDir(t *testing.T, dst string, srcs ...string) {
	t.Helper()
	for _, src := range srcs {
		es, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestExportSentencePieceTokenizer: a SentencePiece-style BPE with
// byte_fallback (the TinyLlama-shaped fixture: Llama 2's vocabulary
// layout) exports as llama.cpp's "llama" tokenizer: tokens, a score per
// token that ranks merges first to last, byte/control/unknown types, no
// merges list, BOS added and the "▁" prefix on.
func TestExportSentencePieceTokenizer(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, dir, "../testdata/models/llama_tiny", "../tokenizer/testdata/tinyllama")
	out := filepath.Join(t.TempDir(), "m.gguf")
	if err := Export(dir, out); err != nil {
		t.Fatal(err)
	}
	f, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := f.Value("tokenizer.ggml.tokens").([]string)
	scores, _ := f.Value("tokenizer.ggml.scores").([]float32)
	types, _ := f.Value("tokenizer.ggml.token_type").([]int32)
	const n = 512 // llama_tiny's vocab_size: the first 512 of the fixture's tokens
	if f.String("tokenizer.ggml.model") != "llama" || len(toks) != n || len(scores) != n || len(types) != n {
		t.Fatalf("model %q, %d tokens, %d scores, %d types", f.String("tokenizer.ggml.model"), len(toks), len(scores), len(types))
	}
	if f.Value("tokenizer.ggml.merges") != nil || f.Value("tokenizer.ggml.pre") != nil {
		t.Error("an SPM vocabulary with merges or a pre-tokenizer name")
	}
	want := map[int]struct {
		tok string
		typ int32
	}{0: {"<unk>", tokUnknown}, 1: {"<s>", tokControl}, 2: {"</s>", tokControl}, 3: {"<0x00>", tokByte}, 258: {"<0xFF>", tokByte}}
	for id, w := range want {
		if toks[id] != w.tok || types[id] != w.typ {
			t.Errorf("token %d: %q type %d, want %q type %d", id, toks[id], types[id], w.tok, w.typ)
		}
	}
	if types[259] != tokNormal {
		t.Errorf("token 259 %q: type %d", toks[259], types[259])
	}
	// The first merges of the fixture are "▁ t", "i n", "e r": their
	// tokens score 0, -1, -2, above every token no merge makes.
	id := map[string]int{}
	for i, tok := range toks {
		id[tok] = i
	}
	for r, tok := range []string{"▁t", "in", "er"} {
		i, ok := id[tok]
		if !ok || scores[i] != -float32(r) {
			t.Errorf("merge %d %q: id %d, score %v", r, tok, i, scores[i])
		}
		if scores[i] <= scores[3] || scores[i] <= scores[0] {
			t.Errorf("merge %d %q scores %v, not above a byte token (%v)", r, tok, scores[i], scores[3])
		}
	}
	if u, _ := f.Value("tokenizer.ggml.unknown_token_id").(uint32); u != 0 || f.Value("tokenizer.ggml.unknown_token_id") == nil {
		t.Errorf("unknown_token_id %v", f.Value("tokenizer.ggml.unknown_token_id"))
	}
	if v, _ := f.Value("tokenizer.ggml.bos_token_id").(uint32); v != 1 {
		t.Errorf("bos_token_id %v", f.Value("tokenizer.ggml.bos_token_id"))
	}
	if v, _ := f.Value("tokenizer.ggml.eos_token_id").(uint32); v != 2 {
		t.Errorf("eos_token_id %v", f.Value("tokenizer.ggml.eos_token_id"))
	}
	if v, _ := f.Value("tokenizer.ggml.add_bos_token").(bool); !v {
		t.Error("add_bos_token false")
	}
	if v, ok := f.Value("tokenizer.ggml.add_space_prefix").(bool); !ok || !v {
		t.Errorf("add_space_prefix %v", f.Value("tokenizer.ggml.add_space_prefix"))
	}
}

// TestExportRealSentencePieceTokenizer exports Mistral-7B's own
// tokenizer.json (from ../shared; skipped when absent unless CI=true) over
// a tiny model of its vocabulary size: all 32000 tokens, 256 byte tokens.
func TestExportRealSentencePieceTokenizer(t *testing.T) {
	src := "../../../shared/fixtures/real/mistral"
	if _, err := os.Stat(filepath.Join(src, "tokenizer.json")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("no ../shared fixtures")
	}
	cfg, err := engine.LoadConfig("../testdata/models/llama_tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.VocabSize = 32000 // the vocabulary's: only the tokenizer is exported here
	x := &exporter{cfg: cfg, arch: archNames[cfg.Architecture]}
	if err := x.tokenizer(src); err != nil {
		t.Fatal(err)
	}
	kv := map[string]any{}
	for _, e := range x.kvs {
		kv[e.Key] = e.Value
	}
	toks, _ := kv["tokenizer.ggml.tokens"].([]string)
	types, _ := kv["tokenizer.ggml.token_type"].([]int32)
	if kv["tokenizer.ggml.model"] != "llama" || len(toks) != 32000 {
		t.Fatalf("model %v, %d tokens", kv["tokenizer.ggml.model"], len(toks))
	}
	bytesN := 0
	for _, ty := range types {
		if ty == tokByte {
			bytesN++
		}
	}
	if bytesN != 256 || toks[0] != "<unk>" || types[0] != tokUnknown || toks[1] != "<s>" || types[1] != tokControl {
		t.Errorf("%d byte tokens; token 0 %q type %d, token 1 %q type %d", bytesN, toks[0], types[0], toks[1], types[1])
	}
}
