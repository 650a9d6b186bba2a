package engine

import (
	"fmt"
	"math"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// llama runs LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM (the
// same network, plus q/k/v biases for Qwen2 and a sliding window for
// Mistral): pre-norm Transformer blocks with RoPE, grouped-query attention
// and a SwiGLU MLP.
type llama struct {
	base
	embed   *kernel.Mat // [V, d]
	layers  []llamaLayer
	norm    []float32     // [d]
	lmHead  kernel.Linear // [V, d]
	invFreq []float64     // [hd/2] RoPE inverse frequencies
}

type llamaLayer struct {
	attnNorm, mlpNorm []float32     // [d]
	q, k, v, o        kernel.Linear // q [nq*hd, d], k/v [nkv*hd, d], o [d, nq*hd]
	gate, up, down    kernel.Linear // gate/up [ff, d], down [d, ff]
}

func newLlama(cfg *Config, ck *safetensors.Checkpoint, opts Options) (*llama, error) {
	d, ff, hd := cfg.HiddenSize, cfg.IntermediateSize, cfg.HeadDim
	nq, nkv := cfg.NumHeads, cfg.NumKVHeads
	l := &weightLoader{ck: ck, prefixes: []string{"model.", ""}, quantize: opts.Quantize == "int8", dot: opts.Matmul == "bf16"}
	m := &llama{base: newBase(cfg, ck, opts), layers: make([]llamaLayer, cfg.NumLayers)}
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
	if m.lmHead, err = loadHead(l, cfg, m.embed, "lm_head"); err != nil {
		return nil, err
	}
	m.params = l.params
	m.weightBytes = l.weightBytes()
	l.ck.Evict() // the packed matrices are copies
	m.invFreq = ropeInvFreq(cfg)
	if m.embed.DType == kernel.BF16 {
		// The reference runs a bf16 checkpoint by casting the module to
		// bf16 and back to float32 (model.to(bf16) ... .to(float32)), which
		// rounds the inv_freq buffer to bf16 too; do the same.
		for i, f := range m.invFreq {
			m.invFreq[i] = float64(kernel.RoundBF16(float32(f)))
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

// llamaState is one sequence: a KV cache per layer.
type llamaState struct {
	pos     int
	kv      []kernel.KVCache // per layer: [cap, nkv, hd] keys and values
	pooling                  // for Embed
}

func (s *llamaState) Pos() int { return s.pos }
func (s *llamaState) Reset()   { s.pos = 0 }

func (m *llama) newState(capTokens int) state {
	c := m.cfg
	s := &llamaState{kv: make([]kernel.KVCache, c.NumLayers)}
	for i := range s.kv {
		s.kv[i] = kernel.NewKVCache(max(capTokens, 1), c.NumKVHeads*c.HeadDim, m.kvBF16)
	}
	return s
}

func (m *llama) Info() Info {
	c := m.cfg
	return Info{
		Architecture:    c.Architecture,
		Layers:          fmt.Sprintf("%d x (attention %d/%d heads of %d, MLP %d)", c.NumLayers, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize),
		Parameters:      m.params,
		WeightBytes:     m.weightBytes,
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

// forward runs one micro-batch of n <= maxChunk tokens through the network.
// Matmuls run over all n tokens at once; attention runs token by token, in
// order, against each token's own sequence cache.
func (m *llama) forward(states []state, tokens []int, logits [][]float32) {
	c := m.cfg
	hd, nq, nkv := c.HeadDim, c.NumHeads, c.NumKVHeads
	n := len(tokens)
	ws := m.getWS()
	defer m.putWS(ws)
	pos := ws.pos[:n]
	positions(pos, states)
	x, xb, xb2 := ws.x.v[:n], ws.xb.v[:n], ws.xb2.v[:n] // [n][d]
	q, ao, k, v := ws.q.v[:n], ws.ao.v[:n], ws.k.v[:n], ws.v.v[:n]
	hb, hb2 := ws.hb.v[:n], ws.hb2.v[:n] // [n][ff]

	for i, tok := range tokens {
		m.embed.Row(tok, x[i])
	}
	for l := range m.layers {
		ly := &m.layers[l]

		// Attention block: x += o(attend(rope(q), rope(k), v)).
		for i := range x {
			kernel.RMSNorm(xb[i], x[i], ly.attnNorm, c.NormEps)
		}
		m.workers.MatMul3(xb, q, ly.q, k, ly.k, v, ly.v) // q [n][nq*hd], k, v [n][nkv*hd]
		for i := range tokens {
			kv := &states[i].(*llamaState).kv[l]
			// RoPE angles of this position: θ_j = pos · invFreq_j (float32, as HF).
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
		m.workers.Attend(&ws.attn, n)   // ao[i] = attention of q[i] over its cache: [n][nq*hd]
		m.workers.MatMul(xb2, ly.o, ao) // [n][d]
		for i := range x {
			kernel.Add(x[i], xb2[i])
		}

		// MLP block: x += down(silu(gate(xb)) ⊙ up(xb)).
		for i := range x {
			kernel.RMSNorm(xb[i], x[i], ly.mlpNorm, c.NormEps)
		}
		m.workers.MatMulGLU(xb, hb, ly.gate, hb2, ly.up) // [n][ff] each, hb = silu(gate) ⊙ up
		m.workers.MatMul(xb2, ly.down, hb)               // [n][d]
		for i := range x {
			kernel.Add(x[i], xb2[i])
		}
	}
	for i, st := range states {
		st.(*llamaState).pos = pos[i] + 1
	}
	m.head(ws, states, x, m.norm, m.lmHead, logits) // [n][V]; and pooled embeddings
}
