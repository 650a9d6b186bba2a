//go:build !unix

package pipeline

import (
	"os"
	"os/exec"
)

// ownGroup does nothing where there are no process groups.
func ownGroup(cmd *exec.Cmd) {}

// stopGroup kills cmd's process (no signals to send gently here).
func stopGroup(cmd *exec.Cmd, gently bool) { cmd.Process.Kill() }

// ProcessAlive reports whether a process with this id exists.
func ProcessAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
