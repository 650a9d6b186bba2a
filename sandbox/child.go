//go:build linux

package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaybeRunChild must be the first call in the main function of any binary
// that uses this package (and in TestMain of its tests). When the process was
// started by the sandbox as the init of a pool's namespaces, it sets them up,
// runs the fork server and exits without returning; otherwise it returns
// false at once and the program goes on as usual.
func MaybeRunChild() bool {
	if len(os.Args) < 3 || os.Args[1] != childArg {
		return false
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(os.Args[2]), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox init: bad config: %v\n", err)
		os.Exit(111)
	}
	code, err := runInit(&cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox init: %v\n", err)
		os.Exit(111)
	}
	os.Exit(code)
	return true
}

// runInit runs as PID 1 of the pool's pid namespace: it builds the
// filesystem view that every session shares (read-only), starts the fork
// server (Python, uid 0 of the pool's user namespace) and reaps every
// process of the namespace (sessions' inits are orphaned to it) until the
// fork server exits. When it exits, the kernel kills whatever else is left
// in the namespace: every session of the pool.
func runInit(cfg *childConfig) (int, error) {
	// Signals from inside the sandbox must not end the init: a pid
	// namespace's init only gets the signals it handles, so ignore them all.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGTSTP,
		syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGXCPU, syscall.SIGXFSZ)
	// Not dumpable: nothing running as the same host uid may ptrace us.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("prctl dumpable: %w", err)
	}
	unix.CloseOnExec(4) // the re-executed binary itself
	if cfg.Isolated {
		if err := setupFS(cfg); err != nil {
			return 0, err
		}
		if err := unix.Sethostname([]byte("sandbox")); err != nil {
			return 0, fmt.Errorf("sethostname: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("prctl no_new_privs: %w", err)
	}
	// Sandboxed code runs at a lower priority than the host's own work.
	_ = unix.Setpriority(unix.PRIO_PROCESS, 0, 5)

	devnull, err := os.Open("/dev/null")
	if err != nil {
		return 0, fmt.Errorf("open /dev/null: %w", err)
	}
	// fd 3: the fork server's socket to the supervisor (inherited).
	attr := &syscall.ProcAttr{
		Dir:   "/tmp",
		Env:   cfg.Env,
		Files: []uintptr{devnull.Fd(), 2, 2, 3},
		Sys:   &syscall.SysProcAttr{Setsid: cfg.Isolated, Pdeathsig: syscall.SIGKILL},
	}
	if !cfg.Isolated {
		// Unsafe mode: no namespaces. Still never run the code as root, and
		// collect what it leaves behind.
		attr.Dir = ""
		if os.Geteuid() == 0 && idMapped("/proc/self/uid_map", 65534) && idMapped("/proc/self/gid_map", 65534) {
			attr.Sys.Credential = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
		}
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	argv := append([]string{cfg.Python}, cfg.Args...)
	pid, err := syscall.ForkExec(cfg.Python, argv, attr)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", cfg.Python, err)
	}
	devnull.Close()
	unix.Close(3)
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait: %w", err)
		}
		if wpid == pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal()), nil
			}
			return ws.ExitStatus(), nil
		}
	}
}

// setupFS builds the sandbox's root: a small read-only tmpfs holding
// read-only binds of the system directories Python needs, a private
// size-capped /tmp, a fresh /proc and a minimal /dev; then pivots into it.
func setupFS(cfg *childConfig) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	root := "/tmp" // any existing directory will do: the host's /tmp is not touched
	if err := unix.Mount("sandbox-root", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,nr_inodes=4096,mode=755"); err != nil {
		return fmt.Errorf("mount root tmpfs: %w", err)
	}
	for _, p := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"} {
		if err := bindRO(root, p); err != nil {
			return err
		}
	}
	if err := os.Mkdir(root+"/etc", 0o755); err != nil {
		return fmt.Errorf("mkdir etc: %w", err)
	}
	// Only what the dynamic loader, Python and its packages read: no
	// shadow, no keys, no host configuration.
	etc := []string{"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime",
		"passwd", "group", "nsswitch.conf", "hosts", "mime.types"}
	if m, _ := filepath.Glob("/etc/python3*"); m != nil {
		for _, p := range m {
			etc = append(etc, filepath.Base(p))
		}
	}
	for _, e := range etc {
		if err := bindRO(root, "/etc/"+e); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(cfg.Python, "/usr/") {
		if err := bindRO(root, filepath.Dir(cfg.Python)); err != nil {
			return err
		}
	}
	// /tmp: private, size-capped.
	if err := os.Mkdir(root+"/tmp", 0o1777); err != nil {
		return fmt.Errorf("mkdir tmp: %w", err)
	}
	opts := fmt.Sprintf("size=%d,nr_inodes=16384,mode=1777", cfg.TmpSize)
	if err := unix.Mount("sandbox-tmp", root+"/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}
	// /proc: a fresh one for the new pid namespace.
	if err := os.Mkdir(root+"/proc", 0o555); err != nil {
		return fmt.Errorf("mkdir proc: %w", err)
	}
	if err := unix.Mount("proc", root+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	// /dev: a few harmless devices.
	if err := os.Mkdir(root+"/dev", 0o755); err != nil {
		return fmt.Errorf("mkdir dev: %w", err)
	}
	if err := unix.Mount("sandbox-dev", root+"/dev", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,mode=755"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom"} {
		if err := bindDev(root, d); err != nil {
			return err
		}
	}
	// /dev/shm: private and small (POSIX semaphores for multiprocessing).
	if err := os.Mkdir(root+"/dev/shm", 0o1777); err != nil {
		return fmt.Errorf("mkdir /dev/shm: %w", err)
	}
	if err := unix.Mount("sandbox-shm", root+"/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=8m,nr_inodes=1024,mode=1777"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, root+"/dev/"+name); err != nil {
			return fmt.Errorf("symlink /dev/%s: %w", name, err)
		}
	}
	// Pivot into the new root and drop the host's.
	if err := os.Mkdir(root+"/.old", 0o700); err != nil {
		return fmt.Errorf("mkdir .old: %w", err)
	}
	if err := unix.PivotRoot(root, root+"/.old"); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	if err := unix.Unmount("/.old", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	if err := os.Remove("/.old"); err != nil {
		return fmt.Errorf("remove /.old: %w", err)
	}
	for _, p := range []string{"/dev", "/"} {
		if err := unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", p, err)
		}
	}
	return nil
}

// bindRO makes host path p visible read-only at root+p. A symlink is copied as
// a symlink; a missing path is skipped.
func bindRO(root, p string) error {
	fi, err := os.Lstat(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	dst := root + p
	if fi.Mode()&os.ModeSymlink != 0 {
		t, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", p, err)
		}
		if err := os.Symlink(t, dst); err != nil {
			return fmt.Errorf("symlink %s: %w", dst, err)
		}
		return nil
	}
	if fi.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else {
		var f *os.File
		if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("create mount point %s: %w", dst, err)
	}
	if err := unix.Mount(p, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", p, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(-1, dst, unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("make %s read-only: %w", dst, err)
	}
	return nil
}

func bindDev(root, name string) error {
	dst := root + "/dev/" + name
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	f.Close()
	if err := unix.Mount("/dev/"+name, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /dev/%s: %w", name, err)
	}
	return nil
}

// idMapped reports whether id is mapped in the user namespace whose map file
// (/proc/self/uid_map or gid_map) is path.
func idMapped(path string, id uint64) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		var inside, outside, count uint64
		if n, _ := fmt.Sscan(line, &inside, &outside, &count); n == 3 && id >= inside && id < inside+count {
			return true
		}
	}
	return false
}
