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
	"net"
	"os"
	"sync"
	"syscall"
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

// worker is one session's sandbox, forked by the pool's fork server: an
// init (PID 1 of the session's pid namespace) and the Python worker under
// it. The supervisor holds a pidfd of the init: killing the init makes the
// kernel kill every process of the session.
type worker struct {
	cmdW   *os.File      // requests
	resR   *bufio.Reader // responses
	resF   *os.File
	ctl    *net.UnixConn // the session's control socket: its init's pidfd, then how the worker ended
	pidf   *os.File      // pidfd of the session's init
	pid    int           // the init's pid on the host
	group  bool          // no pid namespace: kill the init's process group too
	cg     *sessionCgroup
	exited chan struct{} // closed when the init (so the whole session) is gone
	// parent, when set, is closed when the fork server this session came
	// from is gone: its sessions go with it, even before their own exit
	// is seen (a warm one must not be handed out then).
	parent <-chan struct{}
	once   sync.Once

	mu     sync.Mutex
	status syscall.WaitStatus // how the Python worker ended, when known
	ended  bool               // status is known
	diag   string             // a setup failure the session reported
	oom    bool               // its cgroup's memory limit killed it
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

// alive reports whether the worker's session is still running.
func (w *worker) alive() bool {
	select {
	case <-w.exited:
		return false
	case <-w.parent: // nil (never ready) for a worker not forked
		return false
	default:
		return true
	}
}

// ending describes how the worker ended, once it has: "signal: killed",
// "exit status 1"...
func (w *worker) ending() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.ended && w.status.Signaled():
		return "signal: " + w.status.Signal().String()
	case w.ended:
		return fmt.Sprintf("exit status %d", w.status.ExitStatus())
	case w.diag != "":
		return w.diag
	}
	return "killed"
}

// outOfMemory reports, once the worker has exited, whether its session's
// cgroup killed it for passing its memory limit.
func (w *worker) outOfMemory() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.oom
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
