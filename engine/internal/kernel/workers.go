package kernel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ParallelMinWork is the number of multiply-adds below which a matmul runs
// on the calling goroutine: splitting small matrices costs more than it
// saves. Other work that Parallel splits uses a fraction of it.
const ParallelMinWork = 1 << 18

// Task is work split into index ranges: Run(part, a, b) handles items
// [a, b) as part number part (< the pool's Threads), on one goroutine.
type Task interface {
	Run(part, a, b int)
}

// Workers is a fixed pool of goroutines (one per thread, the caller being
// one of them) that run tasks split into ranges. The ranges are claimed
// from a shared counter, several per thread, so that a thread the OS
// preempts (a shared machine) delays a step by a chunk, not by its whole
// share. A worker spins for a short while after a job before it sleeps,
// so the jobs of one forward pass find it running on its own core (a
// goroutine woken from a channel first queues behind the waker). Tasks
// live in pools, so dispatching allocates nothing.
type Workers struct {
	n     int
	ws    []*worker
	mu    sync.Mutex // one parallel call at a time uses the helpers
	mm    sync.Pool  // *mmTask
	group sync.Pool  // *claim
	quit  chan struct{}
}

// worker is one helper goroutine's mailbox.
type worker struct {
	seq      atomic.Uint64 // bumped for each new job
	job      workJob
	sleeping atomic.Bool
	wake     chan struct{} // buffered (1)
}

type workJob struct {
	t    Task
	part int
	c    *claim
}

// spinFor is how long an idle worker polls for its next job.
const spinFor = 200 * time.Microsecond

// claim hands out the ranges of one parallel call.
type claim struct {
	next    atomic.Int64
	n       int64
	chunk   int64
	pending atomic.Int32 // helpers still working
}

// waitSpins is how many polls the caller of parallel makes for its helpers
// between yields of its thread (runtime.Gosched).
const waitSpins = 256

// work runs ranges of t as part until none is left.
func (c *claim) work(t Task, part int) {
	for {
		a := c.next.Add(c.chunk) - c.chunk
		if a >= c.n {
			return
		}
		t.Run(part, int(a), int(min(a+c.chunk, c.n)))
	}
}

// NewWorkers starts a pool of n threads (at least one): the caller of each
// call and n-1 goroutines, which live until Close.
func NewWorkers(n int) *Workers {
	p := &Workers{n: max(n, 1), quit: make(chan struct{})}
	for i := 0; i < p.n-1; i++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.ws = append(p.ws, w)
		go w.loop(p.quit)
	}
	return p
}

func (w *worker) loop(quit chan struct{}) {
	var seen uint64
	for {
		// Spin a while for the next job, then sleep until woken.
		start := time.Now()
		for i := 0; w.seq.Load() == seen; i++ {
			if i&63 == 63 && time.Since(start) > spinFor {
				w.sleeping.Store(true)
				if w.seq.Load() == seen {
					select {
					case <-w.wake:
					case <-quit:
						return
					}
				}
				w.sleeping.Store(false)
				start = time.Now()
			}
		}
		seen = w.seq.Load()
		j := w.job
		j.c.work(j.t, j.part)
		j.c.pending.Add(-1)
	}
}

// post gives w a job.
func (w *worker) post(j workJob) {
	w.job = j
	w.seq.Add(1)
	if w.sleeping.Load() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Threads is the number of threads the pool splits work over (the
// caller's included).
func (p *Workers) Threads() int { return p.n }

// Close stops the pool's goroutines.
func (p *Workers) Close() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
}

// chunksPerThread is how many ranges each thread takes on average.
const chunksPerThread = 4

// Parallel runs t over [0, n) in ranges whose bounds are multiples of
// align (but the last), claimed by the caller and the pool's threads;
// part (< Threads) tells the ranges of one thread apart. It returns when every
// range is done. A call made while another one holds the helpers runs on
// the caller alone.
func (p *Workers) Parallel(t Task, n, align int) {
	if len(p.ws) == 0 || n <= align || !p.mu.TryLock() {
		t.Run(0, 0, n)
		return
	}
	defer p.mu.Unlock()
	chunk := (n + p.n*chunksPerThread - 1) / (p.n * chunksPerThread)
	chunk = max(align, (chunk+align-1)/align*align)
	c, _ := p.group.Get().(*claim)
	if c == nil {
		c = new(claim)
	}
	c.next.Store(0)
	c.n, c.chunk = int64(n), int64(chunk)
	helpers := min(len(p.ws), (n+chunk-1)/chunk-1)
	c.pending.Store(int32(helpers))
	for i := 0; i < helpers; i++ {
		p.ws[i].post(workJob{t: t, part: i + 1, c: c})
	}
	c.work(t, 0)
	// Poll for the helpers instead of sleeping on a WaitGroup: a goroutine
	// parked there is woken onto the helper's P, behind the spinning
	// helper, and this thread's P goes idle and must be woken from a futex
	// (~70 µs per dispatch, 97 dispatches per decoded token of a 0.5B
	// model). The yields let a helper that lost its thread run.
	for i := 1; c.pending.Load() != 0; i++ {
		if i%waitSpins == 0 {
			runtime.Gosched()
		}
	}
	p.group.Put(c)
}

// mmTask is up to three matmuls on the same input, split by rows over
// their concatenated outputs, so that one dispatch covers q, k and v (or
// gate and up).
type mmTask struct {
	ops [3]mmOp
	n   int
	glu bool // ops[0] = gate, ops[1] = up over the same rows (see MatMulGLU)
}

type mmOp struct {
	out [][]float32
	w   *Mat
	x   [][]float32
	xp  *xPack // x laid out for the kernels, or nil
}

func (t *mmTask) Run(_, a, b int) {
	if t.glu {
		gate, up := t.ops[0], t.ops[1]
		gate.w.mulRowsX(gate.out, gate.x, gate.xp, a, b)
		up.w.mulRowsX(up.out, up.x, up.xp, a, b)
		swiglu(gate.out, up.out, a, b)
		return
	}
	off := 0
	for _, op := range t.ops[:t.n] {
		lo, hi := max(a, off), min(b, off+op.w.Rows)
		if lo < hi {
			op.w.mulRowsX(op.out, op.x, op.xp, lo-off, hi-off)
		}
		off += op.w.Rows
	}
}

// MatMul computes out[t] = W·x[t] (+ b) for every token t: x[t] has Cols
// values, out[t] Rows. Each weight row is read (and converted from bf16/f16)
// once for all tokens. Large products are split by rows over the workers.
func (p *Workers) MatMul(out [][]float32, l Linear, x [][]float32) {
	p.matmulN(x, mmOp{out: out, w: l.W}, mmOp{}, mmOp{})
	addBias(out, l.B)
}

// matmul2 computes two products of the same input in one dispatch.
func (p *Workers) matmul2(x [][]float32, o1 [][]float32, l1 Linear, o2 [][]float32, l2 Linear) {
	p.matmulN(x, mmOp{out: o1, w: l1.W}, mmOp{out: o2, w: l2.W}, mmOp{})
	addBias(o1, l1.B)
	addBias(o2, l2.B)
}

// MatMul3 computes three products of the same input in one dispatch.
func (p *Workers) MatMul3(x [][]float32, o1 [][]float32, l1 Linear, o2 [][]float32, l2 Linear, o3 [][]float32, l3 Linear) {
	p.matmulN(x, mmOp{out: o1, w: l1.W}, mmOp{out: o2, w: l2.W}, mmOp{out: o3, w: l3.W})
	addBias(o1, l1.B)
	addBias(o2, l2.B)
	addBias(o3, l3.B)
}

func (p *Workers) matmulN(x [][]float32, a, b, c mmOp) {
	rows, work := 0, 0
	n := 0
	for _, op := range [3]mmOp{a, b, c} {
		if op.w != nil {
			n++
			rows += op.w.Rows
			work += op.w.Rows * op.w.Cols * len(x)
		}
	}
	if len(p.ws) == 0 || work < ParallelMinWork || rows < 8*p.n {
		for _, op := range [3]mmOp{a, b, c} {
			if op.w != nil {
				op.w.mulRows(op.out, x, 0, op.w.Rows)
			}
		}
		return
	}
	t, _ := p.mm.Get().(*mmTask)
	if t == nil {
		t = new(mmTask)
	}
	xp := packFor(x, a.w)
	t.ops, t.n = [3]mmOp{a, b, c}, n
	for i := range t.ops[:n] {
		t.ops[i].x, t.ops[i].xp = x, xp
	}
	p.Parallel(t, rows, panelRows)
	t.ops = [3]mmOp{}
	p.mm.Put(t)
	if xp != nil {
		xPacks.Put(xp)
	}
}

// MatMulGLU sets g[t] = silu(gate·x[t]) ⊙ (up·x[t]) (and u[t] = up·x[t]):
// the two products are split by the same rows over the workers and each
// range applies the activation as soon as both are done, so that the
// elementwise work runs on every thread while the rows are in cache.
// The values are those of matmul2 followed by the activation.
func (p *Workers) MatMulGLU(x [][]float32, g [][]float32, gate Linear, u [][]float32, up Linear) {
	rows := gate.W.Rows
	if gate.B != nil || up.B != nil || up.W.Rows != rows || len(p.ws) == 0 ||
		2*rows*gate.W.Cols*len(x) < ParallelMinWork || rows < 8*p.n {
		p.matmul2(x, g, gate, u, up)
		swiglu(g, u, 0, rows)
		return
	}
	t, _ := p.mm.Get().(*mmTask)
	if t == nil {
		t = new(mmTask)
	}
	xp := packFor(x, gate.W)
	t.ops = [3]mmOp{{out: g, w: gate.W, x: x, xp: xp}, {out: u, w: up.W, x: x, xp: xp}}
	t.n, t.glu = 2, true
	p.Parallel(t, rows, panelRows)
	t.ops, t.glu = [3]mmOp{}, false
	p.mm.Put(t)
	if xp != nil {
		xPacks.Put(xp)
	}
}

// packFor lays out x for the kernels once for every thread of a product
// with w (the other products of the call share w's input width); nil when
// the kernels read x as it is.
func packFor(x [][]float32, w *Mat) *xPack {
	switch {
	case w.pairs && hasDot():
	case w.DType == Q8 && hasQ8() && len(x) > 1:
	case w.packed && !w.pairs && w.DType != Q8 && activeKernel != kernelGo && len(x) > 1:
	default:
		return nil
	}
	xp := xPacks.Get().(*xPack)
	xp.packInputs(x, w)
	return xp
}

// swiglu sets g[t][j] = silu(g[t][j]) · u[t][j] for j in [a, b).
func swiglu(g, u [][]float32, a, b int) {
	for i := range g {
		SwiGLU(g[i][a:b], u[i][a:b])
	}
}

func addBias(out [][]float32, b []float32) {
	if b != nil {
		for _, o := range out {
			Add(o[:len(b)], b)
		}
	}
}
