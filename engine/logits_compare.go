package engine

import (
	"context"
	"fmt"
	"math"
)

// sequenceLogits runs tokens through a fresh state of m and returns the
// next-token logits at every position ([len(tokens) × VocabSize]).
func sequenceLogits(ctx context.Context, m Model, st state, tokens []int, buf []float32) ([]float32, error) {
	v := m.Config().VocabSize
	if cap(buf) < len(tokens)*v {
		buf = make([]float32, len(tokens)*v)
	}
	buf = buf[:len(tokens)*v]
	st.Reset()
	if err := prefill(ctx, m, st, tokens, buf, nil); err != nil {
		return nil, err
	}
	return buf, nil
}

// logSoftmax writes log p of logits into dst.
func logSoftmax(dst, logits []float32) {
	mx := float32(math.Inf(-1))
	for _, x := range logits {
		mx = max(mx, x)
	}
	var sum float64
	for _, x := range logits {
		sum += math.Exp(float64(x - mx))
	}
	lse := float64(mx) + math.Log(sum)
	for i, x := range logits {
		dst[i] = float32(float64(x) - lse)
	}
}

// klRow is KL(p‖q) = Σ p (log p − log q) of two log-probability rows.
func klRow(logp, logq []float32) float64 {
	var kl float64
	for i, lp := range logp {
		p := math.Exp(float64(lp))
		kl += p * (float64(lp) - float64(logq[i]))
	}
	return max(kl, 0)
}

// LogitStats compares a model's logits with a reference model's on the same
// tokens.
type LogitStats struct {
	Positions int     `json:"positions"`
	MeanKL    float64 `json:"mean_kl"`    // mean KL(reference ‖ model) per position, in nats
	MaxAbs    float64 `json:"max_abs"`    // max |Δlogit|
	RelErr    float64 `json:"rel_err"`    // MaxAbs / max(1, max|reference logit|)
	Agreement float64 `json:"top1_agree"` // fraction of positions with the same argmax
}

// CompareLogits runs ref and m over each token sequence and compares their
// next-token distributions at every position.
func CompareLogits(ctx context.Context, ref, m Model, seqs [][]int) (*LogitStats, error) {
	v := ref.Config().VocabSize
	if m.Config().VocabSize != v {
		return nil, fmt.Errorf("compare logits: vocabularies of %d and %d", v, m.Config().VocabSize)
	}
	maxLen := 0
	for _, s := range seqs {
		maxLen = max(maxLen, len(s))
	}
	sr, sm := ref.newState(maxLen), m.newState(maxLen)
	var bufR, bufM []float32
	lp, lq := make([]float32, v), make([]float32, v)
	st := &LogitStats{}
	var refMax float64
	agree := 0
	for _, s := range seqs {
		var err error
		if bufR, err = sequenceLogits(ctx, ref, sr, s, bufR); err != nil {
			return nil, err
		}
		if bufM, err = sequenceLogits(ctx, m, sm, s, bufM); err != nil {
			return nil, err
		}
		for i := range s {
			a, b := bufR[i*v:(i+1)*v], bufM[i*v:(i+1)*v]
			for j := range a {
				refMax = max(refMax, math.Abs(float64(a[j])))
				st.MaxAbs = max(st.MaxAbs, math.Abs(float64(a[j]-b[j])))
			}
			if argmax(a) == argmax(b) {
				agree++
			}
			logSoftmax(lp, a)
			logSoftmax(lq, b)
			st.MeanKL += klRow(lp, lq)
			st.Positions++
		}
	}
	if st.Positions > 0 {
		st.MeanKL /= float64(st.Positions)
		st.Agreement = float64(agree) / float64(st.Positions)
	}
	st.RelErr = st.MaxAbs / max(1, refMax)
	return st, nil
}
