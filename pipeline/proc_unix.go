//go:build unix

package pipeline

import (
	"os/exec"
	"syscall"
)

// ownGroup makes cmd the leader of a new process group, so that
// stopGroup reaches the processes it starts too (a shell's children).
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// stopGroup signals cmd's process group: gently (SIGTERM), or not.
func stopGroup(cmd *exec.Cmd, gently bool) {
	sig := syscall.SIGKILL
	if gently {
		sig = syscall.SIGTERM
	}
	syscall.Kill(-cmd.Process.Pid, sig)
}

// ProcessAlive reports whether a process with this id exists.
func ProcessAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }
