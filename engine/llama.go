package engine

import (
	"fmt"
	"math"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// llama runs LlamaForCausalLM and Qwen2ForCausalLM (the same network, plus
// q/k/v biases for Qwen2): pre-norm Transformer blocks with RoPE, grouped-
// query attention and a SwiGLU MLP.
type llama struct {
	cfg     *Config
	ck      *safetensors.Checkpoint
	embed   *Mat // [V, d]
	layers  []llamaLayer
	norm    []float32 // [d]
	head    Linear    // [V, d]
	invFreq []float64 // [hd/2] RoPE inverse frequencies
	params  int64
}

type llamaLayer struct {
	attnNorm, mlpNorm []float32 // [d]
	q, k, v, o        Linear    // q [nq*hd, d], k/v [nkv*hd, d], o [d, nq*hd]
	gate, up, down    Linear    // gate/up [ff, d], down [d, ff]
}

func newLlama(cfg *Config, ck *safetensors.Checkpoint) (*llama, error) {
	d, ff, hd := cfg.HiddenSize, cfg.IntermediateSize, cfg.HeadDim
	nq, nkv := cfg.NumHeads, cfg.NumKVHeads
	l := &weightLoader{ck: ck, prefixes: []string{"model.", ""}}
	m := &llama{cfg: cfg, ck: ck, layers: make([]llamaLayer, cfg.NumLayers)}
	var err error
	if m.embed, err = l.mat("embed_tokens.weight", cfg.VocabSize, d); err != nil {
		return nil, err
	}
	for i := range m.layers {
		p := fmt.Sprintf("layers.%d.", i)
		ly := &m.layers[i]
		for _, step := range []func() error{
			func() (err error) { ly.attnNorm, err = l.vec(p+"input_layernorm.weight", d); return },
			func() (err error) { ly.mlpNorm, err = l.vec(p+"post_attention_layernorm.weight", d); return },
			func() (err error) { ly.q, err = l.linear(p+"self_attn.q_proj", nq*hd, d, cfg.AttentionBias); return },
			func() (err error) { ly.k, err = l.linear(p+"self_attn.k_proj", nkv*hd, d, cfg.AttentionBias); return },
			func() (err error) { ly.v, err = l.linear(p+"self_attn.v_proj", nkv*hd, d, cfg.AttentionBias); return },
			func() (err error) { ly.o, err = l.linear(p+"self_attn.o_proj", d, nq*hd, false); return },
			func() (err error) { ly.gate, err = l.linear(p+"mlp.gate_proj", ff, d, cfg.MLPBias); return },
			func() (err error) { ly.up, err = l.linear(p+"mlp.up_proj", ff, d, cfg.MLPBias); return },
			func() (err error) { ly.down, err = l.linear(p+"mlp.down_proj", d, ff, cfg.MLPBias); return },
		} {
			if err := step(); err != nil {
				return nil, err
			}
		}
	}
	if m.norm, err = l.vec("norm.weight", d); err != nil {
		return nil, err
	}
	if m.head, err = loadHead(l, cfg, m.embed, "lm_head"); err != nil {
		return nil, err
	}
	m.params = l.params
	m.invFreq = ropeInvFreq(cfg)
	if m.embed.DType == safetensors.BF16 {
		// The reference runs a bf16 checkpoint by casting the module to
		// bf16 and back to float32 (model.to(bf16) ... .to(float32)), which
		// rounds the inv_freq buffer to bf16 too; do the same.
		for i, f := range m.invFreq {
			m.invFreq[i] = float64(roundBF16(float32(f)))
		}
	}
	return m, nil
}

// ropeInvFreq returns θ^(-2i/hd) for i < hd/2, rescaled as rope_scaling
// says (HF _compute_default/linear/llama3_parameters), rounded to float32
// like the reference.
func ropeInvFreq(cfg *Config) []float64 {
	hd := cfg.HeadDim
	inv := make([]float64, hd/2)
	for i := range inv {
		inv[i] = float64(float32(1 / math.Pow(cfg.RopeTheta, float64(float32(float64(2*i)/float64(hd))))))
	}
	rs := cfg.RopeScaling
	switch rs.Type {
	case "linear":
		for i := range inv {
			inv[i] /= rs.Factor
		}
	case "llama3":
		lowWavelen := rs.OriginalMaxPositionEmbeddings / rs.LowFreqFactor
		highWavelen := rs.OriginalMaxPositionEmbeddings / rs.HighFreqFactor
		for i, f := range inv {
			wavelen := 2 * math.Pi / f
			switch {
			case wavelen < highWavelen: // high frequency: unchanged
			case wavelen > lowWavelen: // low frequency: divided by factor
				inv[i] = f / rs.Factor
			default: // medium: interpolate
				smooth := (rs.OriginalMaxPositionEmbeddings/wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
				inv[i] = (1-smooth)*f/rs.Factor + smooth*f
			}
		}
	}
	for i := range inv {
		inv[i] = float64(float32(inv[i]))
	}
	return inv
}

// llamaState is one sequence: a KV cache per layer plus scratch buffers.
type llamaState struct {
	pos        int
	kv         []kvCache
	x, xb, xb2 []float32 // [d]
	q, ao, att []float32 // [nq*hd], [nq*hd], [cap] (grows)
	k, v       []float32 // [nkv*hd]
	hb, hb2    []float32 // [ff]
	cos, sin   []float32 // [hd/2]
}

func (s *llamaState) Pos() int { return s.pos }
func (s *llamaState) Reset()   { s.pos = 0 }

func (m *llama) Config() *Config { return m.cfg }
func (m *llama) Close() error    { return m.ck.Close() }

func (m *llama) NewState(capTokens int) State {
	c := m.cfg
	capTokens = max(capTokens, 1)
	s := &llamaState{
		kv: make([]kvCache, c.NumLayers),
		x:  make([]float32, c.HiddenSize), xb: make([]float32, c.HiddenSize), xb2: make([]float32, c.HiddenSize),
		q: make([]float32, c.NumHeads*c.HeadDim), ao: make([]float32, c.NumHeads*c.HeadDim), att: make([]float32, capTokens),
		k: make([]float32, c.NumKVHeads*c.HeadDim), v: make([]float32, c.NumKVHeads*c.HeadDim),
		hb: make([]float32, c.IntermediateSize), hb2: make([]float32, c.IntermediateSize),
		cos: make([]float32, c.HeadDim/2), sin: make([]float32, c.HeadDim/2),
	}
	for i := range s.kv {
		s.kv[i] = newKVCache(capTokens, c.NumKVHeads*c.HeadDim)
	}
	return s
}

func (m *llama) Info() Info {
	c := m.cfg
	return Info{
		Architecture:    c.Architecture,
		Layers:          fmt.Sprintf("%d x (attention %d/%d heads of %d, MLP %d)", c.NumLayers, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize),
		Parameters:      m.params,
		WeightBytes:     m.ck.Bytes(),
		KVBytesPerToken: int64(c.NumLayers) * 2 * int64(c.NumKVHeads*c.HeadDim) * 4,
	}
}

// rope rotates each head of x ([n, hd]) by the position's angles, in the
// rotate-half layout: (x[i], x[i+hd/2]) → (x[i]·cos − x[i+hd/2]·sin, x[i+hd/2]·cos + x[i]·sin).
func rope(x, cos, sin []float32, n, hd int) {
	half := hd / 2
	for h := 0; h < n; h++ {
		v := x[h*hd : (h+1)*hd]
		for i := 0; i < half; i++ {
			a, b := v[i], v[i+half]
			v[i] = a*cos[i] - b*sin[i]
			v[i+half] = b*cos[i] + a*sin[i]
		}
	}
}

// Forward runs one token through the network.
func (m *llama) Forward(st State, token int, logits []float32) {
	s := st.(*llamaState)
	c := m.cfg
	hd, nq, nkv := c.HeadDim, c.NumHeads, c.NumKVHeads
	pos := s.pos
	if pos >= len(s.att) {
		s.att = make([]float32, 2*(pos+1))
	}

	// RoPE angles for this position: θ_i = pos · invFreq_i (float32, as HF).
	for i, f := range m.invFreq {
		a := float32(f) * float32(pos)
		s.cos[i] = float32(math.Cos(float64(a)))
		s.sin[i] = float32(math.Sin(float64(a)))
	}

	m.embed.Row(token, s.x) // x: [d]
	for l := range m.layers {
		ly := &m.layers[l]
		kv := &s.kv[l]

		// Attention block: x += o(attend(rope(q), rope(k), v)).
		RMSNorm(s.xb, s.x, ly.attnNorm, c.NormEps) // xb: [d]
		MatVec(s.q, ly.q, s.xb)                    // q: [nq, hd]
		MatVec(s.k, ly.k, s.xb)                    // k: [nkv, hd]
		MatVec(s.v, ly.v, s.xb)                    // v: [nkv, hd]
		rope(s.q, s.cos, s.sin, nq, hd)
		rope(s.k, s.cos, s.sin, nkv, hd)
		kv.ensure(pos)
		copy(kv.k[pos*kv.stride:], s.k) // cache: [pos+1, nkv, hd]
		copy(kv.v[pos*kv.stride:], s.v)
		attend(s.ao, s.q, kv.k, kv.v, s.att, pos+1, nq, nkv, hd) // ao: [nq, hd]
		MatVec(s.xb2, ly.o, s.ao)                                // xb2: [d]
		add(s.x, s.xb2)

		// MLP block: x += down(silu(gate(xb)) ⊙ up(xb)).
		RMSNorm(s.xb, s.x, ly.mlpNorm, c.NormEps)
		MatVec(s.hb, ly.gate, s.xb) // hb: [ff]
		MatVec(s.hb2, ly.up, s.xb)  // hb2: [ff]
		for i, g := range s.hb {
			s.hb[i] = silu(g) * s.hb2[i]
		}
		MatVec(s.xb2, ly.down, s.hb) // xb2: [d]
		add(s.x, s.xb2)
	}
	s.pos++
	if logits == nil {
		return
	}
	RMSNorm(s.x, s.x, m.norm, c.NormEps)
	MatVec(logits, m.head, s.x) // logits: [V]
}
