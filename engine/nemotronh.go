package engine

import (
	"fmt"
	"strings"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// nemotronH runs NemotronHForCausalLM, a hybrid of Mamba-2 mixers (M),
// attention without positional encoding (*) and relu² MLPs (-), one kind
// per layer as the pattern says. Every layer is h = h + Mixer(RMSNorm(h)).
type nemotronH struct {
	cfg    *Config
	ck     *safetensors.Checkpoint
	embed  *Mat // [V, d]
	layers []nhLayer
	normF  []float32 // [d]
	head   Linear    // [V, d]
	params int64
	// slot maps a layer to its index among the layers of its kind, i.e. to
	// its KV cache or Mamba state in a nemotronHState.
	slot          []int
	nAttn, nMamba int
}

type nhLayer struct {
	kind       byte      // LayerMamba, LayerAttention or LayerMLP
	norm       []float32 // [d] pre-mixer RMSNorm
	mamba      *mamba2Mixer
	q, k, v, o Linear // q [nq*hd, d], k/v [nkv*hd, d], o [d, nq*hd]
	up, down   Linear // up [ff, d], down [d, ff]
}

func newNemotronH(cfg *Config, ck *safetensors.Checkpoint) (*nemotronH, error) {
	d, ff, hd, nq, nkv := cfg.HiddenSize, cfg.IntermediateSize, cfg.HeadDim, cfg.NumHeads, cfg.NumKVHeads
	l := &weightLoader{ck: ck, prefixes: []string{"backbone.", "model.", ""}}
	m := &nemotronH{cfg: cfg, ck: ck, layers: make([]nhLayer, cfg.NumLayers), slot: make([]int, cfg.NumLayers)}
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
			ly.mamba, err = loadMamba2Mixer(l, cfg, mp, cfg.NGroups)
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
	if m.head, err = loadHead(l, cfg, m.embed, "lm_head"); err != nil {
		return nil, err
	}
	m.params = l.params
	return m, nil
}

// nemotronHState is one sequence: a KV cache per attention layer, a
// constant-size Mamba state per Mamba layer, and scratch buffers.
type nemotronHState struct {
	pos        int
	kv         []kvCache    // per attention layer: [cap, nkv, hd] each for K and V
	mamba      []mambaState // per Mamba layer
	sc         mambaScratch
	x, xb, xb2 []float32 // [d]
	q, ao, att []float32 // [nq*hd], [nq*hd], [cap] (grows)
	k, v       []float32 // [nkv*hd]
	hb         []float32 // [ff]
}

func (s *nemotronHState) Pos() int { return s.pos }
func (s *nemotronHState) Reset() {
	s.pos = 0
	for i := range s.mamba {
		s.mamba[i].reset()
	}
}

func (m *nemotronH) Config() *Config { return m.cfg }
func (m *nemotronH) Close() error    { return m.ck.Close() }

func (m *nemotronH) NewState(capTokens int) State {
	c := m.cfg
	capTokens = max(capTokens, 1)
	s := &nemotronHState{
		kv: make([]kvCache, m.nAttn), mamba: make([]mambaState, m.nMamba),
		x: make([]float32, c.HiddenSize), xb: make([]float32, c.HiddenSize), xb2: make([]float32, c.HiddenSize),
	}
	if m.nMamba > 0 {
		s.sc = newMambaScratch(c)
	}
	for i := range s.mamba {
		s.mamba[i] = newMambaState(c)
	}
	if m.nAttn > 0 {
		s.q, s.ao = make([]float32, c.NumHeads*c.HeadDim), make([]float32, c.NumHeads*c.HeadDim)
		s.k, s.v = make([]float32, c.NumKVHeads*c.HeadDim), make([]float32, c.NumKVHeads*c.HeadDim)
		s.att = make([]float32, capTokens)
		for i := range s.kv {
			s.kv[i] = newKVCache(capTokens, c.NumKVHeads*c.HeadDim)
		}
	}
	if strings.ContainsRune(c.Pattern, LayerMLP) {
		s.hb = make([]float32, c.IntermediateSize)
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
		WeightBytes:     m.ck.Bytes(),
		KVBytesPerToken: int64(m.nAttn) * 2 * int64(c.NumKVHeads*c.HeadDim) * 4,
		StateBytes:      int64(m.nMamba) * mambaStateBytes(c),
	}
}

// Forward runs one token through the network.
func (m *nemotronH) Forward(st State, token int, logits []float32) {
	s := st.(*nemotronHState)
	c := m.cfg
	hd, nq, nkv := c.HeadDim, c.NumHeads, c.NumKVHeads
	pos := s.pos
	if m.nAttn > 0 && pos >= len(s.att) {
		s.att = make([]float32, 2*(pos+1))
	}

	m.embed.Row(token, s.x) // x: [d], no scaling
	for i := range m.layers {
		ly := &m.layers[i]
		RMSNorm(s.xb, s.x, ly.norm, c.NormEps) // xb: [d]
		switch ly.kind {
		case LayerMamba:
			ly.mamba.forward(s.xb2, s.xb, &s.mamba[m.slot[i]], &s.sc) // xb2: [d]

		case LayerAttention:
			// GQA with no positional encoding (NoPE): no RoPE on q or k.
			kv := &s.kv[m.slot[i]]
			MatVec(s.q, ly.q, s.xb) // q: [nq, hd]
			MatVec(s.k, ly.k, s.xb) // k: [nkv, hd]
			MatVec(s.v, ly.v, s.xb) // v: [nkv, hd]
			kv.ensure(pos)
			copy(kv.k[pos*kv.stride:], s.k) // cache: [pos+1, nkv, hd]
			copy(kv.v[pos*kv.stride:], s.v)
			attend(s.ao, s.q, kv.k, kv.v, s.att, pos+1, nq, nkv, hd) // ao: [nq, hd]
			MatVec(s.xb2, ly.o, s.ao)                                // xb2: [d]

		case LayerMLP:
			// y = down(relu(up(x))²), no gate.
			MatVec(s.hb, ly.up, s.xb) // hb: [ff]
			for j, u := range s.hb {
				r := max(u, 0)
				s.hb[j] = r * r
			}
			MatVec(s.xb2, ly.down, s.hb) // xb2: [d]
		}
		add(s.x, s.xb2) // residual
	}
	s.pos++
	if logits == nil {
		return
	}
	RMSNorm(s.x, s.x, m.normF, c.NormEps)
	MatVec(logits, m.head, s.x) // logits: [V]
}
