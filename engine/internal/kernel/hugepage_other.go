//go:build !linux

package kernel

func adviseHugePages(b []byte) {}

// allocBlock allocates size zero bytes on the Go heap.
func allocBlock(size int) *block { return &block{b: make([]byte, size)} }
