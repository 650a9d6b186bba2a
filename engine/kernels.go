package engine

import (
	"math"
	"sync"
)

// parallelMinWork is the number of multiply-adds below which a matmul runs
// on the calling goroutine: splitting small matrices costs more than it saves.
const parallelMinWork = 1 << 18

// workers is a fixed pool of goroutines that split matmuls by rows; a job
// is sent by value, so dispatching allocates nothing.
type workers struct {
	n    int
	jobs chan mmJob
}

type mmJob struct {
	out, x [][]float32
	w      *Mat
	r0, r1 int
	wg     *sync.WaitGroup
}

func newWorkers(n int) *workers {
	p := &workers{n: max(n, 1)}
	if p.n > 1 {
		p.jobs = make(chan mmJob)
		for i := 0; i < p.n; i++ {
			go func() {
				for j := range p.jobs {
					j.w.mulRows(j.out, j.x, j.r0, j.r1)
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

// matmul computes out[t] = W·x[t] (+ b) for every token t: x[t] has Cols
// values, out[t] Rows. Each weight row is read (and converted from bf16/f16)
// once for all tokens. Large products are split by rows over the workers.
func (p *workers) matmul(out [][]float32, l Linear, x [][]float32) {
	w := l.W
	if p.jobs == nil || w.Rows*w.Cols*len(x) < parallelMinWork || w.Rows < 2*p.n {
		w.mulRows(out, x, 0, w.Rows)
	} else {
		var wg sync.WaitGroup
		chunk := (w.Rows + p.n - 1) / p.n
		for r0 := 0; r0 < w.Rows; r0 += chunk {
			wg.Add(1)
			p.jobs <- mmJob{out: out, x: x, w: w, r0: r0, r1: min(r0+chunk, w.Rows), wg: &wg}
		}
		wg.Wait()
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

// RMSNorm sets out = x / sqrt(mean(x²) + eps) * w (w may be nil: no weight).
// out may alias x.
func RMSNorm(out, x, w []float32, eps float64) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	scale := float32(1 / math.Sqrt(float64(ss/float32(len(x)))+eps))
	if w == nil {
		for i, v := range x {
			out[i] = v * scale
		}
		return
	}
	for i, v := range x {
		out[i] = (v * scale) * w[i]
	}
}

// silu is x·sigmoid(x).
func silu(x float32) float32 { return x / (1 + float32(math.Exp(float64(-x)))) }

// softplus is log(1+e^x), with PyTorch's threshold of 20.
func softplus(x float32) float32 {
	if x > 20 {
		return x
	}
	return float32(math.Log1p(math.Exp(float64(x))))
}

// softmax normalizes x in place.
func softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	mx := x[0]
	for _, v := range x[1:] {
		if v > mx {
			mx = v
		}
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}

// add sets dst += x.
func add(dst, x []float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += x[i]
	}
}

// attend computes one query position's grouped-query attention over a KV
// cache: for q head j (kv head j/(nq/nkv)), softmax(q_j·k_t/√hd) over
// t < n, then o_j = Σ p_t v_t.
//
//	q, out: [nq, hd]; keys, vals: [n, nkv, hd] (rows of a cache); att: [n] scratch
func attend(out, q, keys, vals, att []float32, n, nq, nkv, hd int) {
	group := nq / nkv
	scale := float32(1 / math.Sqrt(float64(hd)))
	stride := nkv * hd
	for j := 0; j < nq; j++ {
		kvh := j / group
		qj := q[j*hd : (j+1)*hd]
		a := att[:n]
		for t := 0; t < n; t++ {
			a[t] = dotF32(qj, keys[t*stride+kvh*hd:t*stride+kvh*hd+hd]) * scale
		}
		softmax(a)
		oj := out[j*hd : (j+1)*hd]
		clear(oj)
		for t := 0; t < n; t++ {
			p := a[t]
			v := vals[t*stride+kvh*hd : t*stride+kvh*hd+hd]
			for i := range oj {
				oj[i] += p * v[i]
			}
		}
	}
}

// kvCache holds one attention layer's keys and values for one sequence:
// [cap, nkv, hd] each, grown by doubling when a sequence outlives its
// initial capacity.
type kvCache struct {
	k, v   []float32
	stride int // nkv*hd
}

func newKVCache(capTokens, stride int) kvCache {
	return kvCache{k: make([]float32, capTokens*stride), v: make([]float32, capTokens*stride), stride: stride}
}

// ensure makes room for position pos.
func (c *kvCache) ensure(pos int) {
	if (pos+1)*c.stride <= len(c.k) {
		return
	}
	n := max(2*len(c.k), (pos+1)*c.stride)
	k := make([]float32, n)
	v := make([]float32, n)
	copy(k, c.k)
	copy(v, c.v)
	c.k, c.v = k, v
}
