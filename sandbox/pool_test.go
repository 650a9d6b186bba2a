package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSessionKeepsState(t *testing.T) {
	p := sharedPool(t)
	res := runCode(t, p, "state", "x = 6", ExecOptions{})
	if res.Status != StatusCompleted || !res.NewSession {
		t.Fatalf("first block: %+v, want completed in a new session", res)
	}
	res = runCode(t, p, "state", "def f(y):\n    return x * y\nf(7)", ExecOptions{})
	if res.Status != StatusCompleted || res.Stdout != "42\n" || res.NewSession {
		t.Fatalf("second block: %+v, want 42 in the same session", res)
	}
	// Another session does not see x.
	res = runCode(t, p, "state-other", "x", ExecOptions{})
	if res.Status != StatusError || !strings.Contains(res.Stdout, "NameError") {
		t.Fatalf("other session: %+v, want a NameError", res)
	}
	p.CloseSession("state")
	p.CloseSession("state-other")
}

func TestOutputs(t *testing.T) {
	p := sharedPool(t)
	tests := []struct {
		name       string
		code       string
		opts       ExecOptions
		status     Status
		stdout     string
		stderrPart string
	}{
		{"print", "print('hi')", ExecOptions{}, StatusCompleted, "hi\n", ""},
		{"last expression", "a = 2\na ** 10", ExecOptions{}, StatusCompleted, "1024\n", ""},
		{"last expression None", "None", ExecOptions{}, StatusCompleted, "", ""},
		{"semicolon silences", "7;", ExecOptions{}, StatusCompleted, "", ""},
		{"python mode does not echo", "2 + 2", ExecOptions{Language: "python"}, StatusCompleted, "", ""},
		{"ipython traceback in stdout", "1/0", ExecOptions{},
			StatusError, "Traceback (most recent call last):\n  File \"<cell>\", line 1, in <module>\nZeroDivisionError: division by zero\n", ""},
		{"python traceback in stderr", "1/0", ExecOptions{Language: "python3"}, StatusError, "", "ZeroDivisionError"},
		{"syntax error", "def (:", ExecOptions{}, StatusError, "", ""},
		{"stderr", "import sys; print('oops', file=sys.stderr)", ExecOptions{}, StatusCompleted, "", "oops\n"},
		{"stdin", "print(input() + '!')", ExecOptions{Stdin: "hello\n"}, StatusCompleted, "hello!\n", ""},
		{"output cut", "print('x' * 50)", ExecOptions{MaxOutputChars: 10}, StatusCompleted, "xxxxxxxxxx<output cut>", ""},
		{"unicode cut", "print('é' * 20)", ExecOptions{MaxOutputChars: 5}, StatusCompleted, "ééééé<output cut>", ""},
		{"raw fd output", "import os; os.write(1, b'raw\\n');", ExecOptions{}, StatusCompleted, "raw\n", ""},
		{"subprocess output", "import subprocess; subprocess.run(['echo', 'child']);", ExecOptions{}, StatusCompleted, "child\n", ""},
		{"sys.exit(0)", "import sys; sys.exit(0)", ExecOptions{}, StatusCompleted, "", ""},
		{"sympy", "import sympy as sp; x = sp.symbols('x'); sp.factor(x**2 - 1)", ExecOptions{}, StatusCompleted, "(x - 1)*(x + 1)\n", ""},
		{"multiprocessing", "import multiprocessing as mp\nq = mp.Queue()\nproc = mp.Process(target=q.put, args=(42,))\nproc.start()\nprint(q.get())\nproc.join()", ExecOptions{}, StatusCompleted, "42\n", ""},
		{"timeout text", "import time; time.sleep(5)", ExecOptions{Timeout: 200 * time.Millisecond}, StatusTimeout, "", "Execution timed out after 0.2 seconds\n"},
	}
	defer p.CloseSession("outputs")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCode(t, p, "outputs", tt.code, tt.opts)
			if res.Status != tt.status {
				t.Fatalf("status %s, want %s (%+v)", res.Status, tt.status, res)
			}
			if tt.name != "syntax error" && res.Stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", res.Stdout, tt.stdout)
			}
			if tt.name == "syntax error" && !strings.Contains(res.Stdout, "SyntaxError") {
				t.Errorf("stdout %q, want a SyntaxError", res.Stdout)
			}
			if !strings.Contains(res.Stderr, tt.stderrPart) {
				t.Errorf("stderr %q, want it to contain %q", res.Stderr, tt.stderrPart)
			}
		})
	}
}

func TestUnsupportedLanguage(t *testing.T) {
	p := sharedPool(t)
	_, err := p.Execute(context.Background(), "", "print(1)", ExecOptions{Language: "lean4"})
	if !errors.Is(err, ErrUnsupportedLanguage) {
		t.Fatalf("err = %v, want ErrUnsupportedLanguage", err)
	}
}

func TestTimeoutKeepsStateWhenInterruptible(t *testing.T) {
	p := sharedPool(t)
	const id = "interruptible"
	defer p.CloseSession(id)
	mustOutput(t, p, id, "n = 0", "")
	res := runCode(t, p, id, "while True:\n    n += 1", ExecOptions{Timeout: 300 * time.Millisecond})
	if res.Status != StatusTimeout || res.NewSession {
		t.Fatalf("got %+v, want a timeout in the same session", res)
	}
	mustOutput(t, p, id, "n > 0", "True\n")
}

func TestHardKillStartsNewSession(t *testing.T) {
	p := sharedPool(t)
	const id = "stubborn"
	defer p.CloseSession(id)
	mustOutput(t, p, id, "kept = 1", "")
	stubborn := "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
	start := time.Now()
	res := runCode(t, p, id, stubborn, ExecOptions{Timeout: 300 * time.Millisecond})
	if res.Status != StatusTimeout || !res.NewSession {
		t.Fatalf("got %+v, want a timeout reported as a new session", res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("hard kill took %v", d)
	}
	res = runCode(t, p, id, "'kept' in globals()", ExecOptions{})
	if res.Status != StatusCompleted || res.Stdout != "False\n" || !res.NewSession {
		t.Fatalf("after the kill: %+v, want a fresh state reported as new", res)
	}
	mustOutput(t, p, id, "1 + 1", "2\n")
}

func TestReplayRestoresState(t *testing.T) {
	p := newTestPool(t, Config{Replay: true, WarmWorkers: 1, Preload: []string{}})
	const id = "replayed"
	mustOutput(t, p, id, "a = 40", "")
	mustOutput(t, p, id, "b = a + 2", "")
	runCode(t, p, id, "1/0", ExecOptions{}) // not replayed
	res := runCode(t, p, id, "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass",
		ExecOptions{Timeout: 200 * time.Millisecond})
	if res.Status != StatusTimeout || !res.NewSession {
		t.Fatalf("got %+v, want a hard-killed timeout", res)
	}
	res = runCode(t, p, id, "b", ExecOptions{})
	if res.Status != StatusCompleted || res.Stdout != "42\n" || res.NewSession {
		t.Fatalf("after replay: %+v, want 42 with the state restored", res)
	}
}

func TestSessionCap(t *testing.T) {
	p := newTestPool(t, Config{MaxSessions: 2, IdleTimeout: -1, WarmWorkers: 1, Preload: []string{}})
	mustOutput(t, p, "a", "x = 'a'", "")
	mustOutput(t, p, "b", "x = 'b'", "")
	mustOutput(t, p, "a", "x", "'a'\n") // b is now the idle session used least recently
	res := runCode(t, p, "c", "'x' in globals()", ExecOptions{})
	if res.Stdout != "False\n" || !res.NewSession {
		t.Fatalf("third session: %+v", res)
	}
	if n := p.Evicted(); n != 1 {
		t.Errorf("Evicted() = %d, want 1", n)
	}
	mustOutput(t, p, "a", "x", "'a'\n") // kept
	res = runCode(t, p, "b", "'x' in globals()", ExecOptions{})
	if res.Stdout != "False\n" || !res.NewSession {
		t.Fatalf("evicted session: %+v, want a new session", res)
	}
	// Sessions running blocks are never evicted: with both busy, a new
	// session is refused.
	done := make(chan struct{})
	for _, id := range []string{"a", "b"} {
		go func() {
			p.Execute(context.Background(), id, "import time; time.sleep(1)", ExecOptions{})
			done <- struct{}{}
		}()
	}
	waitFor(t, 5*time.Second, "two busy sessions", func() bool {
		n := 0
		for _, s := range p.Sessions() {
			if s.Busy {
				n++
			}
		}
		return n == 2
	})
	_, err := p.Execute(context.Background(), "d", "3", ExecOptions{})
	if !errors.Is(err, ErrTooManySessions) || RetryAfter(err) <= 0 {
		t.Fatalf("new session while all are busy: err = %v, want ErrTooManySessions with a retry hint", err)
	}
	<-done
	<-done
	mustOutput(t, p, "d", "3", "3\n")
}

func TestIdleExpiry(t *testing.T) {
	p := newTestPool(t, Config{IdleTimeout: 200 * time.Millisecond, WarmWorkers: 1, Preload: []string{}})
	mustOutput(t, p, "a", "x = 1", "")
	deadline := time.Now().Add(5 * time.Second)
	for len(p.Sessions()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("session did not expire: %+v", p.Sessions())
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := runCode(t, p, "a", "'x' in globals()", ExecOptions{})
	if res.Stdout != "False\n" || !res.NewSession {
		t.Fatalf("after expiry: %+v, want a new session", res)
	}
}

func TestConcurrentSessions(t *testing.T) {
	p := sharedPool(t)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			id := fmt.Sprintf("conc-%d", i)
			defer p.CloseSession(id)
			ctx := context.Background()
			if _, err := p.Execute(ctx, id, fmt.Sprintf("v = %d", i), ExecOptions{}); err != nil {
				errs <- err
				return
			}
			for j := range 20 {
				res, err := p.Execute(ctx, id, "v += 1\nv", ExecOptions{})
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("%d\n", i+j+1); res.Stdout != want {
					errs <- fmt.Errorf("session %s: got %q, want %q", id, res.Stdout, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestContextCancelKillsBlock(t *testing.T) {
	p := sharedPool(t)
	const id = "cancelled"
	defer p.CloseSession(id)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Execute(ctx, id, "import time; time.sleep(30)", ExecOptions{Timeout: 30 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	res := runCode(t, p, id, "print('next')", ExecOptions{})
	if res.Stdout != "next\n" || !res.NewSession {
		t.Fatalf("after cancel: %+v", res)
	}
}

func TestOneShot(t *testing.T) {
	p := sharedPool(t)
	for range 2 {
		res := runCode(t, p, "", "'x' in globals()", ExecOptions{})
		if res.Stdout != "False\n" {
			t.Fatalf("one-shot block: %+v, want a fresh sandbox", res)
		}
		runCode(t, p, "", "x = 1", ExecOptions{})
	}
	if n := len(p.Sessions()); n != 0 {
		t.Errorf("one-shot blocks left %d sessions", n)
	}
}

func TestPreload(t *testing.T) {
	p := newTestPool(t, Config{WarmWorkers: 1})
	for _, id := range []string{"first", "second"} {
		mustOutput(t, p, id, "import sys\n'numpy' in sys.modules and 'sympy' in sys.modules", "True\n")
	}
}

func TestConfig(t *testing.T) {
	p := sharedPool(t)
	c := p.Config()
	// Given: WarmWorkers 2, DefaultTimeout 5 s, Preload none; the rest are defaults.
	if c.WarmWorkers != 2 || c.DefaultTimeout != 5*time.Second || c.Preload == nil || len(c.Preload) != 0 {
		t.Errorf("given settings: %+v", c)
	}
	if c.Python != "/usr/bin/python3" || c.MaxSessions != 128 || c.IdleTimeout != 10*time.Minute || c.Limits != DefaultLimits || c.Logger == nil {
		t.Errorf("defaults not filled in: %+v", c)
	}
}
