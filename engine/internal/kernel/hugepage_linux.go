package kernel

import "syscall"

// madvHugePage is MADV_HUGEPAGE.
const madvHugePage = 14

// adviseHugePages asks for transparent huge pages on b (advice: an error,
// such as a kernel without them, changes nothing).
func adviseHugePages(b []byte) { _ = syscall.Madvise(b, madvHugePage) }
