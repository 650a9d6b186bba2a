package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
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

// sampler draws tokens for one sequence. It keeps its scratch buffers, so
// sampling allocates nothing after the first call.
type sampler struct {
	p     SamplingParams
	rng   *rand.Rand
	cand  []int     // candidate token ids
	probs []float32 // their probabilities
	seen  map[int]struct{}
	heap  []int      // top-k selection
	tmp   []candProb // sorting
	e     []float64  // exponentials of a chunk of logits
}

// expChunk is how many exponentials Sample computes at a time.
const expChunk = 2048

// newSampler starts a sampler; the same params (seed included) and logits
// give the same tokens.
func newSampler(p SamplingParams) *sampler {
	return &sampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15)), seen: map[int]struct{}{}}
}

// penalizes reports whether Sample changes the logits it is given.
func (s *sampler) penalizes() bool {
	return s.p.RepetitionPenalty > 0 && s.p.RepetitionPenalty != 1
}

// Sample picks the next token. history holds the tokens seen so far
// (prompt and generated) for the repetition penalty; logits are modified
// in place when a penalty applies.
func (s *sampler) Sample(logits []float32, history []int) int {
	p := s.p
	if s.penalizes() {
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
	if s.e == nil {
		s.e = make([]float64, expChunk)
	}
	for c0 := 0; c0 < len(logits); c0 += expChunk {
		chunk := logits[c0:min(c0+expChunk, len(logits))]
		es := s.e[:len(chunk)]
		for i := 0; i < len(chunk); { // the vector kernel, math.Exp where it stops
			i += kernel.ExpShifted(chunk[i:], mx, invT, es[i:])
			if i < len(chunk) {
				es[i] = math.Exp(float64((chunk[i] - mx) * invT))
				i++
			}
		}
		for i, e := range es {
			if e == 0 {
				continue
			}
			s.cand = append(s.cand, c0+i)
			s.probs = append(s.probs, float32(e))
			sum += e
		}
	}
	for i := range s.probs {
		s.probs[i] = float32(float64(s.probs[i]) / sum)
	}

	// The filters run in Hugging Face's order: top-k, top-p, then min-p.
	topK := p.TopK > 0 && p.TopK < len(s.cand)
	topP := p.TopP > 0 && p.TopP < 1
	var total float64 // the mass top-p is a fraction of (after top-k, like HF)
	switch {
	case topK:
		s.keepLargest(p.TopK)
		for _, pr := range s.probs {
			total += float64(pr)
		}
	case topP:
		for _, pr := range s.probs {
			total += float64(pr)
		}
		// Only tokens of the top-p set matter: keep the smallest "all tokens
		// above τ" that holds topP of the mass (halving τ from the top
		// probability), so that only those few need sorting.
		top := s.probs[0]
		for _, pr := range s.probs {
			top = max(top, pr)
		}
		tau := s.topPThreshold(top, p.TopP*total)
		s.filter(func(pr float32) bool { return pr >= tau })
	}
	if topP {
		s.sortByProb()
		var acc float64
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
	// Min-p: drop tokens below MinP × the largest remaining probability.
	if p.MinP > 0 {
		var top float32
		for _, pr := range s.probs {
			top = max(top, pr)
		}
		cut := float32(p.MinP) * top
		s.filter(func(pr float32) bool { return pr >= cut })
	}

	// Draw from what is left (renormalized).
	var left float64
	for _, pr := range s.probs {
		left += float64(pr)
	}
	r := s.rng.Float64() * left
	for i, pr := range s.probs {
		r -= float64(pr)
		if r < 0 {
			return s.cand[i]
		}
	}
	return s.cand[len(s.cand)-1]
}

// topPThreshold returns the first τ of top/2, top/4, ... (halved in
// float32) at which the candidates with probability ≥ τ hold target of
// the mass (summed in candidate order), or the first below 1e-30. Masses
// per halving are first estimated in one pass (each candidate counted at
// the first τ it passes, found from the exponents), then the estimate is
// checked, and moved if need be, with exact sums: the result is that of
// trying every τ in turn, in two or three passes instead of one per τ.
func (s *sampler) topPThreshold(top float32, target float64) float32 {
	const maxJ = 127
	taus := make([]float32, 0, maxJ+1) // τ_j = taus[j-1]
	stop := maxJ                       // the first j with τ_j < 1e-30
	for tau := top / 2; len(taus) < maxJ; tau /= 2 {
		taus = append(taus, tau)
		if tau < 1e-30 {
			stop = len(taus)
			break
		}
	}
	stop = min(stop, len(taus))
	var bucket [maxJ + 2]float64
	for _, pr := range s.probs {
		bucket[min(firstHalving(pr, top), maxJ+1)] += float64(pr)
	}
	j, cum := 1, bucket[0]+bucket[1]
	for ; j < stop && cum < target; j++ {
		cum += bucket[j+1]
	}
	mass := func(j int) float64 {
		tau := taus[j-1]
		var m float64
		for _, pr := range s.probs {
			if pr >= tau {
				m += float64(pr)
			}
		}
		return m
	}
	// Exact masses grow with j (a superset's ordered sum is never less), so
	// walk to the first j that holds the target.
	for j > 1 && mass(j-1) >= target {
		j--
	}
	for j < stop && mass(j) < target {
		j++
	}
	return taus[j-1]
}

// firstHalving returns the smallest j ≥ 1 with pr ≥ top·2^-j (a large
// number for pr = 0), from the float32 exponents and mantissas.
func firstHalving(pr, top float32) int {
	if pr <= 0 {
		return 1 << 30
	}
	mt, et := math.Frexp(float64(top))
	mp, ep := math.Frexp(float64(pr))
	j := et - ep
	if mp < mt {
		j++
	}
	return max(j, 1)
}

func (s *sampler) filter(keep func(float32) bool) {
	n := 0
	for i, pr := range s.probs {
		if keep(pr) {
			s.cand[n], s.probs[n] = s.cand[i], pr
			n++
		}
	}
	s.cand, s.probs = s.cand[:n], s.probs[:n]
}

// keepLargest keeps the k most probable candidates (sorted, ties by id).
func (s *sampler) keepLargest(k int) {
	// A threshold from a partial selection would do; k is small and the
	// candidates many, so find the k-th largest with a bounded min-heap.
	h := s.heap[:0]
	for i := range s.probs {
		if len(h) < k {
			h = append(h, i)
			for j := len(h) - 1; j > 0; { // sift up
				par := (j - 1) / 2
				if !s.worse(h[j], h[par]) {
					break
				}
				h[j], h[par] = h[par], h[j]
				j = par
			}
			continue
		}
		if !s.worse(h[0], i) {
			continue
		}
		h[0] = i
		for j := 0; ; { // sift down
			l, r, m := 2*j+1, 2*j+2, j
			if l < k && s.worse(h[l], h[m]) {
				m = l
			}
			if r < k && s.worse(h[r], h[m]) {
				m = r
			}
			if m == j {
				break
			}
			h[j], h[m] = h[m], h[j]
			j = m
		}
	}
	s.heap = h
	s.tmp = s.tmp[:0]
	for _, i := range h {
		s.tmp = append(s.tmp, candProb{s.cand[i], s.probs[i]})
	}
	s.cand, s.probs = s.cand[:0], s.probs[:0]
	for _, c := range s.tmp {
		s.cand = append(s.cand, c.id)
		s.probs = append(s.probs, c.p)
	}
	s.sortByProb()
}

// worse reports whether candidate a ranks below b (lower probability, or
// equal probability and higher id).
func (s *sampler) worse(a, b int) bool {
	if s.probs[a] != s.probs[b] {
		return s.probs[a] < s.probs[b]
	}
	return s.cand[a] > s.cand[b]
}

type candProb struct {
	id int
	p  float32
}

// sortByProb orders candidates by decreasing probability (ties by id).
func (s *sampler) sortByProb() {
	s.tmp = s.tmp[:0]
	for i := range s.cand {
		s.tmp = append(s.tmp, candProb{s.cand[i], s.probs[i]})
	}
	slices.SortFunc(s.tmp, func(a, b candProb) int {
		switch {
		case a.p > b.p:
			return -1
		case a.p < b.p:
			return 1
		}
		return a.id - b.id
	})
	for i, c := range s.tmp {
		s.cand[i], s.probs[i] = c.id, c.p
	}
}
