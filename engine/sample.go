package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SamplingParams choose the next token from logits. The zero value is
// greedy decoding.
type SamplingParams struct {
	Temperature       float64 // 0 means greedy (argmax)
	TopK              int     // keep the K most likely tokens; 0 or <0: off
	TopP              float64 // keep the smallest set with this much probability; 0 or 1: off
	MinP              float64 // drop tokens below MinP × the top probability; 0: off
	RepetitionPenalty float64 // divide positive / multiply negative logits of seen tokens; 0 or 1: off
	Seed              uint64  // the random stream of this request
}

// Validate reports parameters out of range.
func (p SamplingParams) Validate() error {
	switch {
	case p.Temperature < 0 || math.IsNaN(p.Temperature) || math.IsInf(p.Temperature, 0):
		return fmt.Errorf("temperature %v: want >= 0", p.Temperature)
	case p.TopP < 0 || p.TopP > 1 || math.IsNaN(p.TopP):
		return fmt.Errorf("top_p %v: want 0..1", p.TopP)
	case p.MinP < 0 || p.MinP > 1 || math.IsNaN(p.MinP):
		return fmt.Errorf("min_p %v: want 0..1", p.MinP)
	case p.RepetitionPenalty < 0 || math.IsNaN(p.RepetitionPenalty) || math.IsInf(p.RepetitionPenalty, 0):
		return fmt.Errorf("repetition_penalty %v: want > 0", p.RepetitionPenalty)
	}
	return nil
}

// Sampler draws tokens for one sequence. It keeps its scratch buffers, so
// sampling allocates nothing after the first call.
type Sampler struct {
	p     SamplingParams
	rng   *rand.Rand
	cand  []int     // candidate token ids
	probs []float32 // their probabilities
	seen  map[int]struct{}
}

// NewSampler starts a sampler; the same params (seed included) and logits
// give the same tokens.
func NewSampler(p SamplingParams) *Sampler {
	return &Sampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15)), seen: map[int]struct{}{}}
}

// Sample picks the next token. history holds the tokens seen so far
// (prompt and generated) for the repetition penalty; logits are modified
// in place when a penalty applies.
func (s *Sampler) Sample(logits []float32, history []int) int {
	p := s.p
	if p.RepetitionPenalty > 0 && p.RepetitionPenalty != 1 {
		// As HF's RepetitionPenaltyLogitsProcessor: each distinct seen token once.
		clear(s.seen)
		pen := float32(p.RepetitionPenalty)
		for _, t := range history {
			if _, dup := s.seen[t]; dup || t < 0 || t >= len(logits) {
				continue
			}
			s.seen[t] = struct{}{}
			if logits[t] > 0 {
				logits[t] /= pen
			} else {
				logits[t] *= pen
			}
		}
	}
	if p.Temperature == 0 {
		return argmax(logits)
	}

	// Softmax of logits / T over all tokens, kept as candidates.
	mx := logits[argmax(logits)]
	invT := float32(1 / p.Temperature)
	s.cand, s.probs = s.cand[:0], s.probs[:0]
	var sum float64
	for i, l := range logits {
		e := math.Exp(float64((l - mx) * invT))
		if e == 0 {
			continue
		}
		s.cand = append(s.cand, i)
		s.probs = append(s.probs, float32(e))
		sum += e
	}
	for i := range s.probs {
		s.probs[i] = float32(float64(s.probs[i]) / sum)
	}

	// Min-p: drop tokens below MinP × the largest probability (the largest is 1/sum·e^0).
	if p.MinP > 0 {
		cut := float32(p.MinP / sum)
		s.filter(func(pr float32) bool { return pr >= cut })
	}
	// Top-k and top-p need the candidates by decreasing probability.
	topK := p.TopK > 0 && p.TopK < len(s.cand)
	topP := p.TopP > 0 && p.TopP < 1
	if topK || topP {
		s.sortByProb()
		if topK {
			s.cand, s.probs = s.cand[:p.TopK], s.probs[:p.TopK]
		}
		if topP {
			var total, acc float64
			for _, pr := range s.probs {
				total += float64(pr)
			}
			n := len(s.probs)
			for i, pr := range s.probs {
				acc += float64(pr)
				if acc >= p.TopP*total {
					n = i + 1
					break
				}
			}
			s.cand, s.probs = s.cand[:n], s.probs[:n]
		}
	}

	// Draw from what is left (renormalized).
	var total float64
	for _, pr := range s.probs {
		total += float64(pr)
	}
	r := s.rng.Float64() * total
	for i, pr := range s.probs {
		r -= float64(pr)
		if r < 0 {
			return s.cand[i]
		}
	}
	return s.cand[len(s.cand)-1]
}

func (s *Sampler) filter(keep func(float32) bool) {
	n := 0
	for i, pr := range s.probs {
		if keep(pr) {
			s.cand[n], s.probs[n] = s.cand[i], pr
			n++
		}
	}
	s.cand, s.probs = s.cand[:n], s.probs[:n]
}

// sortByProb orders candidates by decreasing probability (ties by id).
func (s *Sampler) sortByProb() {
	idx := s.cand
	pr := s.probs
	// Sort an index permutation, then apply it; candidates are few after
	// min-p, and at most the vocabulary otherwise.
	type cp struct {
		id int
		p  float32
	}
	tmp := make([]cp, len(idx))
	for i := range idx {
		tmp[i] = cp{idx[i], pr[i]}
	}
	slices.SortFunc(tmp, func(a, b cp) int {
		switch {
		case a.p > b.p:
			return -1
		case a.p < b.p:
			return 1
		}
		return a.id - b.id
	})
	for i, c := range tmp {
		idx[i], pr[i] = c.id, c.p
	}
}
