package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/engine/hub"
)

// modelDir assembles a model folder from the engine's fixtures: the tiny
// Qwen2 weights (vocabulary 512) with the 512-token Qwen2 fixture tokenizer.
func modelDir(t *testing.T) string {
	dir := t.TempDir()
	copyFrom := func(src string) {
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() == "cases.json" || e.Name() == "reference.safetensors" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	copyFrom("../../engine/testdata/models/qwen2_tiny_bf16")
	copyFrom("../../engine/tokenizer/testdata/bpe_qwen2")
	return dir
}

func TestLocalBackend(t *testing.T) {
	b, err := Open(context.Background(), Options{Model: modelDir(t), MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()

	chatReq := &backend.Request{Messages: []backend.Message{{Role: "user", Content: "What is 2+3?"}}, MaxTokens: 8}
	ids, err := b.Prompt(chatReq)
	if err != nil {
		t.Fatal(err)
	}
	// The reference ids of this conversation from the tokenizer fixture.
	want := []int{1, 85, 91, 388, 71, 79, 201, 59, 292, 332, 261, 317, 78, 82, 72, 438, 371, 85, 279, 86, 286, 86, 16, 2,
		201, 1, 351, 267, 201, 57, 318, 296, 223, 20, 13, 21, 33, 2, 201, 1, 314, 85, 279, 86, 286, 86, 201}
	if len(ids) != len(want) {
		t.Fatalf("chat prompt ids %v, want %v", ids, want)
	}
	for i := range ids {
		if ids[i] != want[i] {
			t.Fatalf("chat prompt ids %v, want %v", ids, want)
		}
	}

	resp, err := b.Generate(ctx, chatReq)
	if err != nil {
		t.Fatal(err)
	}
	if resp.PromptTokens != len(want) || resp.CompletionTokens == 0 || resp.CompletionTokens > 8 {
		t.Errorf("response %+v", resp)
	}
	again, _ := b.Generate(ctx, chatReq)
	if again.Text != resp.Text {
		t.Errorf("greedy not reproducible: %q vs %q", resp.Text, again.Text)
	}

	// Seeded sampling reproduces; stop strings cut the text.
	plain := &backend.Request{Prompt: "If Tom has 3 apples", MaxTokens: 30, Temperature: 1, TopP: 0.9, Seed: 5, HasSeed: true}
	r1, err := b.Generate(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := b.Generate(ctx, plain)
	if r1.Text != r2.Text {
		t.Errorf("same seed, different text: %q vs %q", r1.Text, r2.Text)
	}
	if len(r1.Text) > 4 && r1.FinishReason == backend.FinishLength {
		stop := r1.Text[2:4]
		withStop := *plain
		withStop.Stop = []string{stop}
		r3, _ := b.Generate(ctx, &withStop)
		if r3.FinishReason != backend.FinishStop || r3.Text != r1.Text[:strings.Index(r1.Text, stop)] || r3.StopString != stop {
			t.Errorf("stop %q: %+v (full text %q)", stop, r3, r1.Text)
		}
	}

	if _, err := b.Generate(ctx, &backend.Request{Prompt: "x", Temperature: -1}); !errors.Is(err, backend.ErrBadRequest) {
		t.Errorf("negative temperature: err = %v, want ErrBadRequest", err)
	}
}

func TestOpenErrors(t *testing.T) {
	offline := hub.Options{CacheDir: t.TempDir(), Offline: true}
	if _, err := Open(context.Background(), Options{Model: "org/not-cached", Hub: &offline}); !errors.Is(err, hub.ErrOffline) {
		t.Errorf("Open of an uncached repo offline: err = %v", err)
	}
	if _, err := Open(context.Background(), Options{Model: "./no/such/folder", Hub: &offline}); err == nil {
		t.Error("Open of a missing folder succeeded")
	}
}

// TestOpenStopsOnCancel: a cancelled context stops Open with its error
// (Ctrl-C during a model load).
func TestOpenStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, Options{Model: modelDir(t)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
}
