//go:build amd64 && !purego

package kernel

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate go run panel_gen.go

// Packed-panel kernels (panel_amd64.s, written by panel_gen.go). w is a
// panel ([k][32] weights), x a token group ([k][N] float32), out [N][32].

//go:noescape
func panelBF16x12AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelBF16x8AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelBF16x4AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelBF16x2AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelBF16x1AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelF32x12AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelF32x8AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelF32x4AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelF32x2AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelF32x1AVX512(w unsafe.Pointer, x *float32, k int, out *float32)

// panel*Gemv4AVX512: four panels ldp bytes apart times one token; out [4][32].

//go:noescape
func panelBF16Gemv4AVX512(w unsafe.Pointer, ldp int, x *float32, k int, out *float32)

//go:noescape
func panelF32Gemv4AVX512(w unsafe.Pointer, ldp int, x *float32, k int, out *float32)

// panel*Half4AVX2: 16 rows of a panel (w points at row 0 or 16 of column 0)
// times 4 tokens; writes out[j*32 : j*32+16] for j < 4.

//go:noescape
func panelBF16Half4AVX2(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelF32Half4AVX2(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelBF16x1AVX2(w unsafe.Pointer, x *float32, k int, out *float32)

//go:noescape
func panelF32x1AVX2(w unsafe.Pointer, x *float32, k int, out *float32)

// tokenGroups lists the token-group sizes of the active path, largest first.
func tokenGroups() []int {
	switch activeKernel {
	case kernAVX512:
		return []int{12, 8, 4, 2, 1}
	case kernAVX2:
		return []int{4, 1}
	}
	return []int{1}
}

// panelTile sets out[j*32+i] = Σ_k W[i,k]·x[k*n+j] for one panel and a
// group of n tokens (n one of tokenGroups()).
func panelTile(bf bool, n int, w unsafe.Pointer, x *float32, k int, out *tileBuf) {
	o := &out[0]
	if activeKernel == kernAVX2 {
		esz := 4
		if bf {
			esz = 2
		}
		switch {
		case n == 4 && bf:
			panelBF16Half4AVX2(w, x, k, o)
			panelBF16Half4AVX2(unsafe.Add(w, 16*esz), x, k, &out[16])
		case n == 4:
			panelF32Half4AVX2(w, x, k, o)
			panelF32Half4AVX2(unsafe.Add(w, 16*esz), x, k, &out[16])
		case bf:
			panelBF16x1AVX2(w, x, k, o)
		default:
			panelF32x1AVX2(w, x, k, o)
		}
		return
	}
	if bf {
		switch n {
		case 12:
			panelBF16x12AVX512(w, x, k, o)
		case 8:
			panelBF16x8AVX512(w, x, k, o)
		case 4:
			panelBF16x4AVX512(w, x, k, o)
		case 2:
			panelBF16x2AVX512(w, x, k, o)
		default:
			panelBF16x1AVX512(w, x, k, o)
		}
		return
	}
	switch n {
	case 12:
		panelF32x12AVX512(w, x, k, o)
	case 8:
		panelF32x8AVX512(w, x, k, o)
	case 4:
		panelF32x4AVX512(w, x, k, o)
	case 2:
		panelF32x2AVX512(w, x, k, o)
	default:
		panelF32x1AVX512(w, x, k, o)
	}
}

// panelGemv4 sets out[p*32+i] for four panels ldp bytes apart and one
// token; it reports false when the active path has no such kernel.
func panelGemv4(bf bool, w unsafe.Pointer, ldp int, x *float32, k int, out *tileBuf) bool {
	if activeKernel != kernAVX512 {
		return false
	}
	if bf {
		panelBF16Gemv4AVX512(w, ldp, x, k, &out[0])
	} else {
		panelF32Gemv4AVX512(w, ldp, x, k, &out[0])
	}
	return true
}

// Pair-panel kernels (bf16 products, VDPBF16PS): w is a pair panel
// ([k2][32][2] bf16), x a token group of bf16 input pairs ([k2][N]), out
// [N][32] float32.

//go:noescape
func panelDotx12AVX512(w unsafe.Pointer, x *uint32, k2 int, out *float32)

//go:noescape
func panelDotx8AVX512(w unsafe.Pointer, x *uint32, k2 int, out *float32)

//go:noescape
func panelDotx4AVX512(w unsafe.Pointer, x *uint32, k2 int, out *float32)

//go:noescape
func panelDotx2AVX512(w unsafe.Pointer, x *uint32, k2 int, out *float32)

//go:noescape
func panelDotx1AVX512(w unsafe.Pointer, x *uint32, k2 int, out *float32)

//go:noescape
func panelDotGemv4AVX512(w unsafe.Pointer, ldp int, x *uint32, k2 int, out *float32)

// hasDot reports whether the active path runs the pair-panel kernels.
func hasDot() bool { return activeKernel == kernAVX512 && cpu.X86.HasAVX512BF16 }

// dotTile is panelTile for a pair panel (hasDot must hold).
func dotTile(n int, w unsafe.Pointer, x *uint32, k2 int, out *tileBuf) {
	o := &out[0]
	switch n {
	case 12:
		panelDotx12AVX512(w, x, k2, o)
	case 8:
		panelDotx8AVX512(w, x, k2, o)
	case 4:
		panelDotx4AVX512(w, x, k2, o)
	case 2:
		panelDotx2AVX512(w, x, k2, o)
	default:
		panelDotx1AVX512(w, x, k2, o)
	}
}

// dotGemv4 is panelGemv4 for pair panels (hasDot must hold).
func dotGemv4(w unsafe.Pointer, ldp int, x *uint32, k2 int, out *tileBuf) {
	panelDotGemv4AVX512(w, ldp, x, k2, &out[0])
}

// attnScores runs the score kernel for g (≤ 8) query heads: kb is the
// kv head's part of the first key block (bf16 or f32), bstride the bytes
// between blocks, qt the heads transposed ([hd][g]), out the first row of
// scores, ldo the bytes between rows.
func attnScores(bf bool, g int, kb unsafe.Pointer, bstride, nb int, qt *float32, hd int, out *float32, ldo int) {
	kv, half := 0, 32
	if bf {
		kv, half = 1, 16
	}
	if activeKernel == kernAVX512 {
		attnScoresTab[kv][0][g-1](kb, bstride, nb, qt, hd, out, ldo)
		return
	}
	attnScoresTab[kv][1][g-1](kb, bstride, nb, qt, hd, out, ldo)
	attnScoresTab[kv][1][g-1](unsafe.Add(kb, half), bstride, nb, qt, hd, (*float32)(unsafe.Add(unsafe.Pointer(out), 32)), ldo)
}

// attnValues runs the grouped value kernel over as many heads of p as it
// takes at once (head size 64 or 128, AVX-512) against the values of kv
// head kvh, and reports how many; 0 when there is no kernel for the case.
func attnValues(c *KVCache, kvh int, o []float32, p [][]float32, n, hd int) int {
	if activeKernel != kernAVX512 || (hd != 64 && hd != 128) {
		return 0
	}
	kv, esz := 0, 4
	v := unsafe.Pointer(unsafe.SliceData(c.v))
	if c.bf {
		kv, esz, v = 1, 2, unsafe.Pointer(unsafe.SliceData(c.v16))
	}
	tab := attnValuesTab[kv][hd/64-1]
	g := min(len(tab), len(p))
	ldp := 0
	if g > 1 {
		ldp = int(uintptr(unsafe.Pointer(&p[1][0])) - uintptr(unsafe.Pointer(&p[0][0])))
		for j := 2; j < g; j++ { // rows must be evenly spaced (attnScratch.grow)
			if uintptr(unsafe.Pointer(&p[j][0]))-uintptr(unsafe.Pointer(&p[j-1][0])) != uintptr(ldp) {
				g = j
				break
			}
		}
	}
	_ = o[g*hd-1]
	tab[g-1](&o[0], &p[0][0], ldp, unsafe.Add(v, esz*kvh*hd), esz*c.stride, n)
	return g
}

// Int8 panel kernels (quant.go): w an int8 panel, sc its scales.

//go:noescape
func panelQ8x6AVX512(w unsafe.Pointer, sc *float32, x *float32, k int, out *float32)

//go:noescape
func panelQ8x4AVX512(w unsafe.Pointer, sc *float32, x *float32, k int, out *float32)

//go:noescape
func panelQ8x2AVX512(w unsafe.Pointer, sc *float32, x *float32, k int, out *float32)

//go:noescape
func panelQ8x1AVX512(w unsafe.Pointer, sc *float32, x *float32, k int, out *float32)

//go:noescape
func panelQ8Gemv4AVX512(w unsafe.Pointer, ldp int, sc *float32, ldps int, x *float32, k int, out *float32)

// hasQ8 reports whether the active path runs the int8 panel kernels.
func hasQ8() bool { return activeKernel == kernAVX512 }

// q8Tile sets out[j*32+i] for one int8 panel and a group of n tokens (n
// one of q8Groups); hasQ8 must hold.
func q8Tile(n int, w *int8, sc *float32, x *float32, k int, out *tileBuf) {
	wp := unsafe.Pointer(w)
	switch n {
	case 6:
		panelQ8x6AVX512(wp, sc, x, k, &out[0])
	case 4:
		panelQ8x4AVX512(wp, sc, x, k, &out[0])
	case 2:
		panelQ8x2AVX512(wp, sc, x, k, &out[0])
	default:
		panelQ8x1AVX512(wp, sc, x, k, &out[0])
	}
}

// q8Gemv4 sets out[p*32+i] for four int8 panels (ldp bytes apart, scales
// ldps bytes apart) and one token; hasQ8 must hold.
func q8Gemv4(w *int8, ldp int, sc *float32, ldps int, x *float32, k int, out *tileBuf) {
	panelQ8Gemv4AVX512(unsafe.Pointer(w), ldp, sc, ldps, x, k, &out[0])
}
