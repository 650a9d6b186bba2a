//go:build !linux

package sandbox

import "syscall"

// initProcAttr: the sandbox needs Linux (namespaces); elsewhere starting a
// worker fails (see start), so NewPool reports why.
func initProcAttr(isolated, nested bool) *syscall.SysProcAttr { return nil }

func killGroup(pgid int) {}

// MaybeRunChild returns false: the sandbox's init only runs on Linux.
func MaybeRunChild() bool { return false }
