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

// kvCache holds one attention layer's keys and values for one sequence,
// in float32 or (Options.KVCache "bf16") bfloat16. Values are [cap, nkv,
// hd]. Keys are in blocks of kvBlock positions, each block [nkv][hd][kvBlock]:
// key (t, h, d) is at (t/kvBlock)·kvBlock·stride + (h·hd + d)·kvBlock +
// t%kvBlock, so that attention scores 16 positions at a time by outer
// products. The capacity (a multiple of kvBlock) doubles when a sequence
// outlives it.
type kvCache struct {
	k, v     []float32 // float32 cache
	k16, v16 []uint16  // bfloat16 cache
	stride   int       // nkv*hd
	bf       bool      // k16/v16 in use
}

func newKVCache(capTokens, stride int, bf bool) kvCache {
	c := kvCache{stride: stride, bf: bf}
	c.alloc((capTokens + kvBlock - 1) / kvBlock * kvBlock * stride)
	return c
}

// alloc replaces the buffers with n values each, keeping their contents.
func (c *kvCache) alloc(n int) {
	if c.bf {
		k, v := make([]uint16, n), make([]uint16, n)
		copy(k, c.k16)
		copy(v, c.v16)
		c.k16, c.v16 = k, v
		return
	}
	k, v := make([]float32, n), make([]float32, n)
	copy(k, c.k)
	copy(v, c.v)
	c.k, c.v = k, v
}

// len is the number of values each buffer holds.
func (c *kvCache) len() int {
	if c.bf {
		return len(c.k16)
	}
	return len(c.k)
}

// bytes is the memory the cache holds.
func (c *kvCache) bytes() int64 {
	if c.bf {
		return 2 * int64(len(c.k16)+len(c.v16))
	}
	return 4 * int64(len(c.k)+len(c.v))
}

// ensure makes room for position pos.
func (c *kvCache) ensure(pos int) {
	if (pos+1)*c.stride <= c.len() {
		return
	}
	c.alloc(max(2*c.len(), (pos+kvBlock)/kvBlock*kvBlock*c.stride))
}

// put stores the key and value ([nkv·hd] each) of position pos, which
// ensure has made room for (rounded to bf16 in a bf16 cache).
func (c *kvCache) put(pos int, k, v []float32) {
	b0 := pos / kvBlock * kvBlock * c.stride
	if c.bf {
		for i, x := range v[:c.stride] {
			c.v16[pos*c.stride+i] = bf16Bits(x)
		}
		blk := c.k16[b0 : b0+kvBlock*c.stride]
		for i, x := range k[:c.stride] {
			blk[i*kvBlock+pos%kvBlock] = bf16Bits(x)
		}
		return
	}
	copy(c.v[pos*c.stride:(pos+1)*c.stride], v)
	blk := c.k[b0 : b0+kvBlock*c.stride]
	for i, x := range k[:c.stride] {
		blk[i*kvBlock+pos%kvBlock] = x
	}
}

// key returns element d of head h's key at position t.
func (c *kvCache) key(t, h, hd, d int) float32 {
	i := t/kvBlock*kvBlock*c.stride + (h*hd+d)*kvBlock + t%kvBlock
	if c.bf {
		return bf16(c.k16[i])
	}
	return c.k[i]
}

// value returns element d of head h's value at position t.
func (c *kvCache) value(t, h, hd, d int) float32 {
	i := t*c.stride + h*hd + d
	if c.bf {
		return bf16(c.v16[i])
	}
	return c.v[i]
}

// used is how many values of each buffer hold the first n positions.
func (c *kvCache) used(n int) int { return (n + kvBlock - 1) / kvBlock * kvBlock * c.stride }

// copyFrom sets c's first n positions to src's.
func (c *kvCache) copyFrom(src *kvCache, n int) {
	if n == 0 {
		return
	}
	c.ensure(n - 1)
	if c.bf {
		copy(c.k16[:src.used(n)], src.k16[:src.used(n)])
		copy(c.v16[:n*src.stride], src.v16[:n*src.stride])
		return
	}
	copy(c.k[:src.used(n)], src.k[:src.used(n)])
	copy(c.v[:n*src.stride], src.v[:n*src.stride])
}

// bf16Bits rounds x to bfloat16 (ties to even) and returns its bits.
func bf16Bits(x float32) uint16 { return uint16(math.Float32bits(roundBF16(x)) >> 16) }
