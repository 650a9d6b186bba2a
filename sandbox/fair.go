package sandbox

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// quantum is how long a running block holds its admission slot; past it the
// block keeps running but no longer keeps others waiting.
const quantum = 20 * time.Millisecond

// gate admits blocks to run: at most n at once, in the order they arrived.
// A session has at most one block waiting (its blocks run one at a time),
// so first come, first served is round-robin across sessions: a session
// that runs block after block goes to the back of the line each time.
type gate struct {
	quantum time.Duration
	mu      sync.Mutex
	free    int
	waiting []chan struct{} // FIFO; a closed channel has been admitted
}

func newGate(n int) *gate { return &gate{free: n, quantum: quantum} }

// admit waits for a slot; the returned function gives it back, at the latest
// after quantum (calling it again does nothing).
func (g *gate) admit(ctx context.Context) (func(), error) {
	g.mu.Lock()
	if g.free > 0 && len(g.waiting) == 0 {
		g.free--
		g.mu.Unlock()
		return g.slot(), nil
	}
	ch := make(chan struct{})
	g.waiting = append(g.waiting, ch)
	g.mu.Unlock()
	select {
	case <-ch:
		return g.slot(), nil
	case <-ctx.Done():
		g.mu.Lock()
		for i, c := range g.waiting {
			if c == ch {
				g.waiting = append(g.waiting[:i], g.waiting[i+1:]...)
				g.mu.Unlock()
				return nil, ctx.Err()
			}
		}
		g.mu.Unlock()
		// Admitted meanwhile: pass the slot on.
		g.release()
		return nil, ctx.Err()
	}
}

// slot returns the release function of an admitted block.
func (g *gate) slot() func() {
	var done atomic.Bool
	release := func() {
		if done.CompareAndSwap(false, true) {
			g.release()
		}
	}
	t := time.AfterFunc(g.quantum, release)
	return func() {
		t.Stop()
		release()
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiting) > 0 {
		ch := g.waiting[0]
		g.waiting[0] = nil
		g.waiting = g.waiting[1:]
		close(ch)
		return
	}
	g.free++
}
