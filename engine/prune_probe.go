package engine

import (
	"fmt"
	"math"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
)

// Activation probes for pruning. A probe pass is the architecture's
// forward pass (llama.go, mamba2.go, nemotronh.go) run for one sequence,
// that also hands the activations that importance is measured on to an
// actRecorder, and can skip one layer (for depth importance). It reuses
// the model's workspace and the recorder's buffers: it allocates nothing.

// actSum accumulates one activation vector's importance in the Minitron /
// ModelOpt form: per sequence the mean of |a| over its tokens, squared and
// summed over sequences; the score is the square root of the sum (an L2
// norm over the batch of per-sequence mean magnitudes).
type actSum struct {
	row   []float64 // Σ_t |a_t| of the current sequence
	total []float64 // Σ_seq (row/T)²
}

func newActSum(n int) *actSum { return &actSum{row: make([]float64, n), total: make([]float64, n)} }

func (a *actSum) add(v []float32) {
	for i, x := range v {
		a.row[i] += math.Abs(float64(x))
	}
}

func (a *actSum) endRow(tokens int) {
	for i, s := range a.row {
		m := s / float64(tokens)
		a.total[i] += m * m
		a.row[i] = 0
	}
}

// scores returns the square roots of the totals.
func (a *actSum) scores() []float64 {
	out := make([]float64, len(a.total))
	for i, t := range a.total {
		out[i] = math.Sqrt(t)
	}
	return out
}

// actRecorder receives the activations of probe passes.
type actRecorder struct {
	hidden *actSum   // [d]: every RMSNorm's output (pre-mixer norms and the final norm)
	ffn    []*actSum // per layer [ff]: the down projection's input (MLP layers)
	attn   []*actSum // per layer [nq·hd]: the output projection's input (attention layers)
	mambaX []*actSum // per layer [DI]: the x part of in_proj's output (Mamba layers)
	// Block influence per layer: Σ over tokens of 1 − cos(x_in, x_out).
	bi     []float64
	tokens int         // tokens of the current sequence
	xin    [][]float32 // [maxChunk][d] scratch: a layer's input
}

func newActRecorder(cfg *Config) *actRecorder {
	r := &actRecorder{hidden: newActSum(cfg.HiddenSize), bi: make([]float64, cfg.NumLayers),
		ffn: make([]*actSum, cfg.NumLayers), attn: make([]*actSum, cfg.NumLayers), mambaX: make([]*actSum, cfg.NumLayers)}
	for l := 0; l < cfg.NumLayers; l++ {
		switch layerKind(cfg, l) {
		case LayerMamba:
			r.mambaX[l] = newActSum(cfg.DInner())
		case LayerAttention:
			r.attn[l] = newActSum(cfg.NumHeads * cfg.HeadDim)
			if cfg.attentionOnly() {
				r.ffn[l] = newActSum(cfg.IntermediateSize)
			}
		case LayerMLP:
			r.ffn[l] = newActSum(cfg.IntermediateSize)
		}
	}
	r.xin = newRows(maxChunk, cfg.HiddenSize).v
	return r
}

// layerKind is layer l's kind; a Llama layer (attention + MLP) reports
// LayerAttention.
func layerKind(cfg *Config, l int) byte {
	if cfg.attentionOnly() {
		return LayerAttention
	}
	return cfg.Pattern[l]
}

// endRow closes a sequence: the per-sequence means enter the totals.
func (r *actRecorder) endRow() {
	if r.tokens == 0 {
		return
	}
	for _, a := range append(append(append([]*actSum{r.hidden}, r.ffn...), r.attn...), r.mambaX...) {
		if a != nil {
			a.endRow(r.tokens)
		}
	}
	r.tokens = 0
}

// saveInput keeps a layer's input for its block influence.
func (r *actRecorder) saveInput(x [][]float32) {
	for i := range x {
		copy(r.xin[i], x[i])
	}
}

// blockInfluence adds 1 − cos(input, output) of layer l for each token.
func (r *actRecorder) blockInfluence(l int, x [][]float32) {
	for i := range x {
		var dot, na, nb float64
		for j, a := range r.xin[i] {
			b := float64(x[i][j])
			dot += float64(a) * b
			na += float64(a) * float64(a)
			nb += b * b
		}
		if na > 0 && nb > 0 {
			r.bi[l] += 1 - dot/math.Sqrt(na*nb)
		}
	}
}

// prober is a model that can run probe passes.
type prober interface {
	Model
	// probe feeds tokens (n <= maxChunk, in order) to the one sequence st,
	// recording into rec when non-nil, skipping layer skip (-1: none),
	// and writing the logits of token i into logits[i] when non-nil.
	probe(st state, tokens []int, rec *actRecorder, skip int, logits [][]float32)
}

func asProber(m Model) (prober, error) {
	p, ok := m.(prober)
	if !ok {
		return nil, fmt.Errorf("prune: %w: %s", ErrUnsupported, m.Config().Architecture)
	}
	return p, nil
}

// finish records the final norm's output and computes the logits wanted.
func (b *base) probeFinish(ws *workspace, x, xb [][]float32, norm []float32, head kernel.Linear, rec *actRecorder, logits [][]float32) {
	if rec != nil {
		for i := range x {
			kernel.RMSNorm(xb[i], x[i], norm, b.cfg.NormEps)
			rec.hidden.add(xb[i])
		}
		rec.tokens += len(x)
	}
	if logits != nil {
		b.head(ws, nil, x, norm, head, logits)
	}
}

func (m *llama) probe(st state, tokens []int, rec *actRecorder, skip int, logits [][]float32) {
	c := m.cfg
	hd, nq, nkv := c.HeadDim, c.NumHeads, c.NumKVHeads
	n := len(tokens)
	ws := m.getWS()
	defer m.putWS(ws)
	s := st.(*llamaState)
	pos := ws.pos[:n]
	for i := range pos {
		pos[i] = s.pos + i
	}
	x, xb, xb2 := ws.x.v[:n], ws.xb.v[:n], ws.xb2.v[:n]
	q, ao, k, v := ws.q.v[:n], ws.ao.v[:n], ws.k.v[:n], ws.v.v[:n]
	hb, hb2 := ws.hb.v[:n], ws.hb2.v[:n]
	for i, tok := range tokens {
		m.embed.Row(tok, x[i])
	}
	for l := range m.layers {
		if l == skip {
			continue
		}
		ly := &m.layers[l]
		if rec != nil {
			rec.saveInput(x)
		}
		for i := range x {
			kernel.RMSNorm(xb[i], x[i], ly.attnNorm, c.NormEps)
			if rec != nil {
				rec.hidden.add(xb[i])
			}
		}
		m.workers.MatMul3(xb, q, ly.q, k, ly.k, v, ly.v)
		kv := &s.kv[l]
		for i := range tokens {
			for j, f := range m.invFreq {
				a := float32(f) * float32(pos[i])
				ws.cos[j] = float32(math.Cos(float64(a)))
				ws.sin[j] = float32(math.Sin(float64(a)))
			}
			rope(q[i], ws.cos, ws.sin, nq, hd)
			rope(k[i], ws.cos, ws.sin, nkv, hd)
			kv.Ensure(pos[i])
			kv.Put(pos[i], k[i], v[i])
			ws.attn.KV[i], ws.attn.Ctx[i] = kv, pos[i]+1
		}
		ws.attn.Out, ws.attn.Q, ws.attn.NQ, ws.attn.NKV, ws.attn.HeadDim = ao, q, nq, nkv, hd
		ws.attn.Window = c.SlidingWindow
		m.workers.Attend(&ws.attn, n)
		m.workers.MatMul(xb2, ly.o, ao)
		for i := range x {
			if rec != nil {
				rec.attn[l].add(ao[i])
			}
			kernel.Add(x[i], xb2[i])
			kernel.RMSNorm(xb[i], x[i], ly.mlpNorm, c.NormEps)
			if rec != nil {
				rec.hidden.add(xb[i])
			}
		}
		m.workers.MatMulGLU(xb, hb, ly.gate, hb2, ly.up)
		m.workers.MatMul(xb2, ly.down, hb)
		for i := range x {
			if rec != nil {
				rec.ffn[l].add(hb[i])
			}
			kernel.Add(x[i], xb2[i])
		}
		if rec != nil {
			rec.blockInfluence(l, x)
		}
	}
	s.pos += n
	m.probeFinish(ws, x, xb, m.norm, m.lmHead, rec, logits)
}

func (m *mamba2) probe(st state, tokens []int, rec *actRecorder, skip int, logits [][]float32) {
	c := m.cfg
	n := len(tokens)
	ws := m.getWS()
	defer m.putWS(ws)
	s := st.(*mamba2State)
	x, xb, xb2 := ws.x.v[:n], ws.xb.v[:n], ws.xb2.v[:n]
	for i, tok := range tokens {
		m.embed.Row(tok, x[i])
	}
	di := c.DInner()
	for l, mx := range m.mixers {
		if l == skip {
			continue
		}
		if rec != nil {
			rec.saveInput(x)
		}
		for i := range x {
			kernel.RMSNorm(xb[i], x[i], m.norms[l], c.NormEps)
			ws.ms[i] = &s.layers[l]
			if rec != nil {
				rec.hidden.add(xb[i])
			}
		}
		mx.forward(m.workers, ws, xb2, xb, ws.ms[:n])
		for i := range x {
			if rec != nil {
				rec.mambaX[l].add(ws.zx.v[i][di : 2*di]) // in_proj's x rows (z | x | B | C | dt)
			}
			kernel.Add(x[i], xb2[i])
		}
		if rec != nil {
			rec.blockInfluence(l, x)
		}
	}
	s.pos += n
	m.probeFinish(ws, x, xb, m.normF, m.lmHead, rec, logits)
}

func (m *nemotronH) probe(st state, tokens []int, rec *actRecorder, skip int, logits [][]float32) {
	c := m.cfg
	hd, nq, nkv := c.HeadDim, c.NumHeads, c.NumKVHeads
	n := len(tokens)
	ws := m.getWS()
	defer m.putWS(ws)
	s := st.(*nemotronHState)
	pos := ws.pos[:n]
	for i := range pos {
		pos[i] = s.pos + i
	}
	x, xb, xb2 := ws.x.v[:n], ws.xb.v[:n], ws.xb2.v[:n]
	for i, tok := range tokens {
		m.embed.Row(tok, x[i])
	}
	di := c.DInner()
	for l := range m.layers {
		if l == skip {
			continue
		}
		ly := &m.layers[l]
		if rec != nil {
			rec.saveInput(x)
		}
		for i := range x {
			kernel.RMSNorm(xb[i], x[i], ly.norm, c.NormEps)
			if rec != nil {
				rec.hidden.add(xb[i])
			}
		}
		switch ly.kind {
		case LayerMamba:
			for i := range x {
				ws.ms[i] = &s.mamba[m.slot[l]]
			}
			ly.mamba.forward(m.workers, ws, xb2, xb, ws.ms[:n])
			if rec != nil {
				for i := range x {
					rec.mambaX[l].add(ws.zx.v[i][di : 2*di])
				}
			}
		case LayerAttention:
			q, ao, k, v := ws.q.v[:n], ws.ao.v[:n], ws.k.v[:n], ws.v.v[:n]
			m.workers.MatMul3(xb, q, ly.q, k, ly.k, v, ly.v)
			kv := &s.kv[m.slot[l]]
			for i := range x {
				kv.Ensure(pos[i])
				kv.Put(pos[i], k[i], v[i])
				ws.attn.KV[i], ws.attn.Ctx[i] = kv, pos[i]+1
			}
			ws.attn.Out, ws.attn.Q, ws.attn.NQ, ws.attn.NKV, ws.attn.HeadDim = ao, q, nq, nkv, hd
			m.workers.Attend(&ws.attn, n)
			m.workers.MatMul(xb2, ly.o, ao)
			if rec != nil {
				for i := range x {
					rec.attn[l].add(ao[i])
				}
			}
		case LayerMLP:
			hb := ws.hb.v[:n]
			m.workers.MatMul(hb, ly.up, xb)
			for i := range hb {
				for j, u := range hb[i] {
					r := max(u, 0)
					hb[i][j] = r * r
				}
				if rec != nil {
					rec.ffn[l].add(hb[i])
				}
			}
			m.workers.MatMul(xb2, ly.down, hb)
		}
		for i := range x {
			kernel.Add(x[i], xb2[i])
		}
		if rec != nil {
			rec.blockInfluence(l, x)
		}
	}
	s.pos += n
	m.probeFinish(ws, x, xb, m.normF, m.lmHead, rec, logits)
}
