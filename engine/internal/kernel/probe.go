package kernel

import (
	"encoding/binary"
	"math"
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
	for i := range bufs {
		// On huge pages where the kernel offers them, as the packed weights
		// are (hugepage.go): the same TLB cost, so the ratio is fair.
		bufs[i] = unsafe.Slice((*byte)(alignedBytes(per)), per)
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
// threads threads: a [512, 1024] f32 matrix (in cache) times MaxTokens
// tokens, the shape of a prefill chunk; with matmul "bf16", a bf16 matrix
// multiplied with bf16 products (PackPairs).
func GEMMPeak(threads int, reps int, matmul string) float64 {
	const rows, cols = 512, 1024
	w := &Mat{Rows: rows, Cols: cols, DType: F32, f32: make([]float32, rows*cols)}
	for i := range w.f32 {
		w.f32[i] = float32(i%7) * 0.01
	}
	if matmul == "bf16" {
		w = &Mat{Rows: rows, Cols: cols, DType: BF16, u16: make([]uint16, rows*cols)}
		for i := range w.u16 {
			w.u16[i] = uint16(math.Float32bits(float32(i%7)*0.01) >> 16)
		}
		w.PackPairs()
	} else {
		w.Pack()
	}
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

// newRows is a [n][width] buffer of zeros.
func newRows(n, width int) [][]float32 {
	buf := make([]float32, n*width)
	r := make([][]float32, n)
	for i := range r {
		r[i] = buf[i*width : (i+1)*width : (i+1)*width]
	}
	return r
}
