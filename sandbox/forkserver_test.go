package sandbox

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestForkedSessions checks what sessions forked from one fork server must
// not share: random state, and variables.
func TestForkedSessions(t *testing.T) {
	p := newTestPool(t, Config{WarmWorkers: 2})
	seen := map[string]bool{}
	for i := range 4 {
		id := fmt.Sprintf("fork-%d", i)
		res := runCode(t, p, id, "import random, sys, numpy\nprint(random.random(), numpy.random.rand(), 'sympy' in sys.modules)", ExecOptions{})
		if res.Status != StatusCompleted || !strings.HasSuffix(res.Stdout, " True\n") {
			t.Fatalf("%s: %+v", id, res)
		}
		if seen[res.Stdout] {
			t.Errorf("two sessions drew the same random numbers: %q", res.Stdout)
		}
		seen[res.Stdout] = true
		p.CloseSession(id)
	}
}

// TestBurstOfSessions opens many sessions at once, and checks that ending
// them leaves no descriptor behind.
func TestBurstOfSessions(t *testing.T) {
	p := sharedPool(t)
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	before := fds()
	const n = 48
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("burst-%d", i)
			defer p.CloseSession(id)
			res, err := p.Execute(context.Background(), id, fmt.Sprintf("v = %d\nprint(v * 2)", i), ExecOptions{})
			if err == nil && (res.Stdout != fmt.Sprintf("%d\n", 2*i) || !res.NewSession) {
				err = fmt.Errorf("session %d: %+v", i, res)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if after := fds(); after > before+8 { // the warm pool refilling holds a few
		t.Errorf("%d open descriptors after %d sessions ended, %d before", after, n, before)
	}
}

func TestGateRoundRobin(t *testing.T) {
	g := newGate(1)
	g.quantum = time.Hour
	ctx := context.Background()
	first, err := g.admit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done, _ := g.admit(ctx)
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			done()
		}()
		waitFor(t, time.Second, "a waiter", func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.waiting) == i+1
		})
	}
	first()
	first() // a second call gives nothing back
	wg.Wait()
	if fmt.Sprint(order) != "[0 1 2]" {
		t.Errorf("admitted in order %v, want first come first served", order)
	}
	if g.free != 1 {
		t.Errorf("%d free slots at the end, want 1", g.free)
	}
	// A block that runs past the quantum gives its slot back.
	g.quantum = quantum
	long, _ := g.admit(ctx)
	defer long()
	start := time.Now()
	next, err := g.admit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next()
	if d := time.Since(start); d < quantum/2 || d > 2*time.Second {
		t.Errorf("second block admitted after %v, want about %v", d, quantum)
	}
	// A waiter whose context ends leaves the line.
	hold, _ := g.admit(ctx)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.admit(cctx); err == nil {
		t.Error("admit with an ended context succeeded")
	}
	hold()
}
