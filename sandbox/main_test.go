package sandbox

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if MaybeRunChild() {
		return
	}
	os.Exit(m.Run())
}

// newTestPool starts a pool for a test; outside CI it skips the test where
// this machine cannot isolate code.
func newTestPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := NewPool(ctx, cfg)
	if errors.Is(err, ErrNoIsolation) && os.Getenv("CI") != "true" {
		t.Skipf("no isolation on this machine (user namespaces?): %v", err)
	}
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
