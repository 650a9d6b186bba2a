package engine

import (
	"fmt"
	"math"

	"github.com/crucible-ml/crucible/engine/safetensors"
)

// mamba2 runs Mamba2ForCausalLM: every layer is h = h + Mixer(RMSNorm(h)),
// with the Mamba-2 mixer below. Nemotron-H reuses the mixer.
type mamba2 struct {
	cfg    *Config
	ck     *safetensors.Checkpoint
	embed  *Mat // [V, d]
	norms  [][]float32
	mixers []*mamba2Mixer
	normF  []float32 // [d]
	head   Linear    // [V, d]
	params int64
}

// mamba2Mixer holds one Mamba-2 mixer's weights. With DI = H·P inner
// channels, G groups of N-wide B/C, and CD = DI + 2·G·N conv channels:
type mamba2Mixer struct {
	h, p, n, g, k int       // heads, head dim, state size, groups, conv kernel
	inProj        Linear    // [DI + CD + H, d]: rows z | x | B | C | dt
	convW         []float32 // [CD, K] depthwise causal conv
	convB         []float32 // [CD] or nil
	dtBias        []float32 // [H]
	a             []float32 // [H] = -exp(A_log)
	d             []float32 // [H] skip connection
	norm          []float32 // [DI] gated RMSNorm weight
	normGroups    int       // gated RMSNorm groups: G for Nemotron-H, 1 for Mamba2ForCausalLM
	outProj       Linear    // [d, DI]
	eps           float64
}

func loadMamba2Mixer(l *weightLoader, cfg *Config, p string, normGroups int) (*mamba2Mixer, error) {
	mx := &mamba2Mixer{h: cfg.MambaHeads, p: cfg.MambaHeadDim, n: cfg.StateSize, g: cfg.NGroups, k: cfg.ConvKernel,
		normGroups: normGroups, eps: cfg.NormEps}
	di, cd, d := cfg.DInner(), cfg.ConvDim(), cfg.HiddenSize
	var err error
	if mx.inProj, err = l.linear(p+"in_proj", di+cd+mx.h, d, cfg.UseProjBias); err != nil {
		return nil, err
	}
	if mx.convW, err = l.vec(p+"conv1d.weight", cd, 1, mx.k); err != nil {
		return nil, err
	}
	if cfg.UseConvBias {
		if mx.convB, err = l.vec(p+"conv1d.bias", cd); err != nil {
			return nil, err
		}
	}
	if mx.dtBias, err = l.vec(p+"dt_bias", mx.h); err != nil {
		return nil, err
	}
	if mx.a, err = l.vec(p+"A_log", mx.h); err != nil {
		return nil, err
	}
	for i, v := range mx.a {
		mx.a[i] = -float32(math.Exp(float64(v)))
	}
	if mx.d, err = l.vec(p+"D", mx.h); err != nil {
		return nil, err
	}
	if mx.norm, err = l.vec(p+"norm.weight", di); err != nil {
		return nil, err
	}
	if mx.outProj, err = l.linear(p+"out_proj", d, di, cfg.UseProjBias); err != nil {
		return nil, err
	}
	return mx, nil
}

// mambaState is one mixer's constant-size recurrent state for one sequence.
type mambaState struct {
	conv []float32 // [K-1, CD]: the last K-1 raw (pre-conv) xBC inputs, oldest first
	ssm  []float32 // [H, P, N]
}

func newMambaState(cfg *Config) mambaState {
	return mambaState{
		conv: make([]float32, (cfg.ConvKernel-1)*cfg.ConvDim()),
		ssm:  make([]float32, cfg.MambaHeads*cfg.MambaHeadDim*cfg.StateSize),
	}
}

func (s *mambaState) reset() { clear(s.conv); clear(s.ssm) }

// mambaStateBytes is the float32 size of one mixer's state.
func mambaStateBytes(cfg *Config) int64 {
	return 4 * int64((cfg.ConvKernel-1)*cfg.ConvDim()+cfg.MambaHeads*cfg.MambaHeadDim*cfg.StateSize)
}

// mambaScratch holds a mixer's per-token temporaries.
type mambaScratch struct {
	zxbcdt []float32 // [DI + CD + H]
	xc     []float32 // [CD] conv output
	y      []float32 // [DI]
}

func newMambaScratch(cfg *Config) mambaScratch {
	return mambaScratch{
		zxbcdt: make([]float32, cfg.DInner()+cfg.ConvDim()+cfg.MambaHeads),
		xc:     make([]float32, cfg.ConvDim()),
		y:      make([]float32, cfg.DInner()),
	}
}

// forward runs the mixer for one token: out[d] = Mixer(x[d]), updating st.
func (mx *mamba2Mixer) forward(out, x []float32, st *mambaState, sc *mambaScratch) {
	H, P, N, G, K := mx.h, mx.p, mx.n, mx.g, mx.k
	DI := H * P
	CD := DI + 2*G*N

	// 1. Input projection: zxbcdt = in_proj·x, split as z | xBC | dt.
	MatVec(sc.zxbcdt, mx.inProj, x)
	z := sc.zxbcdt[:DI]          // [DI] gate
	xBC := sc.zxbcdt[DI : DI+CD] // [CD] conv input: x | B | C
	dtr := sc.zxbcdt[DI+CD:][:H] // [H] raw time steps

	// 2. Causal depthwise conv over the window [conv state (K-1 tokens), xBC],
	//    plus bias, then SiLU. Tap K-1 hits the current token.
	for c := 0; c < CD; c++ {
		w := mx.convW[c*K : (c+1)*K]
		var acc float32
		if mx.convB != nil {
			acc = mx.convB[c]
		}
		for k := 0; k < K-1; k++ {
			acc += w[k] * st.conv[k*CD+c]
		}
		acc += w[K-1] * xBC[c]
		sc.xc[c] = silu(acc)
	}
	// Shift the window left and append the raw input.
	if K > 1 {
		copy(st.conv, st.conv[CD:])
		copy(st.conv[(K-2)*CD:], xBC)
	}
	xs := sc.xc[:DI]              // [H, P]
	B := sc.xc[DI : DI+G*N]       // [G, N]
	C := sc.xc[DI+G*N : DI+2*G*N] // [G, N]

	// 3. Selective scan, one step per head h (B/C group g = h / (H/G)):
	//    dt = softplus(dt_raw + dt_bias), dA = exp(dt·A)
	//    S[h,p,:] = dA·S[h,p,:] + dt·x[h,p]·B[g,:]
	//    y[h,p]   = S[h,p,:]·C[g,:] + D[h]·x[h,p]
	headsPerGroup := H / G
	for h := 0; h < H; h++ {
		g := h / headsPerGroup
		Bg := B[g*N : (g+1)*N]
		Cg := C[g*N : (g+1)*N]
		dt := softplus(dtr[h] + mx.dtBias[h])
		dA := float32(math.Exp(float64(dt * mx.a[h])))
		for p := 0; p < P; p++ {
			xv := xs[h*P+p]
			dtx := dt * xv
			S := st.ssm[(h*P+p)*N : (h*P+p+1)*N]
			var yv float32
			for n := range S {
				S[n] = S[n]*dA + dtx*Bg[n]
				yv += S[n] * Cg[n]
			}
			sc.y[h*P+p] = yv + mx.d[h]*xv
		}
	}

	// 4. Gate, then RMSNorm in normGroups contiguous groups, times weight:
	//    u = y ⊙ silu(z); u_grp /= rms(u_grp); u ⊙= norm.weight
	for i := range sc.y {
		sc.y[i] *= silu(z[i])
	}
	gs := DI / mx.normGroups
	for grp := 0; grp < mx.normGroups; grp++ {
		u := sc.y[grp*gs : (grp+1)*gs]
		RMSNorm(u, u, mx.norm[grp*gs:(grp+1)*gs], mx.eps)
	}

	// 5. Output projection: out = out_proj·u.
	MatVec(out, mx.outProj, sc.y)
}

func newMamba2(cfg *Config, ck *safetensors.Checkpoint) (*mamba2, error) {
	d := cfg.HiddenSize
	l := &weightLoader{ck: ck, prefixes: []string{"backbone.", "model.", ""}}
	m := &mamba2{cfg: cfg, ck: ck}
	var err error
	if m.embed, err = loadEmbeddings(l, cfg); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.NumLayers; i++ {
		p := fmt.Sprintf("layers.%d.", i)
		norm, err := l.vec(p+"norm.weight", d)
		if err != nil {
			return nil, err
		}
		mx, err := loadMamba2Mixer(l, cfg, p+"mixer.", 1)
		if err != nil {
			return nil, err
		}
		m.norms = append(m.norms, norm)
		m.mixers = append(m.mixers, mx)
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

// loadEmbeddings finds the embedding matrix under its Mamba/Nemotron-H names.
func loadEmbeddings(l *weightLoader, cfg *Config) (*Mat, error) {
	for _, name := range []string{"embeddings.weight", "embedding.weight", "embed_tokens.weight"} {
		if l.has(name) {
			return l.mat(name, cfg.VocabSize, cfg.HiddenSize)
		}
	}
	return nil, fmt.Errorf("missing tensor embeddings.weight (tried prefixes %q)", l.prefixes)
}

// mamba2State is one sequence of a Mamba2ForCausalLM model.
type mamba2State struct {
	pos    int
	layers []mambaState
	sc     mambaScratch
	x, xb  []float32 // [d]
	xb2    []float32 // [d]
}

func (s *mamba2State) Pos() int { return s.pos }
func (s *mamba2State) Reset() {
	s.pos = 0
	for i := range s.layers {
		s.layers[i].reset()
	}
}

func (m *mamba2) Config() *Config { return m.cfg }
func (m *mamba2) Close() error    { return m.ck.Close() }

// NewState allocates a sequence state; its size does not depend on capTokens.
func (m *mamba2) NewState(capTokens int) State {
	c := m.cfg
	s := &mamba2State{layers: make([]mambaState, c.NumLayers), sc: newMambaScratch(c),
		x: make([]float32, c.HiddenSize), xb: make([]float32, c.HiddenSize), xb2: make([]float32, c.HiddenSize)}
	for i := range s.layers {
		s.layers[i] = newMambaState(c)
	}
	return s
}

func (m *mamba2) Info() Info {
	c := m.cfg
	return Info{
		Architecture: c.Architecture,
		Layers: fmt.Sprintf("%d x Mamba-2 (%d heads of %d, state %d, %d groups, conv %d)", c.NumLayers,
			c.MambaHeads, c.MambaHeadDim, c.StateSize, c.NGroups, c.ConvKernel),
		Parameters:  m.params,
		WeightBytes: m.ck.Bytes(),
		StateBytes:  int64(c.NumLayers) * mambaStateBytes(c),
	}
}

// Forward runs one token through the network.
func (m *mamba2) Forward(st State, token int, logits []float32) {
	s := st.(*mamba2State)
	c := m.cfg
	m.embed.Row(token, s.x) // x: [d]
	for l, mx := range m.mixers {
		RMSNorm(s.xb, s.x, m.norms[l], c.NormEps)    // xb: [d]
		mx.forward(s.xb2, s.xb, &s.layers[l], &s.sc) // xb2: [d]
		add(s.x, s.xb2)
	}
	s.pos++
	if logits == nil {
		return
	}
	RMSNorm(s.x, s.x, m.normF, c.NormEps)
	MatVec(logits, m.head, s.x) // logits: [V]
}
