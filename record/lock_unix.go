//go:build unix

package record

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f, failing at once when
// another open file holds it. The lock goes with the file's close (or the
// process's death).
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
