//go:build linux && amd64

package sandbox

import (
	"encoding/binary"
	"encoding/hex"
	"runtime"

	"golang.org/x/sys/unix"
)

// The seccomp filter of sandboxed code: namespaces already contain it, the
// filter takes away kernel interfaces that model-written math code never
// needs and that widen the kernel's attack surface (new namespaces, mounts,
// ptrace, BPF, io_uring, keyrings, perf, module loading...). Denied calls
// fail with EPERM; clone3 fails with ENOSYS so that the C library falls back
// to clone, whose namespace flags the filter can see.
//
// The filter is built here and installed by the Python worker itself, after
// its imports and rlimits and before any untrusted code (Go cannot run code
// between fork and exec, and the sandbox's init must stay free to clone).

// deniedSyscalls are refused with EPERM (x86-64 numbers).
var deniedSyscalls = []uint32{
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK, unix.SYS_MOVE_MOUNT,
	unix.SYS_OPEN_TREE, unix.SYS_MOUNT_SETATTR,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE,
	unix.SYS_DELETE_MODULE, unix.SYS_REBOOT, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_ACCT,
	unix.SYS_QUOTACTL, unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_SYSLOG, unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_LOOKUP_DCOOKIE,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_ADJTIMEX, unix.SYS_CLOCK_ADJTIME,
	unix.SYS_VHANGUP, unix.SYS_USELIB, unix.SYS_PERSONALITY,
	unix.SYS_SETHOSTNAME, unix.SYS_SETDOMAINNAME,
}

// nsCloneFlags are the clone flags that create namespaces.
const nsCloneFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

// seccompFilter returns the filter as hex-encoded struct sock_filter
// entries, or "" where it is not built (not x86-64).
func seccompFilter() string {
	if runtime.GOARCH != "amd64" {
		return ""
	}
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K

		offNr   = 0  // seccomp_data.nr
		offArch = 4  // seccomp_data.arch
		offArg0 = 16 // seccomp_data.args[0], low 32 bits (little endian)
	)
	var prog []unix.SockFilter
	add := func(code uint16, jt, jf uint8, k uint32) int {
		prog = append(prog, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
		return len(prog) - 1
	}
	// Jumps to the return blocks at the end are patched once their
	// places are known.
	type fix struct {
		at     int
		target *int
		onTrue bool
	}
	var fixes []fix
	var retKill, retEPERM, retENOSYS, cloneCheck int

	add(ld, 0, 0, offArch)
	fixes = append(fixes, fix{add(jeq, 0, 0, unix.AUDIT_ARCH_X86_64), &retKill, false})
	add(ld, 0, 0, offNr)
	fixes = append(fixes, fix{add(jge, 0, 0, 0x40000000), &retEPERM, true}) // the x32 ABI
	for _, nr := range deniedSyscalls {
		fixes = append(fixes, fix{add(jeq, 0, 0, nr), &retEPERM, true})
	}
	fixes = append(fixes, fix{add(jeq, 0, 0, unix.SYS_CLONE3), &retENOSYS, true})
	fixes = append(fixes, fix{add(jeq, 0, 0, unix.SYS_CLONE), &cloneCheck, true})
	add(ret, 0, 0, unix.SECCOMP_RET_ALLOW)
	cloneCheck = add(ld, 0, 0, offArg0)
	fixes = append(fixes, fix{add(jset, 0, 0, nsCloneFlags), &retEPERM, true})
	add(ret, 0, 0, unix.SECCOMP_RET_ALLOW)
	retEPERM = add(ret, 0, 0, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	retENOSYS = add(ret, 0, 0, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	retKill = add(ret, 0, 0, unix.SECCOMP_RET_KILL_PROCESS)
	for _, f := range fixes {
		off := *f.target - f.at - 1
		if off < 0 || off > 255 {
			panic("sandbox: seccomp jump out of range")
		}
		if f.onTrue {
			prog[f.at].Jt = uint8(off)
		} else {
			prog[f.at].Jf = uint8(off)
		}
	}
	buf := make([]byte, 0, 8*len(prog))
	for _, ins := range prog {
		buf = binary.LittleEndian.AppendUint16(buf, ins.Code)
		buf = append(buf, ins.Jt, ins.Jf)
		buf = binary.LittleEndian.AppendUint32(buf, ins.K)
	}
	return hex.EncodeToString(buf)
}
