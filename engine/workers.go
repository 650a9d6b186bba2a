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

// mmTask is one matmul split by rows.
type mmTask struct {
	out, x [][]float32
	w      *Mat
}

func (t *mmTask) run(_, a, b int) { t.w.mulRows(t.out, t.x, a, b) }

// matmul computes out[t] = W·x[t] (+ b) for every token t: x[t] has Cols
// values, out[t] Rows. Each weight row is read (and converted from bf16/f16)
// once for all tokens. Large products are split by rows over the workers.
func (p *workers) matmul(out [][]float32, l Linear, x [][]float32) {
	w := l.W
	if p.jobs == nil || w.Rows*w.Cols*len(x) < parallelMinWork || w.Rows < 8*p.n {
		w.mulRows(out, x, 0, w.Rows)
	} else {
		t, _ := p.mm.Get().(*mmTask)
		if t == nil {
			t = new(mmTask)
		}
		t.out, t.x, t.w = out, x, w
		p.parallel(t, w.Rows, 4)
		t.out, t.x, t.w = nil, nil, nil
		p.mm.Put(t)
	}
	if l.B != nil {
		for _, o := range out {
			add(o[:len(l.B)], l.B)
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
