package kernel

import "unsafe"

// hugePage is the size of a transparent huge page.
const hugePage = 2 << 20

// block is memory that holds packed weights. Large blocks live outside the
// Go heap where the system allows it (an anonymous mapping on Linux, see
// hugepage_linux.go), so that the garbage collector neither scans nor
// counts them: with a model's gigabytes inside the heap, GOGC's default
// would let garbage grow to the size of the model before a collection,
// and serving would hold about twice the weights. A block is released
// when the last matrix holding it becomes unreachable.
type block struct {
	b []byte
}

// alignedBytes allocates n zero bytes aligned to hugePage (when n is
// large) and asks the kernel to back them with huge pages (advice only).
// The memory stays valid while the returned block is reachable: keep it
// with the data (Mat.mem).
func alignedBytes(n int) (unsafe.Pointer, *block) {
	if n == 0 {
		return nil, nil
	}
	if n < hugePage/2 {
		b := make([]byte, n)
		return unsafe.Pointer(unsafe.SliceData(b)), &block{b: b}
	}
	// Aligned to a huge page, which backs the whole huge pages; the tail
	// (under 2 MiB) stays in small pages, so that it costs only its bytes.
	blk := allocBlock(n + hugePage)
	off := int(-uintptr(unsafe.Pointer(&blk.b[0])) & (hugePage - 1))
	if full := n &^ (hugePage - 1); full > 0 {
		adviseHugePages(blk.b[off : off+full])
	}
	return unsafe.Pointer(&blk.b[off]), blk
}

func alignedU16(n int) ([]uint16, *block) {
	if n == 0 {
		return nil, nil
	}
	p, blk := alignedBytes(2 * n)
	return unsafe.Slice((*uint16)(p), n), blk
}

func alignedF32(n int) ([]float32, *block) {
	if n == 0 {
		return nil, nil
	}
	p, blk := alignedBytes(4 * n)
	return unsafe.Slice((*float32)(p), n), blk
}
