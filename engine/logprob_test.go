package engine

import (
	"context"
	"math"
	"slices"
	"sort"
	"testing"
)

// refLogprobs is the log-softmax of logits in float64.
func refLogprobs(logits []float32) []float64 {
	mx := math.Inf(-1)
	for _, l := range logits {
		mx = math.Max(mx, float64(l))
	}
	var sum float64
	for _, l := range logits {
		sum += math.Exp(float64(l) - mx)
	}
	out := make([]float64, len(logits))
	for i, l := range logits {
		out[i] = float64(l) - mx - math.Log(sum)
	}
	return out
}

func TestLogprobOf(t *testing.T) {
	logits := []float32{1, 3, -2, 3, 0.5, 7, -10, 2}
	ref := refLogprobs(logits)
	for _, top := range []int{0, 1, 3, 8, 20} {
		got := logprobOf(logits, 2, top)
		if got.ID != 2 || math.Abs(float64(got.Logprob.Logprob)-ref[2]) > 1e-5 {
			t.Errorf("top %d: token 2: %+v, want %g", top, got.Logprob, ref[2])
		}
		ids := make([]int, len(logits))
		for i := range ids {
			ids[i] = i
		}
		sort.SliceStable(ids, func(a, b int) bool { return logits[ids[a]] > logits[ids[b]] }) // ties: lower id first
		want := ids[:min(top, len(ids))]
		if len(got.Top) != len(want) {
			t.Fatalf("top %d: %d alternatives", top, len(got.Top))
		}
		for i, c := range got.Top {
			if c.ID != want[i] || math.Abs(float64(c.Logprob)-ref[c.ID]) > 1e-5 {
				t.Errorf("top %d: alternative %d = %+v, want id %d (%g)", top, i, c, want[i], ref[want[i]])
			}
		}
	}
}

// TestLogprobsInBatcher: asking for logprobs changes no token; each
// generated token's logprob is that of the logits a lone greedy run sees;
// prompt logprobs (with MaxTokens 0: scoring only) are those of a full
// prefill, whatever the prefix cache holds.
func TestLogprobsInBatcher(t *testing.T) {
	for _, name := range []string{"llama_tiny", "nemotron_h_tiny", "mamba2_tiny"} {
		t.Run(name, func(t *testing.T) {
			m := loadTest(t, name)
			V := m.Config().VocabSize
			prompt := make([]int, 40) // more than two scoring chunks
			for i := range prompt {
				prompt[i] = (i*29 + 11) % V
			}
			b := NewBatcher(m, nil, 4)
			defer b.Close()
			plain := GenRequest{Prompt: prompt, MaxTokens: 5, Sampling: SamplingParams{Temperature: 0.9, Seed: 3, RepetitionPenalty: 1.3}}
			withLP := plain
			withLP.Logprobs, withLP.TopLogprobs, withLP.PromptLogprobs = true, 3, true
			score := GenRequest{Prompt: prompt, MaxTokens: 0, PromptLogprobs: true}
			got := runAll(t, b, []GenRequest{plain, withLP, score})
			if !slices.Equal(got[0].Tokens, got[1].Tokens) {
				t.Fatalf("logprobs changed the tokens: %v vs %v", got[0].Tokens, got[1].Tokens)
			}
			if len(got[1].Logprobs) != len(got[1].Tokens) {
				t.Fatalf("%d logprobs for %d tokens", len(got[1].Logprobs), len(got[1].Tokens))
			}
			if len(got[2].Tokens) != 0 || got[2].FinishReason != FinishLength {
				t.Errorf("scoring only: %+v", got[2])
			}

			// The reference: every position's logits from one prefill.
			all := make([]float32, (len(prompt)+len(got[1].Tokens))*V)
			seqTokens := append(slices.Clone(prompt), got[1].Tokens...)
			if err := prefill(context.Background(), m, m.newState(len(seqTokens)), seqTokens, all, nil); err != nil {
				t.Fatal(err)
			}
			check := func(what string, lp TokenLogprob, pos, id int) {
				t.Helper()
				ref := refLogprobs(all[pos*V : (pos+1)*V])
				if lp.ID != id || math.Abs(float64(lp.Logprob.Logprob)-ref[id]) > 1e-4 {
					t.Errorf("%s: %+v, want id %d logprob %g", what, lp.Logprob, id, ref[id])
				}
				for _, c := range lp.Top {
					if math.Abs(float64(c.Logprob)-ref[c.ID]) > 1e-4 {
						t.Errorf("%s: alternative %+v, want %g", what, c, ref[c.ID])
					}
				}
			}
			for k, r := range got[1:] {
				wantTop := []int{3, 0}[k]
				if len(r.PromptLogprobs) != len(prompt)-1 {
					t.Fatalf("%d prompt logprobs for a prompt of %d", len(r.PromptLogprobs), len(prompt))
				}
				for i, lp := range r.PromptLogprobs {
					check("prompt", lp, i, prompt[i+1])
					if len(lp.Top) != wantTop {
						t.Fatalf("prompt token %d: %d alternatives", i+1, len(lp.Top))
					}
				}
			}
			for i, lp := range got[1].Logprobs {
				check("generated", lp, len(prompt)-1+i, got[1].Tokens[i])
			}
		})
	}
}
