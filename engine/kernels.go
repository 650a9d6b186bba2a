package engine

import (
	"math"
)

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
