package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// pooling is the part of a sequence's state that Embed uses: while sum is
// set, every forward pass adds each token's final hidden state (after the
// final norm) to it.
type pooling struct {
	sum []float32 // [HiddenSize]
	n   int
}

func (p *pooling) pool() *pooling { return p }

// pooler is every state: its pooling.
type pooler interface{ pool() *pooling }

// Embed returns the embedding of a token sequence: the mean over its
// positions of the model's final hidden state (after the final norm, the
// input of the output head), scaled to unit length. It is what
// `crucible serve` answers on /v1/embeddings, so that retrieval (e.g.
// OpenMathInstruct-2's decontamination by similarity) can run on the
// built-in engine; a causal LM's mean-pooled states are a usable, not a
// trained, sentence embedding.
func Embed(ctx context.Context, m Model, tokens []int) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, errors.New("embed: no tokens")
	}
	st := m.newState(len(tokens))
	p := st.(pooler).pool()
	p.sum = make([]float32, m.Config().HiddenSize)
	if err := prefill(ctx, m, st, tokens, nil, nil); err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	if p.n != len(tokens) {
		return nil, fmt.Errorf("embed: %d of %d positions pooled", p.n, len(tokens))
	}
	var norm float64
	for i := range p.sum {
		p.sum[i] /= float32(p.n)
		norm += float64(p.sum[i]) * float64(p.sum[i])
	}
	if norm > 0 {
		inv := float32(1 / math.Sqrt(norm))
		for i := range p.sum {
			p.sum[i] *= inv
		}
	}
	return p.sum, nil
}
