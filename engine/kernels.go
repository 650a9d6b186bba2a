package engine

import (
	"math"
	"runtime"
	"sync"
)

// parallelMinWork is the number of weight elements below which a matvec
// runs on the calling goroutine: splitting small matrices costs more than
// it saves.
const parallelMinWork = 1 << 18

// MatVec computes out = W·x (+ b): out[Rows], x[Cols]. Large matrices are
// split by rows across GOMAXPROCS goroutines.
func MatVec(out []float32, l Linear, x []float32) {
	w := l.W
	out = out[:w.Rows]
	workers := runtime.GOMAXPROCS(0)
	if workers <= 1 || w.Rows*w.Cols < parallelMinWork || w.Rows < 2*workers {
		w.dotRows(out, x, 0, w.Rows)
	} else {
		parallelRows(out, w, x, workers)
	}
	if l.B != nil {
		for i, b := range l.B {
			out[i] += b
		}
	}
}

// parallelRows splits W·x by rows across workers goroutines. It is its own
// function so that the closure's captures do not make MatVec allocate on
// the small-matrix path.
func parallelRows(out []float32, w *Mat, x []float32, workers int) {
	var wg sync.WaitGroup
	chunk := (w.Rows + workers - 1) / workers
	for r0 := 0; r0 < w.Rows; r0 += chunk {
		r1 := min(r0+chunk, w.Rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.dotRows(out[r0:r1], x, r0, r1)
		}()
	}
	wg.Wait()
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
