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

// kvBlock is the number of positions in a block of cached keys.
const kvBlock = 16

// kvCache holds one attention layer's keys and values for one sequence.
// Values are [cap, nkv, hd]. Keys are in blocks of kvBlock positions, each
// block [nkv][hd][kvBlock]: key (t, h, d) is at
// k[(t/kvBlock)·kvBlock·stride + (h·hd + d)·kvBlock + t%kvBlock], so that
// attention scores 16 positions at a time by outer products. The capacity
// (a multiple of kvBlock) doubles when a sequence outlives it.
type kvCache struct {
	k, v   []float32
	stride int // nkv*hd
}

func newKVCache(capTokens, stride int) kvCache {
	capTokens = (capTokens + kvBlock - 1) / kvBlock * kvBlock
	return kvCache{k: make([]float32, capTokens*stride), v: make([]float32, capTokens*stride), stride: stride}
}

// ensure makes room for position pos.
func (c *kvCache) ensure(pos int) {
	if (pos+1)*c.stride <= len(c.k) {
		return
	}
	n := max(2*len(c.k), (pos+kvBlock)/kvBlock*kvBlock*c.stride)
	k := make([]float32, n)
	v := make([]float32, n)
	copy(k, c.k)
	copy(v, c.v)
	c.k, c.v = k, v
}

// put stores the key and value ([nkv·hd] each) of position pos, which
// ensure has made room for.
func (c *kvCache) put(pos int, k, v []float32) {
	copy(c.v[pos*c.stride:(pos+1)*c.stride], v)
	blk := c.k[pos/kvBlock*kvBlock*c.stride : (pos/kvBlock+1)*kvBlock*c.stride]
	for i, x := range k[:c.stride] {
		blk[i*kvBlock+pos%kvBlock] = x
	}
}

// key returns element d of head h's key at position t.
func (c *kvCache) key(t, h, hd, d int) float32 {
	return c.k[t/kvBlock*kvBlock*c.stride+(h*hd+d)*kvBlock+t%kvBlock]
}

// used is how many floats of k and of v hold the first n positions.
func (c *kvCache) used(n int) int { return (n + kvBlock - 1) / kvBlock * kvBlock * c.stride }
