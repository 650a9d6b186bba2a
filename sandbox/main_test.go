package sandbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if MaybeRunChild() {
		return
	}
	code := m.Run()
	if shared.pool != nil {
		shared.pool.Close()
	}
	os.Exit(code)
}

// newTestPool starts a pool for a test; outside CI it skips the test where
// this machine cannot isolate code.
func newTestPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := NewPool(ctx, cfg)
	if errors.Is(err, ErrNoIsolation) && os.Getenv("CI") != "true" {
		t.Skipf("no isolation on this machine (user namespaces unavailable?), and CI is not set: %v", err)
	}
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

var shared struct {
	once sync.Once
	pool *Pool
	err  error
}

// sharedPool returns a pool shared by the tests that do not depend on its
// configuration, so that the suite starts few sandboxes.
func sharedPool(t testing.TB) *Pool {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		shared.pool, shared.err = NewPool(ctx, Config{WarmWorkers: 2, DefaultTimeout: 5 * time.Second, KillGrace: 500 * time.Millisecond,
			Preload: []string{}, Logger: quietLogger()}) // TestPreload checks preloading
	})
	if errors.Is(shared.err, ErrNoIsolation) && os.Getenv("CI") != "true" {
		t.Skipf("no isolation on this machine (user namespaces unavailable?), and CI is not set: %v", shared.err)
	}
	if shared.err != nil {
		t.Fatalf("NewPool: %v", shared.err)
	}
	return shared.pool
}

// runCode runs code and fails the test on a Go error.
func runCode(t testing.TB, p *Pool, session, code string, opts ExecOptions) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := p.Execute(ctx, session, code, opts)
	if err != nil {
		t.Fatalf("Execute(%q): %v", code, err)
	}
	return res
}

// mustOutput runs code and checks that it completed with stdout want.
func mustOutput(t testing.TB, p *Pool, session, code, want string) {
	t.Helper()
	res := runCode(t, p, session, code, ExecOptions{})
	if res.Status != StatusCompleted || res.Stdout != want {
		t.Fatalf("%q: got %s %q (stderr %q), want completed %q", code, res.Status, res.Stdout, res.Stderr, want)
	}
}

// bystander is a session that must not notice what another session does.
type bystander struct {
	p  *Pool
	id string
}

func newBystander(t *testing.T, p *Pool) *bystander {
	t.Helper()
	b := &bystander{p: p, id: "bystander-" + strings.ReplaceAll(t.Name(), "/", "-")}
	mustOutput(t, p, b.id, "canary = 'alive-' + str(6*7)", "")
	t.Cleanup(func() { p.CloseSession(b.id) })
	return b
}

// check asserts that the bystander's state and worker are intact.
func (b *bystander) check(t *testing.T) {
	t.Helper()
	res := runCode(t, b.p, b.id, "canary", ExecOptions{})
	if res.Status != StatusCompleted || res.Stdout != "'alive-42'\n" || res.NewSession {
		t.Fatalf("bystander session disturbed: %+v", res)
	}
}

// quietLogger drops the pool's log lines (the cgroup notice of every pool).
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
