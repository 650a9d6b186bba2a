package engine

import (
	"context"
	"math"
	"time"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// measureImportance runs the probe passes over the calibration rows and
// turns the recorded activations into scores; then the depth scores: the
// KL to the full model with each layer skipped, over the first
// DepthTokens calibration tokens.
func measureImportance(ctx context.Context, m prober, rows [][]int, opts PruneOptions, seconds map[string]float64) (*PruneImportance, error) {
	t0 := time.Now()
	cfg := m.Config()
	rec := newActRecorder(cfg)
	maxLen := 0
	total := 0
	for _, r := range rows {
		maxLen = max(maxLen, len(r))
		total += len(r)
	}
	st := m.newState(maxLen)
	done := 0
	for _, r := range rows {
		st.Reset()
		for a := 0; a < len(r); a += maxChunk {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			b := min(a+maxChunk, len(r))
			m.probe(st, r[a:b], rec, -1, nil)
			done += b - a
			if opts.Progress != nil {
				opts.Progress("importance", int64(done), int64(total))
			}
		}
		rec.endRow()
	}
	imp := &PruneImportance{Hidden: rec.hidden.scores(), FFN: map[int][]float64{}, Heads: map[int][]float64{},
		Mamba: map[int][]float64{}, BI: make([]float64, cfg.NumLayers)}
	for l := 0; l < cfg.NumLayers; l++ {
		if a := rec.ffn[l]; a != nil {
			imp.FFN[l] = a.scores()
		}
		if a := rec.attn[l]; a != nil {
			ch := a.scores()
			hd := cfg.HeadDim
			heads := make([]float64, cfg.NumHeads)
			for h := range heads {
				heads[h] = l2(ch[h*hd : (h+1)*hd])
			}
			imp.Heads[l] = heads
		}
		if a := rec.mambaX[l]; a != nil {
			imp.Mamba[l] = a.scores()
		}
		imp.BI[l] = rec.bi[l] / float64(max(total, 1))
	}
	seconds["activations"] = time.Since(t0).Seconds()
	t0 = time.Now()
	var err error
	if imp.Depth, err = depthImportance(ctx, m, rows, opts); err != nil {
		return nil, err
	}
	seconds["depth"] = time.Since(t0).Seconds()
	return imp, nil
}

// depthImportance is, per layer, the mean KL(full ‖ skipped) over the first
// opts.DepthTokens tokens of rows.
func depthImportance(ctx context.Context, m prober, rows [][]int, opts PruneOptions) ([]float64, error) {
	cfg := m.Config()
	V := cfg.VocabSize
	var seqs [][]int
	n := 0
	for _, r := range rows {
		if n >= opts.DepthTokens {
			break
		}
		r = r[:min(len(r), opts.DepthTokens-n)]
		if len(r) < 2 {
			break
		}
		seqs = append(seqs, r)
		n += len(r)
	}
	maxLen := 0
	for _, s := range seqs {
		maxLen = max(maxLen, len(s))
	}
	st := m.newState(maxLen)
	logits := make([]float32, maxLen*V)
	rowsOf := make([][]float32, maxChunk)
	run := func(seq []int, skip int) error {
		st.Reset()
		for a := 0; a < len(seq); a += maxChunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			b := min(a+maxChunk, len(seq))
			for i := a; i < b; i++ {
				rowsOf[i-a] = logits[i*V : (i+1)*V]
			}
			m.probe(st, seq[a:b], nil, skip, rowsOf[:b-a])
		}
		return nil
	}
	// The full model's log-probabilities, per sequence.
	ref := make([][]float32, len(seqs))
	for i, s := range seqs {
		if err := run(s, -1); err != nil {
			return nil, err
		}
		ref[i] = make([]float32, len(s)*V)
		for t := range s {
			logSoftmax(ref[i][t*V:(t+1)*V], logits[t*V:(t+1)*V])
		}
	}
	depth := make([]float64, cfg.NumLayers)
	lq := make([]float32, V)
	for l := range depth {
		if opts.Progress != nil {
			opts.Progress("depth", int64(l), int64(cfg.NumLayers))
		}
		for i, s := range seqs {
			if err := run(s, l); err != nil {
				return nil, err
			}
			for t := range s {
				logSoftmax(lq, logits[t*V:(t+1)*V])
				depth[l] += klRow(ref[i][t*V:(t+1)*V], lq)
			}
		}
		depth[l] /= float64(max(n, 1))
	}
	return depth, nil
}

// pruneEvaluator measures pruned models against the original on the
// held-out rows, whose log-probabilities it computes once.
type pruneEvaluator struct {
	ctx     context.Context
	ck      *safetensors.Checkpoint
	seqs    [][]int
	refLogP [][]float32 // per sequence [T × V]
	base    PruneEval   // the original: perplexity
}

func newPruneEvaluator(ctx context.Context, m Model, ck *safetensors.Checkpoint, seqs [][]int) (*pruneEvaluator, error) {
	ev := &pruneEvaluator{ctx: ctx, ck: ck, seqs: seqs}
	V := m.Config().VocabSize
	maxLen := 0
	for _, s := range seqs {
		maxLen = max(maxLen, len(s))
	}
	st := m.newState(maxLen)
	var buf []float32
	var nll float64
	n := 0
	for _, s := range seqs {
		var err error
		if buf, err = sequenceLogits(ctx, m, st, s, buf); err != nil {
			return nil, err
		}
		lp := make([]float32, len(s)*V)
		for t := range s {
			logSoftmax(lp[t*V:(t+1)*V], buf[t*V:(t+1)*V])
			if t+1 < len(s) {
				nll -= float64(lp[t*V+s[t+1]])
				n++
			}
		}
		ev.refLogP = append(ev.refLogP, lp)
	}
	ev.base = PruneEval{Perplexity: math.Exp(nll / float64(max(n, 1))), Top1Agree: 1}
	return ev, nil
}

// evalPlan builds the pruned model in memory and measures it.
func (ev *pruneEvaluator) evalPlan(cfg *Config, p *prunePlan) (PruneEval, error) {
	newCfg := prunedConfig(cfg, p.shape)
	tensors, err := p.pruneCheckpoint(ev.ctx, cfg, ev.ck, false)
	if err != nil {
		return PruneEval{}, err
	}
	ck, err := safetensors.FromTensors(tensors)
	if err != nil {
		return PruneEval{}, err
	}
	m, err := newModel(newCfg, ck, Options{})
	if err != nil {
		return PruneEval{}, err
	}
	defer m.Close()
	V := cfg.VocabSize
	maxLen := 0
	for _, s := range ev.seqs {
		maxLen = max(maxLen, len(s))
	}
	st := m.newState(maxLen)
	var buf []float32
	lq := make([]float32, V)
	var kl, nll float64
	agree, positions, n := 0, 0, 0
	for i, s := range ev.seqs {
		if buf, err = sequenceLogits(ev.ctx, m, st, s, buf); err != nil {
			return PruneEval{}, err
		}
		for t := range s {
			lp := ev.refLogP[i][t*V : (t+1)*V]
			logSoftmax(lq, buf[t*V:(t+1)*V])
			kl += klRow(lp, lq)
			if argmax(lp) == argmax(lq) {
				agree++
			}
			positions++
			if t+1 < len(s) {
				nll -= float64(lq[s[t+1]])
				n++
			}
		}
	}
	return PruneEval{KL: kl / float64(max(positions, 1)), Perplexity: math.Exp(nll / float64(max(n, 1))),
		Top1Agree: float64(agree) / float64(max(positions, 1))}, nil
}
