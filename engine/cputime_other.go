//go:build !unix && !windows

package engine

import "time"

var start = time.Now()

// cpuTime is the CPU time this process has used, in seconds; where the
// system does not tell, the wall time since start (an upper bound).
func cpuTime() float64 { return time.Since(start).Seconds() }
