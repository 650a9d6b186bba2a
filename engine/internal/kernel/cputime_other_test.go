//go:build !unix

package kernel

import "time"

var start = time.Now()

// cpuSeconds stands in for the CPU time where the system does not give it
// through golang.org/x/sys/unix: the wall time since start.
func cpuSeconds() float64 { return time.Since(start).Seconds() }
