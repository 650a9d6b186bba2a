//go:build unix

package kernel

import "golang.org/x/sys/unix"

// cpuSeconds is the CPU time this process has used (all threads).
func cpuSeconds() float64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
