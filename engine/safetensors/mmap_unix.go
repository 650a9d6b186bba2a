//go:build unix

package safetensors

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of f read-only.
func mapFile(f *os.File, size int) ([]byte, error) {
	return unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
}

// unmapFile releases a mapping made by mapFile.
func unmapFile(data []byte) error { return unix.Munmap(data) }

// evict drops data's pages from this process's resident memory; the mapping
// stays valid and faults them back in from the page cache on a later read.
func evict(data []byte) { _ = unix.Madvise(data, unix.MADV_DONTNEED) }
