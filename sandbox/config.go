package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// ErrNoIsolation is returned by NewPool when the sandbox cannot be isolated on
// this machine (no user namespaces, mounts refused...). Set
// Config.UnsafeNoIsolation to run code without isolation anyway.
var ErrNoIsolation = errors.New("sandbox: isolation unavailable (user namespaces refused?); pass --unsafe-no-isolation (Config.UnsafeNoIsolation) to run code without a sandbox")

// ErrTooManySessions is returned by Pool.Execute when a new session would
// exceed Config.MaxSessions and no idle session can be evicted (every live
// session is running a block). The error is a *BusyError.
var ErrTooManySessions = errors.New("sandbox: too many sessions")

// BusyError reports that the sandbox has no room for another session right
// now; RetryAfter is when to try again (a server sends it as Retry-After).
// It matches ErrTooManySessions with errors.Is.
type BusyError struct {
	Max        int           // the session cap; 0 when not known (a remote server)
	RetryAfter time.Duration // 0 when the server gave no hint
	Msg        string        // the server's text, for a remote server
}

func (e *BusyError) Error() string {
	switch {
	case e.Msg != "":
		return e.Msg
	case e.Max > 0:
		return fmt.Sprintf("%v: all %d sessions are running blocks", ErrTooManySessions, e.Max)
	}
	return ErrTooManySessions.Error()
}

func (e *BusyError) Unwrap() error { return ErrTooManySessions }

// RetryAfter returns how long to wait before retrying after err: the hint of
// a *BusyError in err's chain, else 0.
func RetryAfter(err error) time.Duration {
	var b *BusyError
	if errors.As(err, &b) {
		return b.RetryAfter
	}
	return 0
}

// ErrClosed is returned by a Pool that has been closed.
var ErrClosed = errors.New("sandbox: pool closed")

// Limits bound what one sandbox (one session's worker and everything it
// starts) may use. Zero fields take the defaults of DefaultLimits. Where the
// host delegates a cgroup v2 subtree, each session also gets its own cgroup
// (memory.max = Memory, pids.max = Processes + 2); elsewhere a sandbox's total
// memory is bounded only by Processes × AddressSpace (16 GiB with the
// defaults).
type Limits struct {
	AddressSpace int64         // RLIMIT_AS per process, bytes
	CPUTime      time.Duration // RLIMIT_CPU hard limit per process (SIGKILL)
	Processes    int           // RLIMIT_NPROC: processes and threads of the sandbox's uid
	FileSize     int64         // RLIMIT_FSIZE: largest file written, also caps raw output
	TmpSize      int64         // size of the private /tmp
	Memory       int64         // memory.max of the session's cgroup (when cgroups are delegated), bytes
}

// DefaultLimits are the limits used for zero fields of Config.Limits.
var DefaultLimits = Limits{
	AddressSpace: 1 << 30,
	CPUTime:      120 * time.Second,
	Processes:    16,
	FileSize:     16 << 20,
	TmpSize:      32 << 20,
	Memory:       1 << 30,
}

// Config configures a Pool. The zero value is usable.
type Config struct {
	// Python is the interpreter run in the sandbox; default /usr/bin/python3.
	Python string
	// Preload lists modules imported by warm workers before any session
	// uses them, when installed; default numpy and sympy. Use []string{}
	// for none.
	Preload []string
	// WarmWorkers is how many ready sessions, forked ahead by the fork
	// server, are kept for new sessions; default 4; negative means none.
	WarmWorkers int
	// MaxSessions caps live sessions; default 128. When a new session
	// would pass it, the idle session used least recently is ended to make
	// room; when every session is running a block, Execute fails with a
	// *BusyError (ErrTooManySessions).
	MaxSessions int
	// MaxRunning is how many blocks are admitted to run at once; the
	// others wait, and are admitted round-robin across sessions, so that no
	// session starves while another runs thousands of blocks. A block that
	// runs longer than a few tens of milliseconds gives its slot back
	// (it keeps running). Default 4 × CPUs, at least 16.
	MaxRunning int
	// IdleTimeout ends sessions unused for that long; default 10 minutes;
	// negative means never.
	IdleTimeout time.Duration
	// DefaultTimeout is a block's time limit when the request sets none;
	// default 10 s. MaxTimeout caps what a request may ask; default 10 min.
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration
	// KillGrace is how long past its timeout a block that ignores the
	// interrupt may run before its worker is killed; default 1 s.
	KillGrace time.Duration
	// DefaultMaxOutput caps stdout and stderr (characters each) when a
	// request sets no cap; default 1000.
	DefaultMaxOutput int
	// Replay re-runs a session's earlier successful blocks in a new worker
	// after its worker had to be killed, so that the state survives.
	Replay bool
	// Limits bound each sandbox.
	Limits Limits
	// UnsafeNoIsolation runs Python without namespaces when they cannot be
	// set up (rlimits and time limits still apply). Never the default.
	UnsafeNoIsolation bool
	// Cgroup chooses the cgroup v2 limits of sessions: "" finds a
	// delegated cgroup (this process's own, when it may create child
	// cgroups with the memory and pids controllers) and logs at startup
	// when there is none; "off" uses none; otherwise the path of a
	// delegated cgroup v2 directory to create session cgroups in.
	Cgroup string
	// Logger receives the pool's log lines; default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Python == "" {
		c.Python = "/usr/bin/python3"
	}
	if c.Preload == nil {
		c.Preload = []string{"numpy", "sympy"}
	}
	if c.WarmWorkers == 0 {
		c.WarmWorkers = 4
	}
	if c.WarmWorkers < 0 {
		c.WarmWorkers = 0
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 128
	}
	if c.MaxRunning <= 0 {
		c.MaxRunning = max(16, 4*runtime.NumCPU())
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = 10 * time.Second
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = 10 * time.Minute
	}
	if c.KillGrace <= 0 {
		c.KillGrace = time.Second
	}
	if c.DefaultMaxOutput <= 0 {
		c.DefaultMaxOutput = 1000
	}
	l, d := &c.Limits, DefaultLimits
	if l.AddressSpace <= 0 {
		l.AddressSpace = d.AddressSpace
	}
	if l.CPUTime <= 0 {
		l.CPUTime = d.CPUTime
	}
	if l.Processes <= 0 {
		l.Processes = d.Processes
	}
	if l.FileSize <= 0 {
		l.FileSize = d.FileSize
	}
	if l.TmpSize <= 0 {
		l.TmpSize = d.TmpSize
	}
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// childArg is os.Args[1] of the re-executed binary that becomes PID 1 of a
// sandbox (see MaybeRunChild).
const childArg = "__sandbox-child"

// Inside the pool's user namespace the fork server runs as uid 0 (it writes
// the id maps of the sessions' user namespaces); sessions' code runs as
// sandboxUID, mapped to an unprivileged host uid.
const (
	sandboxUID = 1000
	sandboxGID = 1000
)

// childConfig is what the supervisor passes to the re-executed init of the
// fork server, as JSON in os.Args[2].
type childConfig struct {
	Python   string   `json:"python"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	TmpSize  int64    `json:"tmp_size"`
	Isolated bool     `json:"isolated"` // false: --unsafe-no-isolation, no namespaces
}
