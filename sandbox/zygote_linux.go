//go:build linux

package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// spawner starts sessions' workers: it runs the pool's fork server (the
// zygote), restarting it when it dies, and asks it for each new session.
type spawner struct {
	exe      *os.File // this program, opened once: re-executed as the init of the pool's namespaces
	cfg      *Config
	isolated bool
	nested   bool // not root on the host: one host uid for everything
	cg       *cgroups
	log      *slog.Logger
	// slots bounds the sessions being set up at once (a burst of new
	// sessions queues here rather than forking hundreds at a time).
	slots chan struct{}

	zmu sync.Mutex
	z   *zygote
}

// zygote is the fork server: an init in the pool's namespaces (the
// re-executed binary) and, under it, Python with the preload modules
// imported, which forks a session per request.
type zygote struct {
	cmd    *exec.Cmd
	conn   *net.UnixConn // requests: a byte of JSON and the session's descriptors
	stderr *capBuffer
	exited chan struct{}
}

func newSpawner(cfg *Config, isolated bool, cg *cgroups) (*spawner, error) {
	path, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox: find own executable: %w", err)
	}
	exe, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open own executable: %w", err)
	}
	return &spawner{exe: exe, cfg: cfg, isolated: isolated, nested: os.Geteuid() != 0, cg: cg, log: cfg.Logger,
		slots: make(chan struct{}, max(8, 4*runtime.NumCPU()))}, nil
}

// close ends the fork server, and with it every session it forked.
func (s *spawner) close() {
	s.zmu.Lock()
	z := s.z
	s.z = nil
	s.zmu.Unlock()
	if z != nil {
		z.kill()
		<-z.exited
	}
	s.exe.Close()
}

// Host ids that the sandbox's ids map to when the supervisor is root: the
// fork server's and the sessions' inits' uid 0 and the code's uid 1000
// become unprivileged host ids, never host root.
const (
	hostInitID   = 65533
	hostWorkerID = 65534 // nobody
)

// start starts a session's worker and waits until it is ready for code.
func (s *spawner) start(ctx context.Context) (*worker, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("sandbox: start worker: %w", ctx.Err())
	}
	defer func() { <-s.slots }()
	return s.spawn(ctx)
}

// zygote returns the running fork server, starting one if there is none
// (or the last one died).
func (s *spawner) zygote(ctx context.Context) (*zygote, error) {
	s.zmu.Lock()
	defer s.zmu.Unlock()
	if s.z != nil {
		select {
		case <-s.z.exited:
			s.log.Warn("sandbox: the fork server ended; its sessions ended with it; starting a new one",
				"state", fmt.Sprint(s.z.cmd.ProcessState), "stderr", strings.TrimSpace(s.z.stderr.String()))
			s.z = nil
		default:
			return s.z, nil
		}
	}
	z, err := s.startZygote(ctx)
	if err != nil {
		return nil, err
	}
	s.z = z
	return z, nil
}

func (s *spawner) startZygote(ctx context.Context) (*zygote, error) {
	filter := ""
	if s.isolated {
		filter = seccompFilter()
	}
	nproc := s.cfg.Limits.Processes
	if s.nested {
		nproc++ // the session's init shares the worker's uid
	}
	pcfg, _ := json.Marshal(map[string]any{
		"seccomp":  filter,
		"preload":  s.cfg.Preload,
		"as":       s.cfg.Limits.AddressSpace,
		"cpu":      int64(s.cfg.Limits.CPUTime / time.Second),
		"nproc":    nproc,
		"fsize":    s.cfg.Limits.FileSize,
		"tmp":      s.cfg.Limits.TmpSize,
		"isolated": s.isolated,
		"nested":   s.nested,
		"wait":     s.cg != nil,
	})
	ccfg, _ := json.Marshal(childConfig{
		Python:   s.cfg.Python,
		Args:     []string{"-I", "-B", "-c", workerPy, string(pcfg)},
		Env:      []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "TMPDIR=/tmp", "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"},
		TmpSize:  s.cfg.Limits.TmpSize,
		Isolated: s.isolated,
	})
	mine, theirs, err := packetPair()
	if err != nil {
		return nil, err
	}
	defer theirs.Close()
	conn, err := unixConn(mine)
	if err != nil {
		return nil, err
	}
	z := &zygote{conn: conn, stderr: &capBuffer{max: 8 << 10}, exited: make(chan struct{})}
	z.cmd = &exec.Cmd{
		Path:        "/proc/self/fd/4", // s.exe: its path may not be reachable from the sandbox's uid
		Args:        []string{"crucible-sandbox", childArg, string(ccfg)},
		Env:         []string{},
		Stderr:      z.stderr,
		ExtraFiles:  []*os.File{theirs, s.exe},
		SysProcAttr: initProcAttr(s.isolated, s.nested),
	}
	if err := z.cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sandbox: start the fork server: %w", err)
	}
	go func() {
		z.cmd.Wait()
		close(z.exited)
	}()
	// Wait until it has imported the preload modules.
	deadline := time.Now().Add(60 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	conn.SetReadDeadline(deadline)
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	conn.SetReadDeadline(time.Time{})
	var ready struct {
		Ready   bool `json:"ready"`
		Threads int  `json:"threads"`
	}
	if err == nil && (json.Unmarshal(buf[:n], &ready) != nil || !ready.Ready) {
		err = fmt.Errorf("unexpected first message %q", buf[:n])
	}
	if err == nil && ready.Threads > 1 {
		s.log.Warn("sandbox: the fork server runs several threads after importing the preload modules; forked sessions may hang",
			"threads", ready.Threads, "preload", s.cfg.Preload)
	}
	if err != nil {
		z.kill()
		<-z.exited
		msg := strings.TrimSpace(z.stderr.String())
		if msg == "" {
			msg = fmt.Sprint(z.cmd.ProcessState)
		}
		return nil, fmt.Errorf("sandbox: start the fork server: %w (%s)", err, msg)
	}
	return z, nil
}

// kill ends the fork server's init, and so every process of the pool's
// namespaces.
func (z *zygote) kill() {
	if p := z.cmd.Process; p != nil {
		killGroup(p.Pid)
		p.Kill()
	}
	z.conn.Close()
}

// spawn starts a session; the caller holds a slot.
func (s *spawner) spawn(ctx context.Context) (*worker, error) {
	z, err := s.zygote(ctx)
	if err != nil {
		return nil, err
	}
	w, err := s.fork(ctx, z)
	if err != nil {
		select {
		case <-z.exited: // the fork server died under us: once more with a new one
			if z, err2 := s.zygote(ctx); err2 == nil {
				return s.fork(ctx, z)
			}
		default:
		}
	}
	return w, err
}

// fork asks z for a new session and waits until its worker is ready.
func (s *spawner) fork(ctx context.Context, z *zygote) (_ *worker, err error) {
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: pipe: %w", err)
	}
	defer cmdR.Close()
	resR, resW, err := os.Pipe()
	if err != nil {
		cmdW.Close()
		return nil, fmt.Errorf("sandbox: pipe: %w", err)
	}
	defer resW.Close()
	ctlMine, ctlTheirs, err := packetPair()
	if err != nil {
		cmdW.Close()
		resR.Close()
		return nil, err
	}
	defer ctlTheirs.Close()
	ctl, err := unixConn(ctlMine)
	if err != nil {
		cmdW.Close()
		resR.Close()
		return nil, err
	}
	w := &worker{cmdW: cmdW, resF: resR, resR: bufio.NewReader(resR), ctl: ctl, group: !s.isolated, exited: make(chan struct{}),
		parent: z.exited}
	defer func() {
		if err != nil {
			w.kill() // once the pidfd came, watch releases the rest
		}
	}()
	rights := unix.UnixRights(int(cmdR.Fd()), int(resW.Fd()), int(ctlTheirs.Fd()))
	_, _, err = z.conn.WriteMsgUnix([]byte(`{}`), rights, nil)
	// The session's ends are its own now: the session's death must read as
	// end of file here.
	cmdR.Close()
	resW.Close()
	ctlTheirs.Close()
	if err != nil {
		return nil, fmt.Errorf("sandbox: ask the fork server for a session: %w", err)
	}
	// The session's init sends a pidfd of itself.
	stop := context.AfterFunc(ctx, func() { ctl.SetReadDeadline(time.Now()) })
	defer stop()
	ctl.SetReadDeadline(deadline)
	if err := w.receivePidfd(); err != nil {
		return nil, fmt.Errorf("sandbox: start worker: %w", err)
	}
	stop()
	ctl.SetReadDeadline(time.Time{})
	if s.cg != nil {
		// Into its cgroup before it forks the worker.
		if w.cg, err = s.cg.session(w.pid); err == nil {
			_, err = ctl.Write([]byte("go"))
		}
	}
	go w.watch()
	if err != nil {
		return nil, fmt.Errorf("sandbox: start worker: %w", err)
	}
	// Wait for the worker to say it is ready.
	stopRes := context.AfterFunc(ctx, func() { resR.SetReadDeadline(time.Now()) })
	defer stopRes()
	resR.SetReadDeadline(deadline)
	resp, err := w.read()
	if err != nil || !resp.Ready {
		w.kill()
		<-w.exited
		if err == nil {
			err = errors.New("unexpected first message")
		}
		return nil, fmt.Errorf("sandbox: start worker: %w (%s)", err, w.ending())
	}
	return w, nil
}

// receivePidfd reads the session init's first message: a pidfd of itself,
// or what went wrong.
func (w *worker) receivePidfd() error {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := w.ctl.ReadMsgUnix(buf, oob)
	if err != nil {
		return err
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if f, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, f...)
			}
		}
	}
	msg := string(buf[:n])
	if msg != "pid" || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		if n == 0 {
			return errors.New("the session ended before it started")
		}
		return errors.New(strings.TrimPrefix(msg, "error "))
	}
	unix.CloseOnExec(fds[0])
	pid, err := pidfdPid(fds[0])
	if err != nil {
		unix.Close(fds[0])
		return err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return err
	}
	w.pid, w.pidf = pid, os.NewFile(uintptr(fds[0]), "pidfd")
	return nil
}

// watch reads the session's last words on its control socket (how the
// worker ended), waits for the init to be gone and closes exited.
func (w *worker) watch() {
	buf := make([]byte, 4096)
	for {
		n, err := w.ctl.Read(buf)
		if err != nil || n == 0 {
			break
		}
		msg := string(buf[:n])
		w.mu.Lock()
		if st, ok := strings.CutPrefix(msg, "exit "); ok {
			if v, err := strconv.Atoi(st); err == nil {
				w.status, w.ended = syscall.WaitStatus(v), true
			}
		} else {
			w.diag = strings.TrimPrefix(msg, "error ")
		}
		w.mu.Unlock()
	}
	// The control socket closes when the init exits; the pidfd turns
	// readable once it (and with it the whole session) is gone.
	if rc, err := w.pidf.SyscallConn(); err == nil {
		rc.Read(func(fd uintptr) bool {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(p, 0)
			return n > 0
		})
	}
	w.release()
	close(w.exited)
	w.resF.Close()
	w.pidf.Close()
}

// release frees what the session held on the host (its descriptors, its
// cgroup), once it is gone, noting first whether its memory limit killed it.
func (w *worker) release() {
	w.ctl.Close()
	if w.cg != nil {
		oom := w.cg.oomKills() > 0
		w.mu.Lock()
		w.oom = oom
		w.mu.Unlock()
		w.cg.remove()
	}
}

// kill ends the session: killing its init (PID 1 of its pid namespace) makes
// the kernel kill every process in it. Without namespaces its process group
// goes too.
func (w *worker) kill() {
	w.once.Do(func() {
		if w.pidf != nil {
			if rc, err := w.pidf.SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) { unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0) })
			}
			if w.group && w.pid > 0 {
				syscall.Kill(-w.pid, syscall.SIGKILL)
			}
		}
		w.cmdW.Close()
		if w.pidf == nil {
			// Never started: nothing to wait for.
			w.ctl.Close()
			w.resF.Close()
			close(w.exited)
		}
	})
}

// packetPair returns the two ends of a SOCK_SEQPACKET socket pair.
func packetPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "sandbox-ctl"), os.NewFile(uintptr(fds[1]), "sandbox-ctl"), nil
}

// unixConn turns f into a *net.UnixConn (and closes f).
func unixConn(f *os.File) (*net.UnixConn, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("sandbox: socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("sandbox: socket: not a unix socket")
	}
	return uc, nil
}

// pidfdPid returns the pid (in this process's pid namespace) of the process
// a pidfd refers to.
func pidfdPid(fd int) (int, error) {
	data, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || pid <= 0 {
				return 0, fmt.Errorf("sandbox: pidfd of an ended process")
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("sandbox: no pid in the pidfd's fdinfo")
}
