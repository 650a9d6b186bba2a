//go:build !amd64 || purego

package kernel

import "unsafe"

// cpuKernels lists the assembly paths this CPU runs: none in this build.
func cpuKernels() []string { return nil }

func axpyRows(o, p, v []float32, stride, n, hd int) bool { return false }

func readSum(b []byte) uint32 { return readSumGo(b) }

func ssmRows(s []float32, n, rows int, dA float32, dtx, b, c, y []float32) bool { return false }

func softmaxFast(x []float32) bool { return false }

// SwiGLU sets g[j] = silu(g[j])·u[j] for every j.
func SwiGLU(g, u []float32) {
	u = u[:len(g)]
	for j, v := range g {
		g[j] = silu(v) * u[j]
	}
}

func tokenGroups() []int { return []int{1} }

func panelTile(bf bool, n int, w unsafe.Pointer, x *float32, k int, out *tileBuf) {
	panic("engine: no panel kernels on this path")
}

func panelGemv4(bf bool, w unsafe.Pointer, ldp int, x *float32, k int, out *tileBuf) bool {
	return false
}

func hasDot() bool { return false }

func dotTile(n int, w unsafe.Pointer, x *uint32, k2 int, out *tileBuf) {
	panic("engine: no bf16 dot kernels on this path")
}

func dotGemv4(w unsafe.Pointer, ldp int, x *uint32, k2 int, out *tileBuf) {
	panic("engine: no bf16 dot kernels on this path")
}

func attnScores(bf bool, g int, kb unsafe.Pointer, bstride, nb int, qt *float32, hd int, out *float32, ldo int) {
	panic("engine: no attention kernels on this path")
}

func attnValues(c *KVCache, kvh int, o []float32, p [][]float32, n, hd int) int { return 0 }

func hasQ8() bool { return false }

func q8Tile(n int, w *int8, sc *float32, x *float32, k int, out *tileBuf) {
	panic("engine: no int8 kernels on this path")
}

func q8Gemv4(w *int8, ldp int, sc *float32, ldps int, x *float32, k int, out *tileBuf) {
	panic("engine: no int8 kernels on this path")
}

// ExpShifted returns 0: this build has no vector kernel for the
// exponentials (the caller computes them all).
func ExpShifted(l []float32, mx, invT float32, e []float64) int { return 0 }
