package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crucible-ml/crucible/sandbox"
)

// SandboxOptions configure Sandbox; zero values take the defaults.
type SandboxOptions struct {
	Sessions    int           // concurrent sessions in the throughput phase; default 32
	Duration    time.Duration // length of the throughput phase; default 5 s
	NewSessions int           // new sessions timed in the latency phase; default 50
	ColdStarts  int           // sandboxes started without the warm pool, timed; default 5
}

// SandboxResult is what Sandbox measured. Latencies are in milliseconds.
type SandboxResult struct {
	Sessions        int      `json:"sessions"`
	Executions      int64    `json:"executions"`
	Seconds         float64  `json:"seconds"`
	ExecPerSec      float64  `json:"executions_per_second"`
	ExecP50Ms       float64  `json:"execution_p50_ms"`
	ExecP99Ms       float64  `json:"execution_p99_ms"`
	NewSessionP50Ms float64  `json:"new_session_p50_ms"`
	NewSessionP99Ms float64  `json:"new_session_p99_ms"`
	ColdStartP50Ms  float64  `json:"cold_start_p50_ms"`
	WarmWorkers     int      `json:"warm_workers"`
	Preload         []string `json:"preload"`
	Isolated        bool     `json:"isolated"`
	CPUs            int      `json:"cpus"`
}

// Sandbox measures a pool through its HTTP API on a loopback port: executions
// per second of a trivial block with opts.Sessions concurrent sessions, and
// the latency of the first block of a new session while the warm pool has a
// worker ready. It also times cold starts: a trivial block run in a fresh
// sandbox by a second pool of p's configuration without warm workers, so
// that each sandbox is started on demand.
func Sandbox(ctx context.Context, p *sandbox.Pool, opts SandboxOptions) (SandboxResult, error) {
	if opts.Sessions <= 0 {
		opts.Sessions = 32
	}
	if opts.Duration <= 0 {
		opts.Duration = 5 * time.Second
	}
	if opts.NewSessions <= 0 {
		opts.NewSessions = 50
	}
	if opts.ColdStarts <= 0 {
		opts.ColdStarts = 5
	}
	cfg := p.Config()
	res := SandboxResult{Sessions: opts.Sessions, WarmWorkers: cfg.WarmWorkers, Preload: cfg.Preload,
		Isolated: p.Isolated(), CPUs: runtime.NumCPU()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("bench: listen: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go sandbox.Serve(sctx, ln, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
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

	cs, err := coldStarts(ctx, cfg, opts.ColdStarts)
	if err != nil {
		return res, err
	}
	res.ColdStartP50Ms = percentileMs(cs, 50)
	return res, nil
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
