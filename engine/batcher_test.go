package engine

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// runAll sends reqs to b concurrently and returns the results in order.
func runAll(t *testing.T, b *Batcher, reqs []GenRequest) []*GenResult {
	t.Helper()
	got := make([]*GenResult, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = b.Generate(context.Background(), reqs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return got
}

// TestBatcherForkAndPrefixCache: k samples of one prompt are prefilled once
// and forked, prompts sharing a long prefix reuse its snapshot, long prompts
// are prefilled in chunks next to decoding sequences, and every result is
// what the request gives alone; with the bf16 options too (a bf16 KV
// cache forks and snapshots as bf16).
func TestBatcherForkAndPrefixCache(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
	}{{"llama_tiny", Options{}}, {"nemotron_h_tiny", Options{}}, {"mamba2_tiny", Options{}},
		{"qwen2_tiny_bf16", Options{Matmul: "bf16", KVCache: "bf16"}}, {"nemotron_h_tiny_bf16", Options{KVCache: "bf16"}}} {
		name := c.name
		t.Run(name+"/"+c.opts.Matmul+c.opts.KVCache, func(t *testing.T) {
			m := loadTestWith(t, name, c.opts)
			V := m.Config().VocabSize
			long := make([]int, 300) // more than one step's budget of prompt tokens
			for i := range long {
				long[i] = (i*31 + 7) % V
			}
			var reqs []GenRequest
			for i := 0; i < 8; i++ { // 8 samples of one prompt
				reqs = append(reqs, GenRequest{Prompt: long, MaxTokens: 6,
					Sampling: SamplingParams{Temperature: 0.8, Seed: uint64(i)}})
			}
			for i := 0; i < 4; i++ { // a shared 100-token preamble, different questions
				p := append(slices.Clone(long[:100]), (i*13+5)%V, (i*17+3)%V)
				reqs = append(reqs, GenRequest{Prompt: p, MaxTokens: 5})
			}
			want, err := GenerateBatch(context.Background(), m, nil, reqs)
			if err != nil {
				t.Fatal(err)
			}
			b := NewBatcher(m, nil, 16)
			defer b.Close()
			got := runAll(t, b, reqs)
			// The same again: now from the prefix cache.
			again := runAll(t, b, reqs)
			for i := range reqs {
				if !slices.Equal(got[i].Tokens, want[i].Tokens) || !slices.Equal(again[i].Tokens, want[i].Tokens) {
					t.Errorf("request %d: batcher %v, again %v, alone %v", i, got[i].Tokens, again[i].Tokens, want[i].Tokens)
				}
			}
			st := b.Stats()
			prefilled := st.PromptTokens.Load()
			// One prefill of the 300-token prompt, of the shared preamble
			// at most once more (when a preamble request came first), and
			// of each question.
			if prefilled > 300+100+4*2 {
				t.Errorf("prefilled %d prompt tokens; forks %d, cached %d", prefilled, st.Forks.Load(), st.CachedTokens.Load())
			}
			t.Logf("prefilled %d tokens, %d forks, %d tokens from the cache, %d steps", prefilled, st.Forks.Load(), st.CachedTokens.Load(), st.Steps.Load())
		})
	}
}

// TestBatcherStreamsText: OnText pieces concatenate to the final text, and
// text cut by a stop string is never streamed.
func TestBatcherStreamsText(t *testing.T) {
	m := loadTest(t, "qwen2_tiny_bf16")
	tok, err := tokenizer.Load("tokenizer/testdata/bpe_qwen2")
	if err != nil {
		t.Fatal(err)
	}
	b := NewBatcher(m, tok, 4)
	defer b.Close()
	prompt := tok.Encode("If Tom has 3 apples", false)
	for _, stop := range [][]string{nil, {"e"}, {"th", "a "}, {"zzzzzz"}} {
		var sb strings.Builder
		res, err := b.Generate(context.Background(), GenRequest{Prompt: prompt, MaxTokens: 40, Stop: stop,
			Sampling: SamplingParams{Temperature: 0.8, Seed: 7},
			OnText:   func(d string) { sb.WriteString(d) }})
		if err != nil {
			t.Fatal(err)
		}
		if sb.String() != res.Text {
			t.Errorf("stop %q: streamed %q, text %q", stop, sb.String(), res.Text)
		}
	}
}
