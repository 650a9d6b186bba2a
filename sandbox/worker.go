package sandbox

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

//go:embed worker.py
var workerPy string

// maxMessage bounds one message from a worker (the worker caps its output
// far below this; a larger message means the worker is not ours any more).
const maxMessage = 64 << 20

// request is one message to a worker.
type request struct {
	Code    string  `json:"code,omitempty"`
	Timeout float64 `json:"timeout,omitempty"`
	Stdin   string  `json:"stdin,omitempty"`
	Max     int     `json:"max,omitempty"`
	Mode    string  `json:"mode,omitempty"`
	Exit    bool    `json:"exit,omitempty"`
}

// response is one message from a worker.
type response struct {
	Ready     bool   `json:"ready"`
	Status    string `json:"status"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	StdoutCut bool   `json:"stdout_cut"`
	StderrCut bool   `json:"stderr_cut"`
}

// errWorkerDied reports that a worker's process ended or broke the protocol.
var errWorkerDied = errors.New("sandbox worker died")

// errDeadline reports that a worker did not answer in time (it was killed).
var errDeadline = errors.New("sandbox worker did not answer in time")

// worker is one sandbox: an init process in its own namespaces and the Python
// worker under it.
type worker struct {
	cmd    *exec.Cmd
	cmdW   *os.File      // requests
	resR   *bufio.Reader // responses
	resF   *os.File
	stderr *capBuffer // the init's and Python's own diagnostics
	exited chan struct{}
	once   sync.Once
}

// spawner starts workers: it knows the binary to re-execute and the settings.
type spawner struct {
	exe      *os.File // this program, opened once: re-executed as the sandbox init
	python   string
	preload  []string
	limits   Limits
	isolated bool
	nested   bool // not root on the host: one uid mapping and a nested user namespace
	// slots bounds the workers starting at once: each start imports the
	// preloaded modules, CPU-bound; more at once than CPUs only thrash.
	slots chan struct{}
}

func newSpawner(cfg *Config, isolated bool) (*spawner, error) {
	path, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sandbox: find own executable: %w", err)
	}
	exe, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open own executable: %w", err)
	}
	return &spawner{exe: exe, python: cfg.Python, preload: cfg.Preload, limits: cfg.Limits,
		isolated: isolated, nested: os.Geteuid() != 0, slots: make(chan struct{}, max(2, runtime.NumCPU()))}, nil
}

func (s *spawner) close() { s.exe.Close() }

// Host ids that the sandbox's ids map to when the supervisor is root: the
// init's uid 0 and the worker's uid 1000 become unprivileged host ids, never
// host root.
const (
	hostInitID   = 65533
	hostWorkerID = 65534 // nobody
)

// start starts a worker and waits until it is ready for code.
func (s *spawner) start(ctx context.Context) (*worker, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("sandbox: start worker: %w", ctx.Err())
	}
	defer func() { <-s.slots }()
	return s.spawn(ctx)
}

// spawn starts a worker; the caller holds a slot.
func (s *spawner) spawn(ctx context.Context) (*worker, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("sandbox: needs Linux (namespaces, /proc), not %s", runtime.GOOS)
	}
	filter := ""
	if s.isolated {
		filter = seccompFilter()
	}
	wcfg, _ := json.Marshal(map[string]any{
		"seccomp": filter,
		"preload": s.preload,
		"as":      s.limits.AddressSpace,
		"cpu":     int64(s.limits.CPUTime / time.Second),
		"nproc":   s.limits.Processes,
		"fsize":   s.limits.FileSize,
	})
	ccfg, _ := json.Marshal(childConfig{
		Python:   s.python,
		Args:     []string{"-I", "-B", "-c", workerPy, string(wcfg)},
		Env:      []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "TMPDIR=/tmp", "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1"},
		TmpSize:  s.limits.TmpSize,
		Nested:   s.nested,
		Isolated: s.isolated,
	})
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: pipe: %w", err)
	}
	resR, resW, err := os.Pipe()
	if err != nil {
		cmdR.Close()
		cmdW.Close()
		return nil, fmt.Errorf("sandbox: pipe: %w", err)
	}
	w := &worker{cmdW: cmdW, resF: resR, resR: bufio.NewReader(resR), stderr: &capBuffer{max: 8 << 10}, exited: make(chan struct{})}
	cmd := &exec.Cmd{
		Path:        "/proc/self/fd/5", // s.exe: its path may not be reachable from the sandbox's uid
		Args:        []string{"crucible-sandbox", childArg, string(ccfg)},
		Env:         []string{},
		Stderr:      w.stderr,
		ExtraFiles:  []*os.File{cmdR, resW, s.exe},
		SysProcAttr: initProcAttr(s.isolated, s.nested),
	}
	err = cmd.Start()
	cmdR.Close()
	resW.Close()
	if err != nil {
		cmdW.Close()
		resR.Close()
		return nil, fmt.Errorf("sandbox: start init: %w", err)
	}
	w.cmd = cmd
	go func() {
		cmd.Wait()
		close(w.exited)
	}()
	// Wait for the worker to say it is ready (after its imports).
	deadline := time.Now().Add(60 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { resR.SetReadDeadline(time.Now()) })
	defer stop()
	resR.SetReadDeadline(deadline)
	resp, err := w.read()
	if err != nil || !resp.Ready {
		w.kill()
		<-w.exited
		msg := strings.TrimSpace(w.stderr.String())
		if msg == "" {
			msg = fmt.Sprint(cmd.ProcessState)
		}
		if err == nil {
			err = errors.New("unexpected first message")
		}
		return nil, fmt.Errorf("sandbox: start worker: %w (%s)", err, msg)
	}
	return w, nil
}

// exec runs one block; deadline is when the worker is killed if it has not
// answered. ctx ending also kills the worker.
func (w *worker) exec(ctx context.Context, req *request, deadline time.Time) (*response, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("sandbox: encode request: %w", err)
	}
	msg := make([]byte, 4+len(data))
	binary.BigEndian.PutUint32(msg, uint32(len(data)))
	copy(msg[4:], data)
	// An ended ctx abandons the block: the worker is killed (if that races
	// with the answer, the next block finds the worker dead and starts anew).
	stop := context.AfterFunc(ctx, w.kill)
	defer stop()
	w.cmdW.SetWriteDeadline(deadline)
	if _, err := w.cmdW.Write(msg); err != nil {
		w.kill()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errDeadline
		}
		return nil, fmt.Errorf("%w: %v", errWorkerDied, err)
	}
	w.resF.SetReadDeadline(deadline)
	resp, err := w.read()
	if err != nil {
		w.kill()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errDeadline
		}
		return nil, err
	}
	return resp, nil
}

func (w *worker) read() (*response, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(w.resR, hdr[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errWorkerDied, err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxMessage {
		return nil, fmt.Errorf("%w: message of %d bytes", errWorkerDied, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(w.resR, buf); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errWorkerDied, err)
	}
	var resp response
	if err := json.Unmarshal(buf, &resp); err != nil {
		return nil, fmt.Errorf("%w: bad message: %v", errWorkerDied, err)
	}
	return &resp, nil
}

// kill ends the sandbox: killing its init (PID 1 of its pid namespace) makes
// the kernel kill every process in it. In unsafe mode the process group goes
// too.
func (w *worker) kill() {
	w.once.Do(func() {
		if p := w.cmd.Process; p != nil {
			killGroup(p.Pid)
			p.Kill()
		}
		w.cmdW.Close()
		go func() {
			<-w.exited
			w.resF.Close()
		}()
	})
}

// alive reports whether the worker's process is still running.
func (w *worker) alive() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// capBuffer keeps the first max bytes written to it.
type capBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		b.buf = append(b.buf, p[:room]...)
	}
	return len(p), nil
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
