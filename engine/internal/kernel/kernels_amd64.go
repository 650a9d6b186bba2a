//go:build amd64 && !purego

package kernel

import "golang.org/x/sys/cpu"

// Kernel paths, fastest first.
const (
	kernAVX512 = "avx512"
	kernAVX2   = "avx2"
)

// cpuKernels lists the assembly paths this CPU runs, fastest first.
func cpuKernels() []string {
	var ks []string
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BW {
		ks = append(ks, kernAVX512)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, kernAVX2)
	}
	return ks
}

//go:noescape
func axpyRowsAVX512(o *float32, p *float32, v *float32, vstride int, n int, hd int)

//go:noescape
func axpyRowsAVX2(o *float32, p *float32, v *float32, vstride int, n int, hd int)

// axpyRows sets o[:hd] = Σ_{t<n} p[t]·v[t*stride:][:hd] (stride in
// floats); it reports false when the active path cannot (then the caller
// computes it in Go).
func axpyRows(o, p, v []float32, stride, n, hd int) bool {
	if n == 0 {
		return false
	}
	_ = v[(n-1)*stride+hd-1]
	_ = p[n-1]
	switch {
	case activeKernel == kernAVX512 && hd%16 == 0:
		axpyRowsAVX512(&o[0], &p[0], &v[0], stride*4, n, hd)
	case activeKernel == kernAVX2 && hd%8 == 0:
		axpyRowsAVX2(&o[0], &p[0], &v[0], stride*4, n, hd)
	default:
		return false
	}
	return true
}

//go:noescape
func readSumAVX512(p *byte, n int) uint32

//go:noescape
func readSumAVX2(p *byte, n int) uint32

// readSum reads every byte of b (len a multiple of 256) as fast as the
// active path can, returning a checksum so that the reads stay.
func readSum(b []byte) uint32 {
	switch activeKernel {
	case kernAVX512:
		return readSumAVX512(&b[0], len(b))
	case kernAVX2:
		return readSumAVX2(&b[0], len(b))
	}
	return readSumGo(b)
}

//go:noescape
func ssmRowsAVX512(s *float32, n int, rows int, dA float32, dtx *float32, b *float32, c *float32, y *float32)

//go:noescape
func ssmRowsAVX2(s *float32, n int, rows int, dA float32, dtx *float32, b *float32, c *float32, y *float32)

// ssmRows runs one head's scan step on the assembly path (see SSMRows);
// it reports false when the active path cannot.
func ssmRows(s []float32, n, rows int, dA float32, dtx, b, c, y []float32) bool {
	if rows == 0 || n == 0 {
		return false
	}
	_, _, _, _ = s[rows*n-1], dtx[rows-1], b[n-1], c[n-1]
	_ = y[rows-1]
	switch {
	case activeKernel == kernAVX512 && n%16 == 0:
		ssmRowsAVX512(&s[0], n, rows, dA, &dtx[0], &b[0], &c[0], &y[0])
	case activeKernel == kernAVX2 && n%8 == 0:
		ssmRowsAVX2(&s[0], n, rows, dA, &dtx[0], &b[0], &c[0], &y[0])
	default:
		return false
	}
	return true
}

//go:noescape
func softmaxAVX512(x *float32, n int)

// softmaxFast normalizes x in place with the active path's vector softmax;
// it reports false when there is none.
func softmaxFast(x []float32) bool {
	if activeKernel != kernAVX512 || len(x) == 0 {
		return false
	}
	softmaxAVX512(&x[0], len(x))
	return true
}

//go:noescape
func swigluAVX512(gp, u *float32, n int) int

// SwiGLU sets g[j] = silu(g[j])·u[j] for every j, with the same bits
// as the Go loop.
func SwiGLU(g, u []float32) {
	u = u[:len(g)]
	j := 0
	if activeKernel == kernAVX512 {
		for j+16 <= len(g) {
			j += swigluAVX512(&g[j], &u[j], len(g)-j)
			if j+16 > len(g) {
				break
			}
			for e := j + 16; j < e; j++ { // a block with a special value
				g[j] = silu(g[j]) * u[j]
			}
		}
	}
	for ; j < len(g); j++ {
		g[j] = silu(g[j]) * u[j]
	}
}

//go:noescape
func expShiftedAVX512(l *float32, n int, mx, invT float32, e *float64) int

// ExpShifted sets e[i] = math.Exp(float64((l[i]-mx)*invT)) for a prefix of
// l (bit for bit) and returns its length: 0 when the active path has no
// kernel; it stops early at values math.Exp treats specially (below -700,
// NaN), which the caller computes.
func ExpShifted(l []float32, mx, invT float32, e []float64) int {
	if activeKernel != kernAVX512 || len(l) < 8 {
		return 0
	}
	_ = e[len(l)-1]
	return expShiftedAVX512(&l[0], len(l), mx, invT, &e[0])
}
