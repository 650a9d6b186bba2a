package engine

import (
	"fmt"
	"strings"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// nemotronH runs NemotronHForCausalLM, a hybrid of Mamba-2 mixers (M),
// attention without positional encoding (*) and relu² MLPs (-), one kind
// per layer as the pattern says. Every layer is h = h + Mixer(RMSNorm(h)).
type nemotronH struct {
	base
	embed  *kernel.Mat // [V, d]
	layers []nhLayer
	normF  []float32     // [d]
	lmHead kernel.Linear // [V, d]
	// slot maps a layer to its index among the layers of its kind, i.e. to
	// its KV cache or Mamba state in a nemotronHState.
	slot          []int
	nAttn, nMamba int
}

type nhLayer struct {
	kind       byte      // LayerMamba, LayerAttention or LayerMLP
	norm       []float32 // [d] pre-mixer RMSNorm
	mamba      *mamba2Mixer
	q, k, v, o kernel.Linear // q [nq*hd, d], k/v [nkv*hd, d], o [d, nq*hd]
	up, down   kernel.Linear // up [ff, d], down [d, ff]
}

func newNemotronH(cfg *Config, ck *safetensors.Checkpoint, opts Options) (*nemotronH, error) {
	d, ff, hd, nq, nkv := cfg.HiddenSize, cfg.IntermediateSize, cfg.HeadDim, cfg.NumHeads, cfg.NumKVHeads
	l := &weightLoader{ck: ck, prefixes: []string{"backbone.", "model.", ""}, quantize: opts.Quantize == "int8", dot: opts.Matmul == "bf16"}
	m := &nemotronH{base: newBase(cfg, ck, opts), layers: make([]nhLayer, cfg.NumLayers), slot: make([]int, cfg.NumLayers)}
	var err error
	if m.embed, err = loadEmbeddings(l, cfg); err != nil {
		return nil, err
	}
	for i := range m.layers {
		p := fmt.Sprintf("layers.%d.", i)
		ly := &m.layers[i]
		ly.kind = cfg.Pattern[i]
		if ly.norm, err = l.vec(p+"norm.weight", d); err != nil {
			return nil, err
		}
		mp := p + "mixer."
		switch ly.kind {
		case LayerMamba:
			m.slot[i] = m.nMamba
			m.nMamba++
			ly.mamba, err = loadMamba2Mixer(l, cfg, mp)
		case LayerAttention:
			m.slot[i] = m.nAttn
			m.nAttn++
			if ly.q, err = l.linear(mp+"q_proj", nq*hd, d, cfg.AttentionBias); err != nil {
				return nil, err
			}
			if ly.k, err = l.linear(mp+"k_proj", nkv*hd, d, cfg.AttentionBias); err != nil {
				return nil, err
			}
			if ly.v, err = l.linear(mp+"v_proj", nkv*hd, d, cfg.AttentionBias); err != nil {
				return nil, err
			}
			ly.o, err = l.linear(mp+"o_proj", d, nq*hd, cfg.AttentionBias)
		case LayerMLP:
			if ly.up, err = l.linear(mp+"up_proj", ff, d, cfg.MLPBias); err != nil {
				return nil, err
			}
			ly.down, err = l.linear(mp+"down_proj", d, ff, cfg.MLPBias)
		}
		if err != nil {
			return nil, err
		}
	}
	if m.normF, err = l.vec("norm_f.weight", d); err != nil {
		return nil, err
	}
	if m.lmHead, err = loadHead(l, cfg, m.embed, "lm_head"); err != nil {
		return nil, err
	}
	m.params = l.params
	m.weightBytes = l.weightBytes()
	l.ck.Evict() // the packed matrices are copies
	return m, nil
}

// nemotronHState is one sequence: a KV cache per attention layer and a
// constant-size Mamba state per Mamba layer.
type nemotronHState struct {
	pos     int
	kv      []kernel.KVCache // per attention layer: [cap, nkv, hd] keys and values
	mamba   []mambaState     // per Mamba layer
	pooling                  // for Embed
}

func (s *nemotronHState) Pos() int { return s.pos }
func (s *nemotronHState) Reset() {
	s.pos = 0
	for i := range s.mamba {
		s.mamba[i].reset()
	}
}

func (m *nemotronH) newState(capTokens int) state {
	c := m.cfg
	s := &nemotronHState{kv: make([]kernel.KVCache, m.nAttn), mamba: make([]mambaState, m.nMamba)}
	for i := range s.mamba {
		s.mamba[i] = newMambaState(c)
	}
	for i := range s.kv {
		s.kv[i] = kernel.NewKVCache(max(capTokens, 1), c.NumKVHeads*c.HeadDim, m.kvBF16)
	}
	return s
}

func (m *nemotronH) Info() Info {
	c := m.cfg
	return Info{
		Architecture: c.Architecture,
		Layers: fmt.Sprintf("%s (%d Mamba-2, %d attention, %d MLP)", c.Pattern, m.nMamba, m.nAttn,
			strings.Count(c.Pattern, string(rune(LayerMLP)))),
		Parameters:      m.params,
		WeightBytes:     m.weightBytes,
		KVBytesPerToken: int64(m.nAttn) * 2 * int64(c.NumKVHeads*c.HeadDim) * 4,
		StateBytes:      int64(m.nMamba) * mambaStateBytes(c),
	}
}

// forward runs one micro-batch of n <= maxChunk tokens through the network.
// Matmuls run over all n tokens at once; attention and the Mamba scan run
// token by token, in order, on each token's own sequence state.
func (m *nemotronH) forward(states []state, tokens []int, logits [][]float32) {
	c := m.cfg
	hd, nq, nkv := c.HeadDim, c.NumHeads, c.NumKVHeads
	n := len(tokens)
	ws := m.getWS()
	defer m.putWS(ws)
	pos := ws.pos[:n]
	positions(pos, states)
	x, xb, xb2 := ws.x.v[:n], ws.xb.v[:n], ws.xb2.v[:n] // [n][d]

	for i, tok := range tokens {
		m.embed.Row(tok, x[i]) // no scaling
	}
	for l := range m.layers {
		ly := &m.layers[l]
		for i := range x {
			kernel.RMSNorm(xb[i], x[i], ly.norm, c.NormEps)
		}
		switch ly.kind {
		case LayerMamba:
			for i := range states {
				ws.ms[i] = &states[i].(*nemotronHState).mamba[m.slot[l]]
			}
			ly.mamba.forward(m.workers, ws, xb2, xb, ws.ms[:n]) // [n][d]

		case LayerAttention:
			// GQA with no positional encoding (NoPE): no RoPE on q or k.
			q, ao, k, v := ws.q.v[:n], ws.ao.v[:n], ws.k.v[:n], ws.v.v[:n]
			m.workers.MatMul3(xb, q, ly.q, k, ly.k, v, ly.v) // q [n][nq*hd], k, v [n][nkv*hd]
			for i := range states {
				kv := &states[i].(*nemotronHState).kv[m.slot[l]]
				kv.Ensure(pos[i])
				kv.Put(pos[i], k[i], v[i])
				ws.attn.KV[i], ws.attn.Ctx[i] = kv, pos[i]+1
			}
			ws.attn.Out, ws.attn.Q, ws.attn.NQ, ws.attn.NKV, ws.attn.HeadDim = ao, q, nq, nkv, hd
			m.workers.Attend(&ws.attn, n)   // ao[i] = attention of q[i] over its cache: [n][nq*hd]
			m.workers.MatMul(xb2, ly.o, ao) // [n][d]

		case LayerMLP:
			// y = down(relu(up(x))²), no gate.
			hb := ws.hb.v[:n]
			m.workers.MatMul(hb, ly.up, xb) // [n][ff]
			for i := range hb {
				for j, u := range hb[i] {
					r := max(u, 0)
					hb[i][j] = r * r
				}
			}
			m.workers.MatMul(xb2, ly.down, hb) // [n][d]
		}
		for i := range x {
			kernel.Add(x[i], xb2[i]) // residual
		}
	}
	for i, st := range states {
		st.(*nemotronHState).pos = pos[i] + 1
	}
	m.head(ws, states, x, m.normF, m.lmHead, logits) // [n][V]; and pooled embeddings
}
