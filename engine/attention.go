package engine

import (
	"math"
	"unsafe"
)

// attnScratch holds one goroutine's attention buffers.
type attnScratch struct {
	s    []float32   // [group, n] scores, then probabilities
	rows [][]float32 // [group] views of s
	qs   [][]float32 // [group] query heads
}

func (sc *attnScratch) grow(group, n int) [][]float32 {
	if len(sc.s) < group*n {
		sc.s = make([]float32, 2*group*n)
	}
	sc.rows = sc.rows[:0]
	for j := 0; j < group; j++ {
		sc.rows = append(sc.rows, sc.s[j*n:(j+1)*n])
	}
	return sc.rows
}

// attendKV computes grouped-query attention of one token for the q heads
// that share kv head kvh, over the first n positions of a KV cache: for
// each such head j, p = softmax(q_j·k_t/√hd over t < n), o_j = Σ_t p_t v_t.
//
//	q, out: [nq, hd]; kv.k, kv.v: [cap, nkv, hd]
func attendKV(out, q []float32, kv *kvCache, n, nq, nkv, hd, kvh int, sc *attnScratch) {
	group := nq / nkv
	scale := float32(1 / math.Sqrt(float64(hd)))
	stride := nkv * hd
	keys := kv.k[kvh*hd:]
	vals := kv.v[kvh*hd:]
	p := sc.grow(group, n) // [group][n]
	sc.qs = sc.qs[:0]
	for j := 0; j < group; j++ {
		h := kvh*group + j
		sc.qs = append(sc.qs, q[h*hd:(h+1)*hd])
	}
	dotStrided(p, keys, stride, n, hd, sc.qs) // [group][n] = q·k
	for j := 0; j < group; j++ {
		a := p[j]
		for t := range a {
			a[t] *= scale
		}
		if !softmaxFast(a) {
			softmax(a)
		}
		h := kvh*group + j
		oj := out[h*hd : (h+1)*hd]
		if axpyRows(oj, a, vals, stride, n, hd) {
			continue
		}
		clear(oj)
		for t := 0; t < n; t++ {
			pt := a[t]
			v := vals[t*stride : t*stride+hd]
			for i := range oj {
				oj[i] += pt * v[i]
			}
		}
	}
}

// dotStrided sets out[j][t] = rows[t*stride:][:c]·x[j][:c] for t < n.
func dotStrided(out [][]float32, rows []float32, stride, n, c int, x [][]float32) {
	if n == 0 {
		return
	}
	_ = rows[(n-1)*stride+c-1]
	if activeKernel == KernelGo {
		for j, xj := range x {
			for t := 0; t < n; t++ {
				out[j][t] = dotF32(rows[t*stride:t*stride+c], xj[:c])
			}
		}
		return
	}
	kmain := c &^ (kernelLanes() - 1)
	ldw := stride * 4
	base := unsafe.Pointer(&rows[0])
	tail := func(s float32, t int, xj []float32) float32 {
		r := rows[t*stride:]
		for i := kmain; i < c; i++ {
			s += r[i] * xj[i]
		}
		return s
	}
	var res [16]float32
	var one [4]float32
	j := 0
	for ; j+4 <= len(x); j += 4 {
		xs := [4]*float32{&x[j][0], &x[j+1][0], &x[j+2][0], &x[j+3][0]}
		t := 0
		for ; t+4 <= n; t += 4 {
			tile4x4(unsafe.Add(base, t*ldw), ldw, &xs, kmain, &res)
			if kmain == c {
				*(*[4]float32)(out[j][t:]) = *(*[4]float32)(res[0:])
				*(*[4]float32)(out[j+1][t:]) = *(*[4]float32)(res[4:])
				*(*[4]float32)(out[j+2][t:]) = *(*[4]float32)(res[8:])
				*(*[4]float32)(out[j+3][t:]) = *(*[4]float32)(res[12:])
				continue
			}
			for i := 0; i < 4; i++ {
				for jj := 0; jj < 4; jj++ {
					out[j+jj][t+i] = tail(res[jj*4+i], t+i, x[j+jj])
				}
			}
		}
		for ; t < n; t++ {
			for jj := 0; jj < 4; jj++ {
				tile4x1(unsafe.Add(base, t*ldw), 0, xs[jj], kmain, &one)
				out[j+jj][t] = tail(one[0], t, x[j+jj])
			}
		}
	}
	for ; j < len(x); j++ {
		xj := &x[j][0]
		t := 0
		for ; t+4 <= n; t += 4 {
			tile4x1(unsafe.Add(base, t*ldw), ldw, xj, kmain, &one)
			if kmain == c {
				copy(out[j][t:t+4], one[:])
				continue
			}
			for i := 0; i < 4; i++ {
				out[j][t+i] = tail(one[i], t+i, x[j])
			}
		}
		for ; t < n; t++ {
			tile4x1(unsafe.Add(base, t*ldw), 0, xj, kmain, &one)
			out[j][t] = tail(one[0], t, x[j])
		}
	}
}

// attnTask runs the attention of a micro-batch: item i is token i/nkv's
// kv head i%nkv, against that token's own sequence cache.
type attnTask struct {
	ao, q       [][]float32 // [n][nq*hd]
	kv          []*kvCache  // [n]
	ctx         []int       // [n] positions to attend to (pos+1)
	nq, nkv, hd int
	scratch     []attnScratch // one per part
}

func (t *attnTask) run(part, a, b int) {
	sc := &t.scratch[part]
	for i := a; i < b; i++ {
		tok, h := i/t.nkv, i%t.nkv
		attendKV(t.ao[tok], t.q[tok], t.kv[tok], t.ctx[tok], t.nq, t.nkv, t.hd, h, sc)
	}
}

// attention runs attnTask over the workers: every token's cache must
// already hold its own key and value.
func (p *workers) attention(t *attnTask, n int) {
	if len(t.scratch) < p.n {
		t.scratch = make([]attnScratch, p.n)
	}
	items := n * t.nkv
	if work := items; work < 2 || totalContext(t.ctx[:n])*t.nq*t.hd < parallelMinWork/4 {
		t.run(0, 0, items)
		return
	}
	p.parallel(t, items, 1)
}

func totalContext(ctx []int) int {
	s := 0
	for _, c := range ctx {
		s += c
	}
	return s
}
