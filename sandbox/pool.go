package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Status is the outcome of one block.
type Status string

// Outcomes of a block, as NeMo-Skills names them.
const (
	StatusCompleted Status = "completed" // ran to the end
	StatusError     Status = "error"     // raised (traceback in Stdout for ipython, Stderr for python)
	StatusTimeout   Status = "timeout"   // ran out of time
)

// Result is what running one block gave. Outcomes of the code itself
// (errors, timeouts, a killed worker) are results, not Go errors.
type Result struct {
	Status Status
	Stdout string
	Stderr string
	// NewSession reports that the block did not run in (or did not leave)
	// the state the session had: the first block of a session, the first
	// block after the worker was killed (unless Config.Replay restored it),
	// and the block whose timeout or crash killed the worker.
	NewSession bool
	// OutOfMemory reports that the session was killed for passing its
	// cgroup's memory limit (Limits.Memory); Stderr says so too.
	OutOfMemory bool
	Duration    time.Duration
}

// ExecOptions tune one block; zero values take the pool's defaults.
type ExecOptions struct {
	Timeout        time.Duration // wall time of the block
	Stdin          string        // what the block reads from sys.stdin
	MaxOutputChars int           // cap on stdout and on stderr, in characters
	// Language is "ipython" (default: the value of a last bare expression is
	// printed, tracebacks go to stdout), or "python"/"python3" (plain exec,
	// tracebacks to stderr).
	Language string
}

// ErrUnsupportedLanguage is returned for a language other than Python.
var ErrUnsupportedLanguage = errors.New("sandbox: unsupported language")

// SessionInfo describes a live session.
type SessionInfo struct {
	ID         string    `json:"id"`
	Created    time.Time `json:"created"`
	LastUsed   time.Time `json:"last_used"`
	Executions int       `json:"executions"`
	Busy       bool      `json:"busy"`
}

// Pool runs Python blocks in sandboxes: one persistent worker per session,
// forked by the pool's fork server, plus warm workers for new sessions. It is
// safe for concurrent use.
type Pool struct {
	cfg  Config
	sp   *spawner
	cg   *cgroups // nil: no cgroup limits
	gate *gate
	log  *slog.Logger

	evicted atomic.Int64

	warm    chan *worker
	pending atomic.Int32 // workers being started for the warm pool
	refill  chan struct{}

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type session struct {
	id      string
	created time.Time
	users   int // Execute calls holding the session (guarded by Pool.mu); > 0: not evicted

	run        sync.Mutex // held while a block runs
	history    []string   // successful blocks, kept for Config.Replay
	fresh      bool       // the next block starts from an empty state
	executions int

	wmu      sync.Mutex
	w        *worker
	closed   bool
	busy     bool
	lastUsed time.Time
}

// NewPool starts a pool: its fork server (Python with the preload modules
// imported, in the pool's namespaces) and one session at once, to check that
// isolation works here; when it cannot be set up the error wraps
// ErrNoIsolation, unless cfg.UnsafeNoIsolation is set, in which case the
// pool runs code without namespaces and logs a warning. It logs whether
// sessions get cgroup v2 limits (see Config.Cgroup).
func NewPool(ctx context.Context, cfg Config) (*Pool, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("%w (the sandbox needs Linux; this is %s)", ErrNoIsolation, runtime.GOOS)
	}
	cfg = cfg.withDefaults()
	cg, why := setupCgroups(&cfg)
	closeCg := func() {
		if cg != nil {
			cg.close()
		}
	}
	sp, err := newSpawner(&cfg, true, cg)
	if err != nil {
		closeCg()
		return nil, err
	}
	first, err := sp.start(ctx)
	if err != nil {
		// Tell a missing sandbox from a broken interpreter.
		sp.close()
		var err1 error
		if sp, err1 = newSpawner(&cfg, false, cg); err1 != nil {
			closeCg()
			return nil, err1
		}
		w, err2 := sp.start(ctx)
		if err2 != nil {
			sp.close()
			closeCg()
			return nil, fmt.Errorf("sandbox: cannot start %s: %w", cfg.Python, err2)
		}
		if !cfg.UnsafeNoIsolation {
			w.kill()
			sp.close()
			closeCg()
			return nil, fmt.Errorf("%w: %v", ErrNoIsolation, err)
		}
		cfg.Logger.Warn("sandbox: running code WITHOUT isolation (--unsafe-no-isolation)", "reason", err.Error())
		first = w
	}
	if cg != nil {
		cfg.Logger.Info("sandbox: each session gets a cgroup", "cgroup", cg.describe())
	} else {
		cfg.Logger.Info("sandbox: no cgroup limits per session; memory is bounded by rlimits only",
			"reason", why, "address_space_mib_per_process", cfg.Limits.AddressSpace>>20, "processes", cfg.Limits.Processes)
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:      cfg,
		sp:       sp,
		cg:       cg,
		gate:     newGate(cfg.MaxRunning),
		log:      cfg.Logger,
		warm:     make(chan *worker, max(cfg.WarmWorkers, 1)),
		refill:   make(chan struct{}, 1),
		sessions: make(map[string]*session),
		ctx:      pctx,
		cancel:   cancel,
	}
	p.warm <- first
	for i := 0; i < min(cfg.WarmWorkers, 2); i++ {
		p.wg.Add(1)
		go p.filler()
	}
	p.kick()
	if cfg.IdleTimeout > 0 {
		p.wg.Add(1)
		go p.janitor()
	}
	return p, nil
}

// Config returns the configuration the pool runs with: the one given to
// NewPool with the defaults filled in. Changing the result (its Preload
// included) does not change the pool.
func (p *Pool) Config() Config {
	c := p.cfg
	c.Preload = slices.Clone(c.Preload)
	return c
}

// Isolated reports whether code runs in namespaces (false only with
// Config.UnsafeNoIsolation on a machine where they cannot be set up).
func (p *Pool) Isolated() bool { return p.sp.isolated }

// kick asks the fillers to top up the warm pool.
func (p *Pool) kick() {
	select {
	case p.refill <- struct{}{}:
	default:
	}
}

// filler keeps the warm pool full.
func (p *Pool) filler() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.refill:
		}
		for p.ctx.Err() == nil {
			n := p.pending.Add(1)
			if len(p.warm)+int(n) > p.cfg.WarmWorkers {
				p.pending.Add(-1)
				break
			}
			p.kick() // let the other filler start one too
			w, err := p.sp.start(p.ctx)
			p.pending.Add(-1)
			if err != nil {
				if p.ctx.Err() == nil {
					p.log.Error("sandbox: start warm worker", "err", err)
					time.Sleep(time.Second)
				}
				continue
			}
			select {
			case p.warm <- w:
			default:
				w.kill()
			}
		}
	}
}

// janitor ends sessions idle for longer than IdleTimeout.
func (p *Pool) janitor() {
	defer p.wg.Done()
	every := min(p.cfg.IdleTimeout/4, 30*time.Second)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		var idle []string
		now := time.Now()
		p.mu.Lock()
		for id, s := range p.sessions {
			s.wmu.Lock()
			if s.users == 0 && !s.busy && now.Sub(s.lastUsed) > p.cfg.IdleTimeout {
				idle = append(idle, id)
			}
			s.wmu.Unlock()
		}
		p.mu.Unlock()
		for _, id := range idle {
			p.log.Debug("sandbox: session expired", "session", id)
			p.CloseSession(id)
		}
	}
}

// worker returns a ready worker: a warm one if there is one, else a new one.
// While all start slots are busy, it takes whichever comes first: a worker
// a filler finished, or a slot to start its own.
func (p *Pool) worker(ctx context.Context) (*worker, error) {
	defer p.kick()
	for {
		select {
		case w := <-p.warm:
			if w.alive() {
				return w, nil
			}
			w.kill()
			continue
		default:
		}
		select {
		case w := <-p.warm:
			if w.alive() {
				return w, nil
			}
			w.kill()
			continue
		case p.sp.slots <- struct{}{}:
			w, err := p.sp.spawn(ctx)
			<-p.sp.slots
			return w, err
		case <-ctx.Done():
			return nil, fmt.Errorf("sandbox: wait for a worker: %w", ctx.Err())
		}
	}
}

// WarmWorkers returns how many ready workers wait for new sessions.
func (p *Pool) WarmWorkers() int { return len(p.warm) }

// Execute runs code in the session sessionID, creating the session if it does
// not exist; an empty sessionID runs the code in a fresh sandbox that is
// thrown away afterwards. Blocks of one session run one at a time, in the
// order they arrive; blocks of different sessions are admitted round-robin
// (Config.MaxRunning). What the code did (completed, raised, timed out,
// killed its worker, passed its memory limit) is in the Result; the error is
// for the caller's own failures: ctx ended (the block's worker is then
// killed), a bad language, too many busy sessions (*BusyError), the pool
// closed, a worker that could not start.
func (p *Pool) Execute(ctx context.Context, sessionID, code string, opts ExecOptions) (Result, error) {
	req, timeout, err := p.request(code, opts)
	if err != nil {
		return Result{}, err
	}
	if sessionID == "" {
		w, err := p.worker(ctx)
		if err != nil {
			return Result{}, err
		}
		defer w.kill()
		done, err := p.gate.admit(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("sandbox: execute: %w", err)
		}
		defer done()
		res, _, err := p.run(ctx, w, req, timeout)
		return res, err
	}
	for {
		s, err := p.session(sessionID)
		if err != nil {
			return Result{}, err
		}
		res, err := p.executeIn(ctx, s, code, req, timeout)
		p.mu.Lock()
		s.users--
		p.mu.Unlock()
		if errors.Is(err, errSessionGone) {
			// Closed (or expired) between the lookup and now: the id
			// names a new session.
			continue
		}
		return res, err
	}
}

// errSessionGone reports a session closed before its block could start.
var errSessionGone = errors.New("sandbox: session closed")

func (p *Pool) executeIn(ctx context.Context, s *session, code string, req *request, timeout time.Duration) (Result, error) {
	sessionID := s.id
	s.run.Lock()
	defer s.run.Unlock()
	s.setBusy(true)
	defer s.setBusy(false)

	s.wmu.Lock()
	w, closed := s.w, s.closed
	s.wmu.Unlock()
	if closed {
		return Result{}, errSessionGone
	}
	var err error
	newSession := s.fresh
	if w != nil && !w.alive() {
		w.kill() // it died between blocks (its fork server did, or its memory limit killed it)
		w = nil
	}
	newWorker := w == nil
	if newWorker {
		if w, err = p.worker(ctx); err != nil {
			return Result{}, err
		}
		if !s.setWorker(w) {
			w.kill()
			return Result{}, errSessionGone
		}
		newSession = true
	}
	done, err := p.gate.admit(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: execute: %w", err)
	}
	defer done()
	if newWorker {
		if p.cfg.Replay && len(s.history) > 0 && p.replay(ctx, w, s.history) {
			newSession = false
		} else {
			s.history = nil
		}
	}
	s.fresh = false
	res, alive, err := p.run(ctx, w, req, timeout)
	s.wmu.Lock()
	s.executions++
	s.wmu.Unlock()
	if !alive {
		s.setWorker(nil)
		s.fresh = true
		res.NewSession = true
	} else {
		res.NewSession = res.NewSession || newSession
	}
	if p.cfg.Replay && err == nil && res.Status == StatusCompleted {
		s.history = append(s.history, code)
	}
	s.wmu.Lock()
	if s.closed && err == nil && !alive {
		err = fmt.Errorf("sandbox: session %s was closed", sessionID)
	}
	s.wmu.Unlock()
	return res, err
}

func (p *Pool) request(code string, opts ExecOptions) (*request, time.Duration, error) {
	mode := "ipython"
	switch opts.Language {
	case "", "ipython":
	case "python", "python3":
		mode = "python"
	default:
		return nil, 0, fmt.Errorf("%w: %q", ErrUnsupportedLanguage, opts.Language)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = p.cfg.DefaultTimeout
	}
	timeout = min(timeout, p.cfg.MaxTimeout)
	maxOut := opts.MaxOutputChars
	if maxOut <= 0 {
		maxOut = p.cfg.DefaultMaxOutput
	}
	maxOut = min(maxOut, 1<<20)
	return &request{Code: code, Timeout: timeout.Seconds(), Stdin: opts.Stdin, Max: maxOut, Mode: mode}, timeout, nil
}

// run runs one block in w; alive reports whether w survived.
func (p *Pool) run(ctx context.Context, w *worker, req *request, timeout time.Duration) (res Result, alive bool, err error) {
	start := time.Now()
	resp, err := w.exec(ctx, req, start.Add(timeout+p.cfg.KillGrace))
	res.Duration = time.Since(start)
	switch {
	case err == nil:
		res.Status = Status(resp.Status)
		res.Stdout, res.Stderr = resp.Stdout, resp.Stderr
		if resp.StdoutCut {
			res.Stdout += "<output cut>"
		}
		if resp.StderrCut {
			res.Stderr += "<output cut>"
		}
		if res.Status == StatusTimeout {
			res.Stderr += timeoutText(timeout)
		}
		return res, true, nil
	case ctx.Err() != nil:
		return res, false, fmt.Errorf("sandbox: execute: %w", ctx.Err())
	case errors.Is(err, errDeadline):
		res.Status = StatusTimeout
		res.Stderr = timeoutText(timeout)
		return res, false, nil
	case errors.Is(err, errWorkerDied):
		<-w.exited
		res.Status = StatusError
		if w.outOfMemory() {
			res.OutOfMemory = true
			res.Stderr = fmt.Sprintf("The sandbox was killed: it passed its memory limit (%d MiB); the session's state is lost.\n", p.cfg.Limits.Memory>>20)
		} else {
			res.Stderr = fmt.Sprintf("The sandbox's Python process ended (%s); the session's state is lost.\n", w.ending())
		}
		return res, false, nil
	default:
		return res, false, err
	}
}

func timeoutText(t time.Duration) string {
	return "Execution timed out after " + strconv.FormatFloat(math.Round(t.Seconds()*1000)/1000, 'f', -1, 64) + " seconds\n"
}

// replay re-runs earlier blocks in a new worker; it reports whether all of
// them completed again.
func (p *Pool) replay(ctx context.Context, w *worker, history []string) bool {
	for _, code := range history {
		req, timeout, _ := p.request(code, ExecOptions{})
		res, alive, err := p.run(ctx, w, req, timeout)
		if err != nil || !alive || res.Status != StatusCompleted {
			return false
		}
	}
	return true
}

// session returns the session id, creating it when needed, and counts the
// caller among its users (the caller decrements s.users under p.mu when
// done). A new session past MaxSessions ends the idle session used least
// recently; when there is none, all are busy: a *BusyError.
func (p *Pool) session(id string) (*session, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if s, ok := p.sessions[id]; ok {
		s.users++
		p.mu.Unlock()
		return s, nil
	}
	var victim *session
	if len(p.sessions) >= p.cfg.MaxSessions {
		if victim = p.leastRecentlyUsed(); victim == nil {
			p.mu.Unlock()
			return nil, &BusyError{Max: p.cfg.MaxSessions, RetryAfter: time.Second}
		}
		delete(p.sessions, victim.id)
	}
	now := time.Now()
	s := &session{id: id, created: now, lastUsed: now, fresh: true, users: 1}
	p.sessions[id] = s
	p.mu.Unlock()
	if victim != nil {
		victim.close()
		p.evicted.Add(1)
		p.log.Debug("sandbox: idle session evicted for a new one", "session", victim.id, "new", id)
	}
	return s, nil
}

// leastRecentlyUsed returns the idle session used least recently, nil if
// every session is in use. The caller holds p.mu.
func (p *Pool) leastRecentlyUsed() *session {
	var lru *session
	var last time.Time
	for _, s := range p.sessions {
		if s.users > 0 {
			continue
		}
		s.wmu.Lock()
		busy, t := s.busy, s.lastUsed
		s.wmu.Unlock()
		if !busy && (lru == nil || t.Before(last)) {
			lru, last = s, t
		}
	}
	return lru
}

// Evicted returns how many idle sessions were ended to make room for new
// ones (see Config.MaxSessions).
func (p *Pool) Evicted() int64 { return p.evicted.Load() }

func (s *session) setBusy(b bool) {
	s.wmu.Lock()
	s.busy = b
	s.lastUsed = time.Now()
	s.wmu.Unlock()
}

// setWorker installs w (nil: none); it returns false when the session has
// been closed meanwhile.
func (s *session) setWorker(w *worker) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return false
	}
	s.w = w
	return true
}

// CloseSession ends a session and kills its sandbox, with everything the
// code started in it. It reports whether the session existed.
func (p *Pool) CloseSession(id string) bool {
	p.mu.Lock()
	s, ok := p.sessions[id]
	delete(p.sessions, id)
	p.mu.Unlock()
	if !ok {
		return false
	}
	if w := s.close(); w != nil {
		<-w.exited
	}
	return true
}

// EndSession is CloseSession with the signature of Client.EndSession, so
// that a Pool and a Client can serve behind one interface.
func (p *Pool) EndSession(_ context.Context, id string) error {
	p.CloseSession(id)
	return nil
}

// close marks s closed and kills its worker, which it returns (nil if none).
func (s *session) close() *worker {
	s.wmu.Lock()
	w := s.w
	s.closed = true
	s.w = nil
	s.wmu.Unlock()
	if w != nil {
		w.kill()
	}
	return w
}

// Sessions lists the live sessions, oldest first.
func (p *Pool) Sessions() []SessionInfo {
	p.mu.Lock()
	out := make([]SessionInfo, 0, len(p.sessions))
	for _, s := range p.sessions {
		s.wmu.Lock()
		out = append(out, SessionInfo{ID: s.id, Created: s.created, LastUsed: s.lastUsed, Executions: s.executions, Busy: s.busy})
		s.wmu.Unlock()
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// Close ends every session and warm worker. Blocks running in them end with
// an error.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ss := p.sessions
	p.sessions = nil
	p.mu.Unlock()
	p.cancel()
	var dead []*worker
	for _, s := range ss {
		if w := s.close(); w != nil {
			dead = append(dead, w)
		}
	}
	for _, w := range dead {
		<-w.exited
	}
	p.wg.Wait()
	for {
		select {
		case w := <-p.warm:
			w.kill()
			<-w.exited
			continue
		default:
		}
		break
	}
	p.sp.close()
	if p.cg != nil {
		p.cg.close()
	}
	return nil
}
