package engine

import (
	"sync"
)

// parallelMinWork is the number of multiply-adds below which a matmul runs
// on the calling goroutine: splitting small matrices costs more than it saves.
const parallelMinWork = 1 << 18

// task is work split into index ranges: run(part, a, b) handles items
// [a, b) as part number part (< the pool's size), on one goroutine.
type task interface {
	run(part, a, b int)
}

// workers is a fixed pool of goroutines (one per thread, the caller being
// one of them) that run tasks split into contiguous ranges. A job is sent
// by value and tasks live in pools, so dispatching allocates nothing.
type workers struct {
	n     int
	jobs  chan workJob
	mm    sync.Pool // *mmTask
	group sync.Pool // *sync.WaitGroup
}

type workJob struct {
	t    task
	part int
	a, b int
	wg   *sync.WaitGroup
}

func newWorkers(n int) *workers {
	p := &workers{n: max(n, 1)}
	if p.n > 1 {
		jobs := make(chan workJob, p.n)
		p.jobs = jobs
		for i := 0; i < p.n-1; i++ {
			go func() {
				for j := range jobs {
					j.t.run(j.part, j.a, j.b)
					j.wg.Done()
				}
			}()
		}
	}
	return p
}

func (p *workers) close() {
	if p.jobs != nil {
		close(p.jobs)
		p.jobs = nil
	}
}

// parallel runs t over [0, n) in at most p.n parts whose bounds are
// multiples of align (but the last), the caller running the last part.
// It returns when every part is done.
func (p *workers) parallel(t task, n, align int) {
	parts := p.n
	if p.jobs == nil || n <= align {
		t.run(0, 0, n)
		return
	}
	chunk := (n + parts - 1) / parts
	chunk = (chunk + align - 1) / align * align
	wg, _ := p.group.Get().(*sync.WaitGroup)
	if wg == nil {
		wg = new(sync.WaitGroup)
	}
	part := 0
	a := 0
	for ; a+chunk < n; a += chunk {
		wg.Add(1)
		p.jobs <- workJob{t: t, part: part, a: a, b: a + chunk, wg: wg}
		part++
	}
	t.run(part, a, n)
	wg.Wait()
	p.group.Put(wg)
}

// mmTask is up to three matmuls on the same input, split by rows over
// their concatenated outputs, so that one dispatch covers q, k and v (or
// gate and up).
type mmTask struct {
	ops [3]mmOp
	n   int
}

type mmOp struct {
	out [][]float32
	w   *Mat
	x   [][]float32
}

func (t *mmTask) run(_, a, b int) {
	off := 0
	for _, op := range t.ops[:t.n] {
		lo, hi := max(a, off), min(b, off+op.w.Rows)
		if lo < hi {
			op.w.mulRows(op.out, op.x, lo-off, hi-off)
		}
		off += op.w.Rows
	}
}

// matmul computes out[t] = W·x[t] (+ b) for every token t: x[t] has Cols
// values, out[t] Rows. Each weight row is read (and converted from bf16/f16)
// once for all tokens. Large products are split by rows over the workers.
func (p *workers) matmul(out [][]float32, l Linear, x [][]float32) {
	p.matmulN(x, mmOp{out: out, w: l.W}, mmOp{}, mmOp{})
	addBias(out, l.B)
}

// matmul2 computes two products of the same input in one dispatch.
func (p *workers) matmul2(x [][]float32, o1 [][]float32, l1 Linear, o2 [][]float32, l2 Linear) {
	p.matmulN(x, mmOp{out: o1, w: l1.W}, mmOp{out: o2, w: l2.W}, mmOp{})
	addBias(o1, l1.B)
	addBias(o2, l2.B)
}

// matmul3 computes three products of the same input in one dispatch.
func (p *workers) matmul3(x [][]float32, o1 [][]float32, l1 Linear, o2 [][]float32, l2 Linear, o3 [][]float32, l3 Linear) {
	p.matmulN(x, mmOp{out: o1, w: l1.W}, mmOp{out: o2, w: l2.W}, mmOp{out: o3, w: l3.W})
	addBias(o1, l1.B)
	addBias(o2, l2.B)
	addBias(o3, l3.B)
}

func (p *workers) matmulN(x [][]float32, a, b, c mmOp) {
	rows, work := 0, 0
	n := 0
	for _, op := range [3]mmOp{a, b, c} {
		if op.w != nil {
			n++
			rows += op.w.Rows
			work += op.w.Rows * op.w.Cols * len(x)
		}
	}
	if p.jobs == nil || work < parallelMinWork || rows < 8*p.n {
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
	t.ops, t.n = [3]mmOp{a, b, c}, n
	for i := range t.ops[:n] {
		t.ops[i].x = x
	}
	p.parallel(t, rows, 4)
	t.ops = [3]mmOp{}
	p.mm.Put(t)
}

func addBias(out [][]float32, b []float32) {
	if b != nil {
		for _, o := range out {
			add(o[:len(b)], b)
		}
	}
}

// MatVec computes out = W·x (+ b) for one vector, on the calling goroutine.
func MatVec(out []float32, l Linear, x []float32) {
	o, in := [1][]float32{out}, [1][]float32{x}
	l.W.mulRows(o[:], in[:], 0, l.W.Rows)
	if l.B != nil {
		add(out[:len(l.B)], l.B)
	}
}
