package kernel

// kvBlock is the number of positions in a block of cached keys.
const kvBlock = 16

// KVCache holds one attention layer's keys and values for one sequence,
// in float32 or (engine.Options.KVCache "bf16") bfloat16. Values are [cap, nkv,
// hd]. Keys are in blocks of kvBlock positions, each block [nkv][hd][kvBlock]:
// key (t, h, d) is at (t/kvBlock)·kvBlock·stride + (h·hd + d)·kvBlock +
// t%kvBlock, so that attention scores 16 positions at a time by outer
// products. The capacity (a multiple of kvBlock) doubles when a sequence
// outlives it.
type KVCache struct {
	k, v     []float32 // float32 cache
	k16, v16 []uint16  // bfloat16 cache
	stride   int       // nkv*hd
	bf       bool      // k16/v16 in use
}

// NewKVCache makes a cache with room for capTokens positions of stride
// (kv heads × head size) values each, in bfloat16 when bf is set.
func NewKVCache(capTokens, stride int, bf bool) KVCache {
	c := KVCache{stride: stride, bf: bf}
	c.alloc((capTokens + kvBlock - 1) / kvBlock * kvBlock * stride)
	return c
}

// alloc replaces the buffers with n values each, keeping their contents.
func (c *KVCache) alloc(n int) {
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
func (c *KVCache) len() int {
	if c.bf {
		return len(c.k16)
	}
	return len(c.k)
}

// Bytes is the memory the cache holds.
func (c *KVCache) Bytes() int64 {
	if c.bf {
		return 2 * int64(len(c.k16)+len(c.v16))
	}
	return 4 * int64(len(c.k)+len(c.v))
}

// Ensure makes room for position pos.
func (c *KVCache) Ensure(pos int) {
	if (pos+1)*c.stride <= c.len() {
		return
	}
	c.alloc(max(2*c.len(), (pos+kvBlock)/kvBlock*kvBlock*c.stride))
}

// Put stores the key and value ([nkv·hd] each) of position pos, which
// Ensure has made room for (rounded to bf16 in a bf16 cache).
func (c *KVCache) Put(pos int, k, v []float32) {
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
func (c *KVCache) key(t, h, hd, d int) float32 {
	i := t/kvBlock*kvBlock*c.stride + (h*hd+d)*kvBlock + t%kvBlock
	if c.bf {
		return bf16(c.k16[i])
	}
	return c.k[i]
}

// value returns element d of head h's value at position t.
func (c *KVCache) value(t, h, hd, d int) float32 {
	i := t*c.stride + h*hd + d
	if c.bf {
		return bf16(c.v16[i])
	}
	return c.v[i]
}

// used is how many values of each buffer hold the first n positions.
func (c *KVCache) used(n int) int { return (n + kvBlock - 1) / kvBlock * kvBlock * c.stride }

// CopyFrom sets c's first n positions to src's.
func (c *KVCache) CopyFrom(src *KVCache, n int) {
	if n == 0 {
		return
	}
	c.Ensure(n - 1)
	if c.bf {
		copy(c.k16[:src.used(n)], src.k16[:src.used(n)])
		copy(c.v16[:n*src.stride], src.v16[:n*src.stride])
		return
	}
	copy(c.k[:src.used(n)], src.k[:src.used(n)])
	copy(c.v[:n*src.stride], src.v[:n*src.stride])
}

// Fill sets c's first n positions as if n tokens had been fed: every key
// value, then every value, is f() (rounded to bf16 in a bf16 cache).
// Decode benchmarks use it instead of a long prefill.
func (c *KVCache) Fill(n int, f func() float32) {
	if n == 0 {
		return
	}
	c.Ensure(n - 1)
	if c.bf {
		for i := range c.k16[:c.used(n)] {
			c.k16[i] = bf16Bits(f())
		}
		for i := range c.v16[:n*c.stride] {
			c.v16[i] = bf16Bits(f())
		}
		return
	}
	for i := range c.k[:c.used(n)] {
		c.k[i] = f()
	}
	for i := range c.v[:n*c.stride] {
		c.v[i] = f()
	}
}
