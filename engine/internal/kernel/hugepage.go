package kernel

import "unsafe"

// hugePage is the size of a transparent huge page.
const hugePage = 2 << 20

// alignedBytes allocates n zero bytes aligned to hugePage and asks the
// kernel to back them with huge pages (advice only).
func alignedBytes(n int) unsafe.Pointer {
	if n == 0 {
		return nil
	}
	if n < hugePage/2 {
		return unsafe.Pointer(unsafe.SliceData(make([]byte, n)))
	}
	size := (n + hugePage - 1) &^ (hugePage - 1)
	b := make([]byte, size+hugePage)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & (hugePage - 1))
	adviseHugePages(b[off : off+size])
	return unsafe.Pointer(&b[off])
}

func alignedU16(n int) []uint16 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(alignedBytes(2*n)), n)
}

func alignedF32(n int) []float32 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(alignedBytes(4*n)), n)
}
