package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttendKV compares the attention of every kernel path with a float64
// reference, for head sizes with and without a vector tail, GQA groups of 1
// to 7 heads, and sliding windows (start > 0).
func TestAttendKV(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	withKernels(t, func(tb testing.TB, kern string) {
		t := tb.(*testing.T)
		for _, c := range []struct{ nq, nkv, hd, n, start int }{{2, 2, 8, 1, 0}, {4, 2, 16, 5, 0}, {14, 2, 64, 37, 0},
			{7, 1, 12, 9, 0}, {6, 3, 40, 130, 0}, {8, 2, 128, 100, 0}, {20, 2, 64, 16, 0}, {18, 1, 128, 33, 0},
			{3, 3, 64, 0, 0}, {4, 2, 16, 5, 4}, {14, 2, 64, 37, 5}, {8, 2, 128, 100, 67}, {6, 3, 40, 130, 64}} {
			for _, bf := range []bool{false, true} {
				kv := NewKVCache(c.n, c.nkv*c.hd, bf)
				for i := range kv.k {
					kv.k[i] = rng.Float32()*2 - 1
					kv.v[i] = rng.Float32()*2 - 1
				}
				for i := range kv.k16 {
					kv.k16[i] = bf16Bits(rng.Float32()*2 - 1)
					kv.v16[i] = bf16Bits(rng.Float32()*2 - 1)
				}
				q := randRows(rng, 1, c.nq*c.hd)[0]
				out := make([]float32, c.nq*c.hd)
				var sc attnScratch
				for h := 0; h < c.nkv; h++ {
					attendKV(out, q, &kv, c.start, c.n, c.nq, c.nkv, c.hd, h, &sc)
				}
				group := c.nq / c.nkv
				if c.n == 0 {
					continue
				}
				for j := 0; j < c.nq; j++ {
					kvh := j / group
					s := make([]float64, c.n-c.start) // s[tt] is position c.start+tt
					mx := math.Inf(-1)
					for tt := range s {
						for i := 0; i < c.hd; i++ {
							s[tt] += float64(q[j*c.hd+i]) * float64(kv.key(c.start+tt, kvh, c.hd, i))
						}
						s[tt] /= math.Sqrt(float64(c.hd))
						mx = math.Max(mx, s[tt])
					}
					var sum float64
					for tt := range s {
						s[tt] = math.Exp(s[tt] - mx)
						sum += s[tt]
					}
					for i := 0; i < c.hd; i++ {
						var o float64
						for tt := range s {
							o += s[tt] / sum * float64(kv.value(c.start+tt, kvh, c.hd, i))
						}
						if d := math.Abs(o - float64(out[j*c.hd+i])); d > 1e-5 {
							t.Fatalf("%s %+v bf16=%v: head %d dim %d: %v, want %v", kern, c, bf, j, i, out[j*c.hd+i], o)
						}
					}
				}
			}
		}
	})
}
