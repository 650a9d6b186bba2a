// Package sandbox runs untrusted Python code, as written by a language model,
// in isolated and stateful sessions.
//
// Each session has one persistent Python worker, so later blocks see the
// variables of earlier ones. Workers are forked by the pool's fork server:
// one Python process per pool, with numpy and sympy already imported, that
// never runs untrusted code; sessions share its imported pages
// copy-on-write, so a new session costs a fork, not an interpreter start.
// Every session gets its own user, pid, network, mount, IPC and UTS
// namespaces, its code runs as an unprivileged uid: its root is a read-only
// view of the system directories Python needs (built once, for the fork
// server), /tmp and /dev/shm are private size-capped tmpfs, /proc is its
// own, and there is no network. A seccomp filter denies the kernel
// interfaces math code never needs (new namespaces, mounts, ptrace, bpf,
// io_uring...). Address space, CPU time, processes and file size are limited
// by rlimits; where the host delegates a cgroup v2 subtree, each session
// also gets a cgroup (memory.max, pids.max), and a session its memory limit
// kills says so in its Result. Every block has a wall-time limit and capped
// output. A block that times out is interrupted (the state is kept); one
// that ignores the interrupt has its worker killed, and the session starts
// afresh (reported as a new session; Config.Replay re-runs its earlier
// successful blocks). Ending a session kills everything it started. A few
// sessions are forked ahead for new ones.
//
// Blocks are admitted to run round-robin across sessions (Config.MaxRunning).
// Config.MaxSessions caps live sessions: past it a new session ends the idle
// session used least recently, and when every session is running a block,
// Execute returns a *BusyError (HTTP 503 with Retry-After from the server).
//
// Go cannot run code between fork and exec, so the sandbox re-executes the
// current binary as the init of each pool's namespaces. Any program using
// this package must call MaybeRunChild first thing in main (and in
// TestMain):
//
//	func main() {
//		if sandbox.MaybeRunChild() {
//			return
//		}
//		pool, err := sandbox.NewPool(ctx, sandbox.Config{})
//		if err != nil { ... } // errors.Is(err, sandbox.ErrNoIsolation): no user namespaces
//		defer pool.Close()
//		res, err := pool.Execute(ctx, "solution-17", "x = 6*7\nx", sandbox.ExecOptions{})
//		// res.Status == sandbox.StatusCompleted, res.Stdout == "42\n"
//	}
//
// NewServer serves a pool over HTTP with the API of NeMo-Skills' sandbox
// (POST /execute, GET /health, GET /sessions, DELETE /sessions/{id}),
// optionally behind an API key (ServerOptions.APIKey; Client.APIKey sends it).
//
// Where namespaces cannot be set up NewPool refuses with ErrNoIsolation;
// Config.UnsafeNoIsolation runs code without them (limits still apply).
// The package is Linux-only.
package sandbox
