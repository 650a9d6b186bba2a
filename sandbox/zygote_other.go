//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"runtime"
)

// The sandbox needs Linux (namespaces, pidfds, cgroups); elsewhere starting
// a worker fails, so NewPool reports why.

var errNeedsLinux = errors.New("sandbox: needs Linux (namespaces, pidfds), not " + runtime.GOOS)

type spawner struct {
	isolated, nested bool
	cg               *cgroups
	slots            chan struct{}
}

func newSpawner(cfg *Config, isolated bool, cg *cgroups) (*spawner, error) {
	return &spawner{isolated: isolated, slots: make(chan struct{}, 1)}, nil
}

func (s *spawner) start(ctx context.Context) (*worker, error) { return nil, errNeedsLinux }
func (s *spawner) spawn(ctx context.Context) (*worker, error) { return nil, errNeedsLinux }
func (s *spawner) close()                                     {}

func (w *worker) kill() { w.once.Do(func() {}) }

type cgroups struct{}

type sessionCgroup struct{}

func setupCgroups(cfg *Config) (*cgroups, string) { return nil, "cgroups need Linux" }
func (c *cgroups) close()                         {}
func (c *cgroups) describe() string               { return "" }
