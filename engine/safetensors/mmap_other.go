//go:build !unix

package safetensors

import "os"

// mapFile reads f into memory: there is no mmap through golang.org/x/sys/unix
// here.
func mapFile(f *os.File, size int) ([]byte, error) { return readFile(f, size) }

// unmapFile drops the copy (the garbage collector frees it).
func unmapFile(data []byte) error { return nil }

// evict does nothing: the tensors alias the copy, which must stay.
func evict(data []byte) {}
