package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crucible-ml/crucible/sandbox"
)

// SandboxOptions configure Sandbox; zero values take the defaults.
type SandboxOptions struct {
	Sessions    int           // concurrent sessions in the throughput phase; default 32
	Duration    time.Duration // length of the throughput phase; default 10 s
	NewSessions int           // new sessions timed in the latency phase; default 50
	Burst       int           // new sessions opened at once in the burst phase; default 128
	ColdStarts  int           // sandboxes started without the warm pool, timed; default 5
}

// SandboxResult is what Sandbox measured. Latencies are in milliseconds.
type SandboxResult struct {
	Sessions   int     `json:"sessions"`
	Executions int64   `json:"executions"`
	Seconds    float64 `json:"seconds"`
	ExecPerSec float64 `json:"executions_per_second"`
	ExecP50Ms  float64 `json:"execution_p50_ms"`
	ExecP99Ms  float64 `json:"execution_p99_ms"`
	// Fairness of the throughput phase: the fewest and most blocks a
	// session ran, their ratio, and each session's own latencies.
	MinPerSession int            `json:"min_executions_per_session"`
	MaxPerSession int            `json:"max_executions_per_session"`
	MaxOverMin    float64        `json:"max_over_min"`
	PerSession    []SessionStats `json:"per_session"`

	NewSessionP50Ms float64 `json:"new_session_p50_ms"`
	NewSessionP99Ms float64 `json:"new_session_p99_ms"`

	// Burst: Burst new sessions at once, each running
	// "import numpy, sympy; print(1)"; the time until all had answered,
	// then the PSS of the server's whole process tree (this process and
	// its descendants) with those sessions live and idle.
	Burst          int     `json:"burst_sessions"`
	BurstSeconds   float64 `json:"burst_all_answered_s"`
	BurstP50Ms     float64 `json:"burst_p50_ms"`
	BurstP99Ms     float64 `json:"burst_p99_ms"`
	BurstPSSMB     float64 `json:"burst_pss_mb"`
	BurstProcesses int     `json:"burst_processes"`

	ColdStartP50Ms float64  `json:"cold_start_p50_ms"`
	WarmWorkers    int      `json:"warm_workers"`
	MaxRunning     int      `json:"max_running"`
	Preload        []string `json:"preload"`
	Isolated       bool     `json:"isolated"`
	CPUs           int      `json:"cpus"`
}

// SessionStats is one session's share of the throughput phase.
type SessionStats struct {
	Executions int     `json:"executions"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
}

// Sandbox measures a pool through its HTTP API on a loopback port:
// executions per second of a trivial block with opts.Sessions concurrent
// sessions (and how evenly the sessions were served); the latency of the
// first block of a new session while the warm pool has a worker ready; a
// burst of opts.Burst new sessions at once, and the memory of the process
// tree while they live. It also times cold starts: a trivial block run in a
// fresh sandbox by a second pool of p's configuration without warm workers,
// so that each sandbox is started on demand. p must allow opts.Burst and
// opts.Sessions sessions.
func Sandbox(ctx context.Context, p *sandbox.Pool, opts SandboxOptions) (SandboxResult, error) {
	if opts.Sessions <= 0 {
		opts.Sessions = 32
	}
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.Burst <= 0 {
		opts.Burst = 128
	}
	if opts.NewSessions <= 0 {
		opts.NewSessions = 50
	}
	if opts.ColdStarts <= 0 {
		opts.ColdStarts = 5
	}
	cfg := p.Config()
	res := SandboxResult{Sessions: opts.Sessions, Burst: opts.Burst, WarmWorkers: cfg.WarmWorkers, MaxRunning: cfg.MaxRunning,
		Preload: cfg.Preload, Isolated: p.Isolated(), CPUs: runtime.NumCPU()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("bench: listen: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go sandbox.Serve(sctx, ln, p, sandbox.ServerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c := &sandbox.Client{BaseURL: "http://" + ln.Addr().String(), HTTP: &http.Client{
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256},
	}}

	// Throughput: open the sessions first (not timed), then run trivial blocks.
	ids := make([]string, opts.Sessions)
	var wg sync.WaitGroup
	errs := make(chan error, opts.Sessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Execute(ctx, ids[i], "x = 0", sandbox.ExecOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return res, fmt.Errorf("bench: open sessions: %w", err)
	default:
	}
	var n atomic.Int64
	lat := make([][]time.Duration, opts.Sessions)
	start := time.Now()
	end := start.Add(opts.Duration)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				t := time.Now()
				r, err := c.Execute(ctx, ids[i], "x += 1", sandbox.ExecOptions{})
				if err != nil || r.Status != sandbox.StatusCompleted {
					errs <- fmt.Errorf("execute: %v %+v", err, r)
					return
				}
				lat[i] = append(lat[i], time.Since(t))
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	select {
	case err := <-errs:
		return res, fmt.Errorf("bench: %w", err)
	default:
	}
	res.Executions = n.Load()
	res.ExecPerSec = float64(res.Executions) / res.Seconds
	all := slices.Concat(lat...)
	res.ExecP50Ms, res.ExecP99Ms = percentileMs(all, 50), percentileMs(all, 99)
	res.MinPerSession = len(lat[0])
	for _, l := range lat {
		res.PerSession = append(res.PerSession, SessionStats{Executions: len(l), P50Ms: percentileMs(l, 50), P99Ms: percentileMs(l, 99)})
		res.MinPerSession, res.MaxPerSession = min(res.MinPerSession, len(l)), max(res.MaxPerSession, len(l))
	}
	if res.MinPerSession > 0 {
		res.MaxOverMin = float64(res.MaxPerSession) / float64(res.MinPerSession)
	}
	for _, id := range ids {
		c.EndSession(ctx, id)
	}

	// New sessions, each started while the warm pool has a worker ready.
	var ns []time.Duration
	for i := 0; i < opts.NewSessions; i++ {
		for p.WarmWorkers() == 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
		id := fmt.Sprintf("bench-new-%d", i)
		t := time.Now()
		r, err := c.Execute(ctx, id, "print(1)", sandbox.ExecOptions{})
		if err != nil || r.Status != sandbox.StatusCompleted || !r.NewSession {
			return res, fmt.Errorf("bench: new session: %v %+v", err, r)
		}
		ns = append(ns, time.Since(t))
		c.EndSession(ctx, id)
	}
	res.NewSessionP50Ms, res.NewSessionP99Ms = percentileMs(ns, 50), percentileMs(ns, 99)

	if err := burst(ctx, c, opts.Burst, &res); err != nil {
		return res, err
	}

	cs, err := coldStarts(ctx, cfg, opts.ColdStarts)
	if err != nil {
		return res, err
	}
	res.ColdStartP50Ms = percentileMs(cs, 50)
	return res, nil
}

// burst opens n sessions at once, each running a block that imports numpy
// and sympy, times them until all have answered, then measures the PSS of
// the process tree with the n sessions live, and ends them.
func burst(ctx context.Context, c *sandbox.Client, n int, res *SandboxResult) error {
	// Let the warm pool refill after the earlier phases, as it would between
	// bursts.
	time.Sleep(500 * time.Millisecond)
	lat := make([]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			r, err := c.Execute(ctx, fmt.Sprintf("bench-burst-%d", i), "import numpy, sympy; print(1)", sandbox.ExecOptions{Timeout: time.Minute})
			if err == nil && (r.Status != sandbox.StatusCompleted || r.Stdout != "1\n") {
				err = fmt.Errorf("%s: %s%s", r.Status, r.Stdout, r.Stderr)
			}
			if err != nil {
				errs <- err
			}
			lat[i] = time.Since(t)
		}()
	}
	wg.Wait()
	res.BurstSeconds = time.Since(start).Seconds()
	defer func() {
		for i := range n {
			c.EndSession(ctx, fmt.Sprintf("bench-burst-%d", i))
		}
	}()
	select {
	case err := <-errs:
		return fmt.Errorf("bench: burst of %d sessions: %w", n, err)
	default:
	}
	res.BurstP50Ms, res.BurstP99Ms = percentileMs(lat, 50), percentileMs(lat, 99)
	time.Sleep(200 * time.Millisecond) // what the sessions' exits left settles
	pss, procs, err := treePSS(os.Getpid())
	if err != nil {
		return fmt.Errorf("bench: memory: %w", err)
	}
	res.BurstPSSMB, res.BurstProcesses = float64(pss)/1e6, procs
	return nil
}

// treePSS returns the proportional set size, in bytes, of process root and
// all its descendants (from /proc/PID/smaps_rollup), and how many processes
// that is.
func treePSS(root int) (int64, int, error) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	children := map[int][]int{}
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state ppid ...
		pid, err1 := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		ppid, err2 := strconv.Atoi(fields[1])
		if err1 == nil && err2 == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var total int64
	n := 0
	for queue := []int{root}; len(queue) > 0; queue = queue[1:] {
		pid := queue[0]
		queue = append(queue, children[pid]...)
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			if pid == root {
				return 0, 0, err
			}
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total += kb << 10
				n++
				break
			}
		}
	}
	return total, n, nil
}

// coldStarts times n sandboxes started and made ready on demand: each runs
// one trivial block in a fresh sandbox of a pool with cfg but no warm
// workers. The pool's own first sandbox (started by NewPool, kept for the
// first block) is used up before the timing.
func coldStarts(ctx context.Context, cfg sandbox.Config, n int) ([]time.Duration, error) {
	cfg.WarmWorkers = -1
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) // p has already logged its warnings
	cold, err := sandbox.NewPool(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: cold start pool: %w", err)
	}
	defer cold.Close()
	run := func() error {
		r, err := cold.Execute(ctx, "", "pass", sandbox.ExecOptions{})
		if err == nil && r.Status != sandbox.StatusCompleted {
			err = fmt.Errorf("%s: %s", r.Status, r.Stderr)
		}
		return err
	}
	if err := run(); err != nil {
		return nil, fmt.Errorf("bench: cold start: %w", err)
	}
	var cs []time.Duration
	for range n {
		t := time.Now()
		if err := run(); err != nil {
			return nil, fmt.Errorf("bench: cold start: %w", err)
		}
		cs = append(cs, time.Since(t))
	}
	return cs, nil
}

// percentileMs returns the pct-th percentile of d (nearest rank) in
// milliseconds, 0 for none.
func percentileMs(d []time.Duration, pct int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*pct + 99) / 100
	i = min(max(i-1, 0), len(s)-1)
	return float64(s[i].Microseconds()) / 1000
}
