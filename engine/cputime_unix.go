//go:build unix

package engine

import "golang.org/x/sys/unix"

// cpuTime is the CPU time this process has used, in seconds.
func cpuTime() float64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
