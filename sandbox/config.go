package sandbox

import (
	"errors"
	"log/slog"
	"time"
)

// ErrNoIsolation is returned by NewPool when the sandbox cannot be isolated on
// this machine (no user namespaces, mounts refused...). Set
// Config.UnsafeNoIsolation to run code without isolation anyway.
var ErrNoIsolation = errors.New("sandbox: isolation unavailable (user namespaces refused?); pass --unsafe-no-isolation (Config.UnsafeNoIsolation) to run code without a sandbox")

// ErrTooManySessions is returned by Pool.Execute when a new session would
// exceed Config.MaxSessions.
var ErrTooManySessions = errors.New("sandbox: too many sessions")

// ErrClosed is returned by a Pool that has been closed.
var ErrClosed = errors.New("sandbox: pool closed")

// Limits bound what one sandbox (one session's worker and everything it
// starts) may use. Zero fields take the defaults of DefaultLimits. Without
// cgroups (not relied on), a sandbox's total memory is bounded only by
// Processes × AddressSpace (16 GiB with the defaults).
type Limits struct {
	AddressSpace int64         // RLIMIT_AS per process, bytes
	CPUTime      time.Duration // RLIMIT_CPU hard limit per process (SIGKILL)
	Processes    int           // RLIMIT_NPROC: processes and threads of the sandbox's uid
	FileSize     int64         // RLIMIT_FSIZE: largest file written, also caps raw output
	TmpSize      int64         // size of the private /tmp
}

// DefaultLimits are the limits used for zero fields of Config.Limits.
var DefaultLimits = Limits{
	AddressSpace: 1 << 30,
	CPUTime:      120 * time.Second,
	Processes:    16,
	FileSize:     16 << 20,
	TmpSize:      32 << 20,
}

// Config configures a Pool. The zero value is usable.
type Config struct {
	// Python is the interpreter run in the sandbox; default /usr/bin/python3.
	Python string
	// Preload lists modules imported by warm workers before any session
	// uses them, when installed; default numpy and sympy. Use []string{}
	// for none.
	Preload []string
	// WarmWorkers is how many ready workers are kept for new sessions;
	// default 4; negative means none.
	WarmWorkers int
	// MaxSessions caps live sessions (each holds a Python worker: about
	// 70 MB with numpy and sympy); default 128.
	MaxSessions int
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// childArg is os.Args[1] of the re-executed binary that becomes PID 1 of a
// sandbox (see MaybeRunChild).
const childArg = "__sandbox-child"

// Inside the sandbox's user namespace: the init runs as uid 0 (it needs the
// namespace's capabilities to mount), the Python worker as sandboxUID.
const (
	sandboxUID = 1000
	sandboxGID = 1000
)

// childConfig is what the supervisor passes to the re-executed init, as JSON
// in os.Args[2].
type childConfig struct {
	Python   string   `json:"python"`
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	TmpSize  int64    `json:"tmp_size"`
	Nested   bool     `json:"nested"`   // run the worker in a nested user namespace (non-root host)
	Isolated bool     `json:"isolated"` // false: --unsafe-no-isolation, just exec Python
}
