package kernel

import (
	"encoding/binary"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// readSumGo is the portable bandwidth probe: it adds b as 64-bit words.
func readSumGo(b []byte) uint32 {
	var s0, s1, s2, s3 uint64
	for i := 0; i+32 <= len(b); i += 32 {
		s0 += binary.LittleEndian.Uint64(b[i:])
		s1 += binary.LittleEndian.Uint64(b[i+8:])
		s2 += binary.LittleEndian.Uint64(b[i+16:])
		s3 += binary.LittleEndian.Uint64(b[i+24:])
	}
	s := s0 + s1 + s2 + s3
	return uint32(s ^ s>>32)
}

// ReadBandwidth measures the machine's streaming-read bandwidth in bytes/s:
// threads goroutines each read their own buffer of size/threads bytes
// (far larger than the caches) reps times; the best of the reps counts.
func ReadBandwidth(threads int, size int, reps int) float64 {
	threads = max(threads, 1)
	per := max(size/threads, 1<<20) &^ 255
	bufs := make([][]byte, threads)
	blocks := make([]*block, threads)
	defer runtime.KeepAlive(blocks)
	for i := range bufs {
		// On huge pages where the kernel offers them, as the packed weights
		// are (hugepage.go): the same TLB cost, so the ratio is fair.
		p, blk := alignedBytes(per)
		bufs[i], blocks[i] = unsafe.Slice((*byte)(p), per), blk
		for j := 0; j < per; j += 4096 {
			bufs[i][j] = byte(j) // touch every page
		}
	}
	best := 0.0
	var sink uint32
	var mu sync.Mutex
	for r := 0; r < max(reps, 1); r++ {
		var wg sync.WaitGroup
		start := time.Now()
		for i := range bufs {
			wg.Add(1)
			go func(b []byte) {
				defer wg.Done()
				s := readSum(b)
				mu.Lock()
				sink += s
				mu.Unlock()
			}(bufs[i])
		}
		wg.Wait()
		if bw := float64(per*threads) / time.Since(start).Seconds(); bw > best {
			best = bw
		}
	}
	_ = sink
	return best
}

// GEMMPeak measures the matrix kernels' arithmetic rate in FLOP/s on
// threads threads: a [512, 1024] matrix of dtype dt (F32, BF16 or Q8; in
// cache) times MaxTokens tokens, the shape of a prefill chunk; with pairs,
// a BF16 matrix in pair panels (bf16 products, VDPBF16PS). It is the
// compute roof of the product a model of that dtype and Options.Matmul
// runs.
func GEMMPeak(threads int, reps int, dt DType, pairs bool) float64 {
	const rows, cols = 512, 1024
	w := probeMat(rows, cols, dt, pairs)
	x := newRows(MaxTokens, cols)
	out := newRows(MaxTokens, rows)
	p := NewWorkers(threads)
	defer p.Close()
	best := 0.0
	for r := 0; r < max(reps, 1); r++ {
		start := time.Now()
		for i := 0; i < 4; i++ {
			p.MatMul(out, Linear{W: w}, x)
		}
		if f := 4 * 2 * float64(rows*cols*MaxTokens) / time.Since(start).Seconds(); f > best {
			best = f
		}
	}
	return best
}

// probeMat is a packed [rows, cols] matrix of dtype dt with small values
// (pair panels with pairs and BF16).
func probeMat(rows, cols int, dt DType, pairs bool) *Mat {
	f := make([]float32, rows*cols)
	for i := range f {
		f[i] = float32(i%7-3) * 0.01
	}
	w := &Mat{Rows: rows, Cols: cols, DType: F32, f32: f}
	switch dt {
	case BF16:
		u := make([]uint16, rows*cols)
		for i, v := range f {
			u[i] = bf16Bits(v)
		}
		w = &Mat{Rows: rows, Cols: cols, DType: BF16, u16: u}
	case Q8:
		w.Pack()
		return QuantizeQ8(w)
	}
	if pairs {
		w.PackPairs()
	} else {
		w.Pack()
	}
	return w
}

// ProductProbe is what ChooseProduct measured: the arithmetic rates, on
// one thread, of the two products of bf16 weights.
type ProductProbe struct {
	// BF16 reports whether bf16 products (pair panels, VDPBF16PS) won.
	BF16 bool
	// F32GFLOPs is the exact product's rate (bf16 weights widened to
	// float32, one FMA per weight); BF16GFLOPs the bf16 products' (0 where
	// the CPU or the kernel path has no VDPBF16PS).
	F32GFLOPs, BF16GFLOPs float64
}

// probeMargin is how much faster bf16 products must be for ChooseProduct
// to pick them: a tie keeps the exact arithmetic.
const probeMargin = 1.10

var (
	probeOnce sync.Once
	probed    ProductProbe
)

// ChooseProduct times the exact float32 product and the bf16 product of
// bf16 weights on this CPU (a short probe, about 20 ms the first time;
// later calls return the first answer, as the CPU does not change) and
// reports the faster: bf16 only when it is at least 10% faster. One thread
// runs it, in the calling goroutine, so that the answer is a property of
// the core, not of how busy the machine's other cores are.
func ChooseProduct() ProductProbe {
	probeOnce.Do(func() { probed = probeProducts() })
	return probed
}

func probeProducts() ProductProbe {
	const rows, cols = 256, 1024
	exact := probeMat(rows, cols, BF16, false)
	var res ProductProbe
	var dot *Mat
	if hasDot() {
		dot = probeMat(rows, cols, BF16, true)
	}
	x := newRows(MaxTokens, cols)
	for i, r := range x {
		for k := range r {
			r[k] = float32((i+k)%5-2) * 0.1
		}
	}
	out := newRows(MaxTokens, rows)
	rate := func(m *Mat) float64 {
		xp := xPacks.Get().(*xPack)
		defer xPacks.Put(xp)
		xp.packInputs(x, m)
		start := time.Now()
		for i := 0; i < 3; i++ {
			m.mulRowsX(out, x, xp, 0, rows)
		}
		return 3 * 2 * float64(rows*cols*MaxTokens) / time.Since(start).Seconds() / 1e9
	}
	// Alternate, best of several rounds each: other tenants' load hits
	// both alike.
	for round := 0; round < 6; round++ {
		res.F32GFLOPs = max(res.F32GFLOPs, rate(exact))
		if dot != nil {
			res.BF16GFLOPs = max(res.BF16GFLOPs, rate(dot))
		}
	}
	res.BF16 = res.BF16GFLOPs >= probeMargin*res.F32GFLOPs
	return res
}

// newRows is a [n][width] buffer of zeros.
func newRows(n, width int) [][]float32 {
	buf := make([]float32, n*width)
	r := make([][]float32, n)
	for i := range r {
		r[i] = buf[i*width : (i+1)*width : (i+1)*width]
	}
	return r
}
