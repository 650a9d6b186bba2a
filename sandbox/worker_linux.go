//go:build linux

package sandbox

import (
	"os"
	"syscall"
)

// initProcAttr returns how the sandbox's init is started: in new namespaces
// when isolated, its ids mapped to unprivileged host ids.
func initProcAttr(isolated, nested bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	if !isolated {
		return a
	}
	a.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET |
		syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
	if nested {
		uid, gid := os.Geteuid(), os.Getegid()
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		return a
	}
	a.UidMappings = []syscall.SysProcIDMap{
		{ContainerID: 0, HostID: hostInitID, Size: 1},
		{ContainerID: sandboxUID, HostID: hostWorkerID, Size: 1},
	}
	a.GidMappings = []syscall.SysProcIDMap{
		{ContainerID: 0, HostID: hostInitID, Size: 1},
		{ContainerID: sandboxGID, HostID: hostWorkerID, Size: 1},
	}
	a.GidMappingsEnableSetgroups = true
	// Drop the host's supplementary groups (root's group 0 would still open
	// group-readable host files).
	a.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	return a
}

// killGroup kills the process group pgid (the init's, in unsafe mode the
// worker's too).
func killGroup(pgid int) { syscall.Kill(-pgid, syscall.SIGKILL) }
