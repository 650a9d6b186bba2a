package engine

import (
	"math"
	"slices"
)

// MaxTopLogprobs bounds GenRequest.TopLogprobs (OpenAI allows 20).
const MaxTopLogprobs = 20

// Logprob is a token and its log-probability under the model: the
// log-softmax of the model's logits, before temperature, repetition
// penalty and truncation change them for sampling (what vLLM reports by
// default, and what likelihood-based evaluation needs).
type Logprob struct {
	ID      int
	Logprob float32
}

// TokenLogprob is the log-probability of one token of a sequence and, when
// asked for, of the most likely tokens at its position.
type TokenLogprob struct {
	Logprob
	Top []Logprob // the most likely tokens, most likely first
}

// logprobOf is the log-probability of token id under logits, with the top
// most likely tokens. It reads logits without changing them.
func logprobOf(logits []float32, id, top int) TokenLogprob {
	mx := logits[argmax(logits)]
	var sum float64
	for _, l := range logits {
		sum += math.Exp(float64(l - mx))
	}
	logZ := float64(mx) + math.Log(sum)
	lp := func(i int) float32 { return float32(float64(logits[i]) - logZ) }
	out := TokenLogprob{Logprob: Logprob{ID: id, Logprob: lp(id)}}
	if top <= 0 {
		return out
	}
	top = min(top, len(logits))
	// Keep the top largest in a small sorted slice (ties: the lower id first).
	best := make([]Logprob, 0, top+1)
	better := func(a, b Logprob) bool {
		return a.Logprob > b.Logprob || a.Logprob == b.Logprob && a.ID < b.ID
	}
	for i, l := range logits {
		if len(best) == top && l <= logits[best[top-1].ID] {
			continue
		}
		c := Logprob{ID: i, Logprob: l}
		j, _ := slices.BinarySearchFunc(best, c, func(a, b Logprob) int {
			if better(a, b) {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, j, c)
		if len(best) > top {
			best = best[:top]
		}
	}
	for i := range best {
		best[i].Logprob = lp(best[i].ID)
	}
	out.Top = best
	return out
}
