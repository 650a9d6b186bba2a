package kernel

import "golang.org/x/sys/unix"

// adviseHugePages asks for transparent huge pages on b (advice: an error,
// such as a kernel without them, changes nothing).
func adviseHugePages(b []byte) { _ = unix.Madvise(b, unix.MADV_HUGEPAGE) }
