//go:build !unix && !windows

package download

import (
	"errors"
	"os"
)

// tryLock has no file lock to take on this system (js, wasip1, plan9):
// File falls back to a partial file of its own per process.
func tryLock(*os.File) (busy bool, err error) {
	return false, errors.ErrUnsupported
}

func unlock(*os.File) error { return nil }
