package kernel

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// adviseHugePages asks for transparent huge pages on b (advice: an error,
// such as a kernel without them, changes nothing).
func adviseHugePages(b []byte) { _ = unix.Madvise(b, unix.MADV_HUGEPAGE) }

// allocBlock maps size bytes of anonymous zero memory, outside the Go heap
// (untouched pages cost no resident memory), unmapped when the block
// becomes unreachable; it falls back to the Go heap if the mapping fails.
func allocBlock(size int) *block {
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return &block{b: make([]byte, size)}
	}
	blk := &block{b: b}
	runtime.AddCleanup(blk, func(b []byte) { _ = unix.Munmap(b) }, b)
	return blk
}
