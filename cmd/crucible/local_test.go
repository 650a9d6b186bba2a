package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/crucible-ml/crucible/record"
)

// tinyModel assembles a model folder from the tiny Llama weights and the
// Qwen2 fixture tokenizer (same 512-token vocabulary). (The tiny Qwen2
// weights have tied embeddings, and at random they repeat the prompt's last
// token at any temperature: useless for testing sampling.)
func tinyModel(t *testing.T) string {
	dir := t.TempDir()
	for _, src := range []string{filepath.Join("..", "..", "engine", "testdata", "models", "llama_tiny"), filepath.Join("..", "..", "engine", "tokenizer", "testdata", "bpe_qwen2")} {
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() == "reference.safetensors" || e.Name() == "cases.json" {
				continue
			}
			in, _ := os.Open(filepath.Join(src, e.Name()))
			out, _ := os.Create(filepath.Join(dir, e.Name()))
			io.Copy(out, in)
			in.Close()
			out.Close()
		}
	}
	return dir
}

// TestGenerateWithBuiltinEngine runs generate on the built-in engine (no
// --base-url): rows come back with generations, and a rerun into another
// file reproduces them exactly (seeds derive from id and sample).
func TestGenerateWithBuiltinEngine(t *testing.T) {
	model := tinyModel(t)
	dir := t.TempDir()
	in := writeInput(t, dir, 4)
	outs := []string{filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")}
	for _, out := range outs {
		_, stderr, err := run(t, "generate", "--input", in, "--output", out, "--model", model, "--samples", "2",
			"--temperature", "0.9", "--max-tokens", "12", "--seed", "3", "--log-level", "warn")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
	}
	read := func(p string) map[record.Key]string {
		r, err := record.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		m := map[record.Key]string{}
		for r.Next() {
			row := r.Row()
			gen, _ := row.String("generation")
			n, _ := row.Int("num_generated_tokens")
			if row.Has("error") || n == 0 || n > 12 {
				t.Fatalf("bad row %s", row.AppendJSON(nil))
			}
			m[record.KeyOf(row)] = gen
		}
		return m
	}
	a, b := read(outs[0]), read(outs[1])
	if len(a) != 8 {
		t.Fatalf("%d rows", len(a))
	}
	differ := false
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%v: %q then %q", k, v, b[k])
		}
		if other := a[record.Key{ID: k.ID, Sample: 1 - k.Sample}]; other != v {
			differ = true
		}
	}
	if !differ {
		t.Error("the two samples of every row are identical: seeds do not reach the sampler")
	}
}
