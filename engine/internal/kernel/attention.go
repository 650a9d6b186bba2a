package kernel

import (
	"math"
	"unsafe"
)

// attnScratch holds one goroutine's attention buffers.
type attnScratch struct {
	s    []float32   // [group, n rounded up to kvBlock] scores, then probabilities
	rows [][]float32 // [group] views of s
	qt   []float32   // [hd][≤ 8] query heads, transposed
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
// that share kv head kvh, over positions start <= t < n of a KV cache: for
// each such head j, p = softmax(q_j·k_t/√hd over start <= t < n), o_j =
// Σ_t p_t v_t. The keys are read once for the whole group (scoresKV), the
// values once for up to six heads (valuesKV). start > 0 is a sliding
// window: the positions before it get probability 0.
//
//	q, out: [nq, hd]; kv: see KVCache
func attendKV(out, q []float32, kv *KVCache, start, n, nq, nkv, hd, kvh int, sc *attnScratch) {
	group := nq / nkv
	start = min(max(start, 0), n)
	if n == start {
		clear(out[kvh*group*hd : (kvh+1)*group*hd])
		return
	}
	scale := float32(1 / math.Sqrt(float64(hd)))
	npad := (n + kvBlock - 1) / kvBlock * kvBlock
	p := sc.grow(group, npad) // [group][npad]
	scoresKV(p, kv, n, hd, kvh, q[kvh*group*hd:(kvh+1)*group*hd], sc)
	for j := 0; j < group; j++ {
		clear(p[j][:start])
		a := p[j][start:n]
		for t := range a {
			a[t] *= scale
		}
		if !softmaxFast(a) {
			softmax(a)
		}
	}
	valuesKV(out[kvh*group*hd:(kvh+1)*group*hd], p, kv, kvh, n, hd)
}

// scoresKV sets p[j][t] = q_j·k_t for the heads q_j of q ([len(p)][hd])
// and positions t < n of kv head kvh (p[j][n:] gets the rest of the last
// block): per position, one fused multiply-add per d in order on every
// kernel path (the portable one without fusing).
func scoresKV(p [][]float32, kv *KVCache, n, hd, kvh int, q []float32, sc *attnScratch) {
	nb := (n + kvBlock - 1) / kvBlock
	if nb == 0 {
		return
	}
	bstride := kvBlock * kv.stride // values from one key block to the next
	first := kvh * hd * kvBlock    // this head's part of block 0
	if (nb-1)*bstride+first+hd*kvBlock > kv.len() {
		panic("engine: attention past the end of the key cache")
	}
	for j0 := 0; j0 < len(p); j0 += 8 {
		g := min(8, len(p)-j0)
		if activeKernel == kernelGo {
			for j := j0; j < j0+g; j++ {
				qj := q[j*hd : (j+1)*hd]
				for b := 0; b < nb; b++ {
					var acc [kvBlock]float32
					o := b*bstride + first
					for d, qd := range qj {
						if kv.bf {
							row := (*[kvBlock]uint16)(kv.k16[o+d*kvBlock:])
							for i := range acc {
								acc[i] += bf16(row[i]) * qd
							}
							continue
						}
						row := (*[kvBlock]float32)(kv.k[o+d*kvBlock:])
						for i := range acc {
							acc[i] += row[i] * qd
						}
					}
					copy(p[j][b*kvBlock:], acc[:])
				}
			}
			continue
		}
		if cap(sc.qt) < hd*8 {
			sc.qt = make([]float32, hd*8)
		}
		qt := sc.qt[:hd*g]
		for j := 0; j < g; j++ {
			for d, v := range q[(j0+j)*hd : (j0+j+1)*hd] {
				qt[d*g+j] = v
			}
		}
		var kb unsafe.Pointer
		esz := 4
		if kv.bf {
			kb, esz = unsafe.Pointer(&kv.k16[first]), 2
		} else {
			kb = unsafe.Pointer(&kv.k[first])
		}
		attnScores(kv.bf, g, kb, esz*bstride, nb, &qt[0], hd, &p[j0][0], 4*len(p[0]))
	}
}

// valuesKV sets o[j·hd:(j+1)·hd] = Σ_{t<n} p[j][t]·v_t for every head j of
// p and the values v_t of kv head kvh, in t order.
func valuesKV(o []float32, p [][]float32, kv *KVCache, kvh, n, hd int) {
	if n == 0 {
		clear(o)
		return
	}
	stride := kv.stride
	if (n-1)*stride+kvh*hd+hd > kv.len() {
		panic("engine: attention past the end of the value cache")
	}
	for j := 0; j < len(p); {
		if g := attnValues(kv, kvh, o[j*hd:], p[j:], n, hd); g > 0 {
			j += g
			continue
		}
		oj := o[j*hd : (j+1)*hd]
		a := p[j][:n]
		j++
		if !kv.bf && axpyRows(oj, a, kv.v[kvh*hd:], stride, n, hd) {
			continue
		}
		clear(oj)
		for t, pt := range a {
			if kv.bf {
				row := kv.v16[t*stride+kvh*hd : t*stride+kvh*hd+hd]
				for i := range oj {
					oj[i] += pt * bf16(row[i])
				}
				continue
			}
			row := kv.v[t*stride+kvh*hd : t*stride+kvh*hd+hd]
			for i := range oj {
				oj[i] += pt * row[i]
			}
		}
	}
}

// Attention is the attention of a micro-batch of n tokens, for Attend:
// token i's query heads Q[i] attend over the first Ctx[i] positions of its
// own sequence's cache KV[i] (which already holds the token's key and
// value), into Out[i]; with a Window, over the last Window of them only.
// Its scratch buffers stay for the next call.
type Attention struct {
	Out, Q           [][]float32   // [n][NQ*HeadDim]
	KV               []*KVCache    // [n]
	Ctx              []int         // [n] positions to attend to (pos+1)
	Window           int           // sliding window: attend to positions > pos-Window (0: all)
	NQ, NKV, HeadDim int           // query heads, kv heads, head size
	scratch          []attnScratch // one per part
}

// attnTask runs an Attention as a Task: item i is token i/NKV's kv head
// i%NKV.
type attnTask Attention

func (t *attnTask) Run(part, a, b int) {
	sc := &t.scratch[part]
	for i := a; i < b; i++ {
		tok, h := i/t.NKV, i%t.NKV
		start := 0
		if t.Window > 0 {
			start = t.Ctx[tok] - t.Window
		}
		attendKV(t.Out[tok], t.Q[tok], t.KV[tok], start, t.Ctx[tok], t.NQ, t.NKV, t.HeadDim, h, sc)
	}
}

// Attend computes a's attention for its first n tokens, split by kv heads
// over the workers.
func (p *Workers) Attend(a *Attention, n int) {
	if len(a.scratch) < p.n {
		a.scratch = make([]attnScratch, p.n)
	}
	t := (*attnTask)(a)
	items := n * a.NKV
	if work := items; work < 2 || totalContext(a.Ctx[:n])*a.NQ*a.HeadDim < ParallelMinWork/4 {
		t.Run(0, 0, items)
		return
	}
	p.Parallel(t, items, 1)
}

func totalContext(ctx []int) int {
	s := 0
	for _, c := range ctx {
		s += c
	}
	return s
}
