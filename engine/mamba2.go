package engine

import (
	"fmt"
	"math"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// mamba2 runs Mamba2ForCausalLM: every layer is h = h + Mixer(RMSNorm(h)),
// with the Mamba-2 mixer below. Nemotron-H reuses the mixer.
type mamba2 struct {
	base
	embed  *kernel.Mat // [V, d]
	norms  [][]float32
	mixers []*mamba2Mixer
	normF  []float32     // [d]
	lmHead kernel.Linear // [V, d]
}

// mamba2Mixer holds one Mamba-2 mixer's weights. With DI = H·P inner
// channels, G groups of N-wide B/C, and CD = DI + 2·G·N conv channels:
type mamba2Mixer struct {
	h, p, n, g, k int           // heads, head dim, state size, groups, conv kernel
	inProj        kernel.Linear // [DI + CD + H, d]: rows z | x | B | C | dt
	convW         []float32     // [CD, K] depthwise causal conv
	convB         []float32     // [CD] or nil
	dtBias        []float32     // [H]
	a             []float32     // [H] = -exp(A_log)
	d             []float32     // [H] skip connection
	norm          []float32     // [DI] gated RMSNorm weight
	normGroups    int           // gated RMSNorm groups (G: norm per group of DI/G channels)
	dtMin, dtMax  float32       // time step clamp (0, +Inf: none)
	outProj       kernel.Linear // [d, DI]
	eps           float64
	ones          []float32 // [max(CD, DI)] of 1: silu(v) = swiglu(v, 1)
}

// loadMamba2Mixer loads the mixer under prefix p. Its gated RMSNorm runs per
// group of DI/G channels, for Mamba2ForCausalLM as for Nemotron-H: as
// mamba_ssm's RMSNormGated(group_size=DI/G), vLLM, llama.cpp and
// transformers since its Mamba-Codestral fix do.
func loadMamba2Mixer(l *weightLoader, cfg *Config, p string) (*mamba2Mixer, error) {
	mx := &mamba2Mixer{h: cfg.MambaHeads, p: cfg.MambaHeadDim, n: cfg.StateSize, g: cfg.NGroups, k: cfg.ConvKernel,
		normGroups: cfg.NGroups, eps: cfg.NormEps, dtMin: float32(cfg.DtMin), dtMax: float32(cfg.DtMax)}
	di, cd, d := cfg.DInner(), cfg.ConvDim(), cfg.HiddenSize
	mx.ones = make([]float32, max(cd, di))
	for i := range mx.ones {
		mx.ones[i] = 1
	}
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

// forward runs the mixer over a micro-batch: out[i] = Mixer(x[i]) for
// token i of the sequence whose state is st[i]. The projections run over
// all tokens at once; the conv is split by channels and the scan by heads
// over the workers, each taking its share through the tokens in order;
// the gate and norm are split by tokens.
func (mx *mamba2Mixer) forward(p *kernel.Workers, ws *workspace, out, x [][]float32, st []*mambaState) {
	H, P, G, K := mx.h, mx.p, mx.g, mx.k
	N := mx.n
	DI := H * P
	CD := DI + 2*G*N
	n := len(x)
	zx, ys, xcs := ws.zx.v[:n], ws.y.v[:n], ws.xc.v[:n]

	// 1. Input projection: zxbcdt = in_proj·x, split as z | xBC | dt.
	p.MatMul(zx, mx.inProj, x) // [n][DI + CD + H]

	// 2. Causal depthwise conv over the window [conv state (K-1 tokens), xBC],
	//    plus bias, then SiLU (convTask: channels split over the workers).
	ct := &ws.conv
	ct.mx, ct.zx, ct.xc, ct.st = mx, zx, xcs, st
	if n*CD*K < kernel.ParallelMinWork/4 {
		ct.Run(0, 0, CD)
	} else {
		p.Parallel(ct, CD, 16)
	}

	// 3. Selective scan (ssmHead), heads split over the workers.
	t := &ws.scan
	t.mx, t.zx, t.xc, t.y, t.st = mx, zx, xcs, ys, st
	if len(t.dtx) < p.Threads() {
		t.dtx = make([][]float32, p.Threads())
		for i := range t.dtx {
			t.dtx[i] = make([]float32, P)
		}
	}
	if n*H*P*N < kernel.ParallelMinWork/4 {
		t.Run(0, 0, H)
	} else {
		p.Parallel(t, H, 1)
	}

	// 4. Gate, then RMSNorm in normGroups contiguous groups, times weight:
	//    u = y ⊙ silu(z); u_grp /= rms(u_grp); u ⊙= norm.weight (gateTask:
	//    tokens split over the workers).
	gt := &ws.gate
	gt.mx, gt.zx, gt.y = mx, zx, ys
	if n < 2 {
		gt.Run(0, 0, n)
	} else {
		p.Parallel(gt, n, 1)
	}

	// 5. Output projection: out = out_proj·u.
	p.MatMul(out, mx.outProj, ys) // [n][d]
}

// convTask runs the causal conv of a micro-batch for a range of channels,
// token by token in order (tokens of one sequence follow each other in a
// prefill chunk), and shifts those channels of each conv window.
type convTask struct {
	mx     *mamba2Mixer
	zx, xc [][]float32 // [n][DI+CD+H] projections, [n][CD] conv output
	st     []*mambaState
}

func (t *convTask) Run(_, c0, c1 int) {
	mx := t.mx
	K := mx.k
	DI := mx.h * mx.p
	CD := DI + 2*mx.g*mx.n
	for i := range t.xc {
		s := t.st[i]
		xBC := t.zx[i][DI : DI+CD] // [CD] conv input: x | B | C
		xc := t.xc[i]              // [CD]
		for c := c0; c < c1; c++ {
			w := mx.convW[c*K : (c+1)*K]
			var acc float32
			if mx.convB != nil {
				acc = mx.convB[c]
			}
			for k := 0; k < K-1; k++ {
				acc += w[k] * s.conv[k*CD+c]
			}
			acc += w[K-1] * xBC[c]
			xc[c] = acc
		}
		kernel.SwiGLU(xc[c0:c1], mx.ones[c0:c1]) // silu(acc)·1
		// Shift the window left and append the raw input.
		if K > 1 {
			for k := 0; k < K-2; k++ {
				copy(s.conv[k*CD+c0:k*CD+c1], s.conv[(k+1)*CD+c0:(k+1)*CD+c1])
			}
			copy(s.conv[(K-2)*CD+c0:(K-2)*CD+c1], xBC[c0:c1])
		}
	}
}

// gateTask runs the gate and grouped RMSNorm for a range of tokens.
type gateTask struct {
	mx    *mamba2Mixer
	zx, y [][]float32 // [n][DI+CD+H] projections (z first), [n][DI] scan output
}

func (t *gateTask) Run(_, i0, i1 int) {
	mx := t.mx
	DI := mx.h * mx.p
	gs := DI / mx.normGroups
	for i := i0; i < i1; i++ {
		z := t.zx[i][:DI] // [DI] gate, overwritten with y ⊙ silu(z)
		y := t.y[i]       // [DI]
		kernel.SwiGLU(z, y)
		for grp := 0; grp < mx.normGroups; grp++ {
			kernel.RMSNorm(y[grp*gs:(grp+1)*gs], z[grp*gs:(grp+1)*gs], mx.norm[grp*gs:(grp+1)*gs], mx.eps)
		}
	}
}

// scanTask runs the selective scan of a micro-batch for a range of heads.
type scanTask struct {
	mx        *mamba2Mixer
	zx, xc, y [][]float32 // [n][DI+CD+H] projections, [n][CD] conv output, [n][DI] scan output
	st        []*mambaState
	dtx       [][]float32 // per part: [P] scratch
}

func (t *scanTask) Run(part, h0, h1 int) {
	mx := t.mx
	DI := mx.h * mx.p
	CD := DI + 2*mx.g*mx.n
	for i := range t.xc {
		for h := h0; h < h1; h++ {
			mx.ssmHead(t.st[i].ssm, t.xc[i], t.zx[i][DI+CD:], t.y[i], h, t.dtx[part])
		}
	}
}

// ssmHead is one token's scan step for head h (B/C group g = h / (H/G)):
//
//	dt = clamp(softplus(dt_raw + dt_bias), time_step_limit), dA = exp(dt·A)
//	S[h,p,:] = dA·S[h,p,:] + dt·x[h,p]·B[g,:]
//	y[h,p]   = S[h,p,:]·C[g,:] + D[h]·x[h,p]
//
// xc is the conv output x | B | C, dtr the raw time steps [H], ssm the
// state [H, P, N]; dtx is [P] scratch.
func (mx *mamba2Mixer) ssmHead(ssm, xc, dtr, y []float32, h int, dtx []float32) {
	H, P, N, G := mx.h, mx.p, mx.n, mx.g
	DI := H * P
	xs := xc[:DI]              // [H, P]
	B := xc[DI : DI+G*N]       // [G, N]
	C := xc[DI+G*N : DI+2*G*N] // [G, N]
	g := h / (H / G)
	Bg := B[g*N : (g+1)*N]
	Cg := C[g*N : (g+1)*N]
	dt := min(max(kernel.Softplus(dtr[h]+mx.dtBias[h]), mx.dtMin), mx.dtMax)
	dA := float32(math.Exp(float64(dt * mx.a[h])))
	S := ssm[h*P*N : (h+1)*P*N] // [P, N]
	yh := y[h*P : (h+1)*P]
	xh := xs[h*P : (h+1)*P]
	for pp, xv := range xh {
		dtx[pp] = dt * xv
	}
	kernel.SSMRows(S, N, P, dA, dtx, Bg, Cg, yh)
	for pp, xv := range xh {
		yh[pp] += mx.d[h] * xv
	}
}

func newMamba2(cfg *Config, ck *safetensors.Checkpoint, opts Options) (*mamba2, error) {
	d := cfg.HiddenSize
	l := &weightLoader{ck: ck, prefixes: []string{"backbone.", "model.", ""}, quantize: opts.Quantize == "int8", dot: opts.Matmul == "bf16"}
	m := &mamba2{base: newBase(cfg, ck, opts)}
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
		mx, err := loadMamba2Mixer(l, cfg, p+"mixer.")
		if err != nil {
			return nil, err
		}
		m.norms = append(m.norms, norm)
		m.mixers = append(m.mixers, mx)
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

// loadEmbeddings finds the embedding matrix under its Mamba/Nemotron-H names.
func loadEmbeddings(l *weightLoader, cfg *Config) (*kernel.Mat, error) {
	for _, name := range []string{"embeddings.weight", "embedding.weight", "embed_tokens.weight"} {
		if l.has(name) {
			return l.mat(name, cfg.VocabSize, cfg.HiddenSize)
		}
	}
	return nil, fmt.Errorf("missing tensor embeddings.weight (tried prefixes %q)", l.prefixes)
}

// mamba2State is one sequence of a Mamba2ForCausalLM model: a constant
// conv window and SSM state per layer.
type mamba2State struct {
	pos     int
	layers  []mambaState
	pooling // for Embed
}

func (s *mamba2State) Pos() int { return s.pos }
func (s *mamba2State) Reset() {
	s.pos = 0
	for i := range s.layers {
		s.layers[i].reset()
	}
}

// newState allocates a sequence state; its size does not depend on capTokens.
func (m *mamba2) newState(capTokens int) state {
	s := &mamba2State{layers: make([]mambaState, m.cfg.NumLayers)}
	for i := range s.layers {
		s.layers[i] = newMambaState(m.cfg)
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
		WeightBytes: m.weightBytes,
		StateBytes:  int64(c.NumLayers) * mambaStateBytes(c),
	}
}

// forward runs one micro-batch of n <= maxChunk tokens through the network.
func (m *mamba2) forward(states []state, tokens []int, logits [][]float32) {
	c := m.cfg
	n := len(tokens)
	ws := m.getWS()
	defer m.putWS(ws)
	x, xb, xb2 := ws.x.v[:n], ws.xb.v[:n], ws.xb2.v[:n] // [n][d]

	for i, tok := range tokens {
		m.embed.Row(tok, x[i])
	}
	for l, mx := range m.mixers {
		for i := range x {
			kernel.RMSNorm(xb[i], x[i], m.norms[l], c.NormEps)
			ws.ms[i] = &states[i].(*mamba2State).layers[l]
		}
		mx.forward(m.workers, ws, xb2, xb, ws.ms[:n]) // [n][d]
		for i := range x {
			kernel.Add(x[i], xb2[i])
		}
	}
	for _, s := range states {
		s.(*mamba2State).pos++
	}
	m.head(ws, states, x, m.normF, m.lmHead, logits) // [n][V]; and pooled embeddings
}
