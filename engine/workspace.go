package engine

import (
	"runtime"
	"sync"

	"github.com/crucible-ml/crucible/engine/internal/kernel"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// maxChunk is the number of tokens one forward micro-batch holds: a prompt
// is prefilled in chunks of this many tokens, and a decode step over more
// sequences runs in groups of this size. Every weight row is read once per
// micro-batch, so batching divides the memory traffic of the weights.
const maxChunk = kernel.MaxTokens

// rows is a [n, width] buffer with a per-token view of each row.
type rows struct {
	buf []float32
	v   [][]float32
}

func newRows(n, width int) rows {
	r := rows{buf: make([]float32, n*width), v: make([][]float32, n)}
	for i := range r.v {
		r.v[i] = r.buf[i*width : (i+1)*width : (i+1)*width]
	}
	return r
}

// workspace holds the activations of one micro-batch; one is taken from
// the model's pool per forward call, so forward passes allocate nothing.
type workspace struct {
	x, xb, xb2 rows      // [n, d] residual stream, normed input, layer output
	q, ao      rows      // [n, nq*hd] queries, attention output
	k, v       rows      // [n, nkv*hd]
	hb, hb2    rows      // [n, ff] MLP hidden
	zx, y      rows      // [n, DI+CD+H] Mamba in_proj output, [n, DI] scan output
	xc         rows      // [n, CD] Mamba conv output
	cos, sin   []float32 // [hd/2] RoPE angles of one position
	pos        []int     // [n] position of each token in its sequence
	headIn     [][]float32
	headOut    [][]float32
	attn       kernel.Attention
	scan       scanTask
	conv       convTask
	gate       gateTask
	ms         [maxChunk]*mambaState // the micro-batch's states of one Mamba layer
}

func newWorkspace(c *Config) *workspace {
	n := maxChunk
	ws := &workspace{
		x: newRows(n, c.HiddenSize), xb: newRows(n, c.HiddenSize), xb2: newRows(n, c.HiddenSize),
		q: newRows(n, c.NumHeads*c.HeadDim), ao: newRows(n, c.NumHeads*c.HeadDim),
		k: newRows(n, c.NumKVHeads*c.HeadDim), v: newRows(n, c.NumKVHeads*c.HeadDim),
		hb: newRows(n, c.IntermediateSize), hb2: newRows(n, c.IntermediateSize),
		cos: make([]float32, c.HeadDim/2), sin: make([]float32, c.HeadDim/2),
		pos: make([]int, n), headIn: make([][]float32, 0, n), headOut: make([][]float32, 0, n),
		attn: kernel.Attention{KV: make([]*kernel.KVCache, n), Ctx: make([]int, n)},
	}
	if c.MambaHeads > 0 {
		ws.zx = newRows(n, c.DInner()+c.ConvDim()+c.MambaHeads)
		ws.y = newRows(n, c.DInner())
		ws.xc = newRows(n, c.ConvDim())
	}
	return ws
}

// base holds what every architecture shares: config, mapped weights, the
// matmul workers and the workspace pool.
type base struct {
	cfg     *Config
	ck      *safetensors.Checkpoint
	workers *kernel.Workers
	wsPool  sync.Pool
	params  int64
	// weightBytes is the size of the weights as held (after quantization).
	weightBytes int64
	kvBF16      bool // KV caches in bfloat16 (Options.KVCache)
}

func newBase(cfg *Config, ck *safetensors.Checkpoint, opts Options) base {
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return base{cfg: cfg, ck: ck, workers: kernel.NewWorkers(threads), kvBF16: opts.KVCache == "bf16"}
}

func (b *base) Config() *Config { return b.cfg }

// Close stops the workers and unmaps the weights.
func (b *base) Close() error {
	b.workers.Close()
	return b.ck.Close()
}

func (b *base) getWS() *workspace {
	if ws, ok := b.wsPool.Get().(*workspace); ok {
		return ws
	}
	return newWorkspace(b.cfg)
}

func (b *base) putWS(ws *workspace) { b.wsPool.Put(ws) }

// forwardAll feeds tokens[i] to states[i] (see Model.forward), in
// successive micro-batches of at most maxChunk tokens.
func forwardAll(m Model, states []state, tokens []int, logits [][]float32) {
	for a := 0; a < len(tokens); a += maxChunk {
		b := min(a+maxChunk, len(tokens))
		var lg [][]float32
		if logits != nil {
			lg = logits[a:b]
		}
		m.forward(states[a:b], tokens[a:b], lg)
	}
}

// positions sets pos[i] to the position of token i in its sequence: the
// state's length plus the earlier tokens of the same state in the batch.
func positions(pos []int, states []state) {
	for i, s := range states {
		p := s.Pos()
		for j := 0; j < i; j++ {
			if states[j] == s {
				p++
			}
		}
		pos[i] = p
	}
}

// head applies the final norm and the output head to the tokens that want
// logits (logits[i] != nil), writing straight into the caller's slices,
// and adds the normed hidden state of tokens whose state pools one (see
// Embed) to that sum. states may be nil (nothing pooled).
func (b *base) head(ws *workspace, states []state, x [][]float32, norm []float32, head kernel.Linear, logits [][]float32) {
	ws.headIn, ws.headOut = ws.headIn[:0], ws.headOut[:0]
	for i := range x {
		var l []float32
		if logits != nil {
			l = logits[i]
		}
		var p *pooling
		if states != nil {
			p = states[i].(pooler).pool()
		}
		pooled := p != nil && p.sum != nil
		if l == nil && !pooled {
			continue
		}
		kernel.RMSNorm(x[i], x[i], norm, b.cfg.NormEps)
		if pooled {
			kernel.Add(p.sum, x[i])
			p.n++
		}
		if l != nil {
			ws.headIn = append(ws.headIn, x[i])
			ws.headOut = append(ws.headOut, l[:b.cfg.VocabSize])
		}
	}
	if len(ws.headIn) > 0 {
		b.workers.MatMul(ws.headOut, head, ws.headIn) // [n, V]
	}
}
