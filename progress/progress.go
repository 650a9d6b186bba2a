// Package progress reports the progress of long commands: a one-line bar on
// a terminal, periodic structured log lines (log/slog) otherwise.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Bar counts work done towards a total (which may be unknown, < 0).
// Add and AddErrors are safe for concurrent use and cheap (one atomic add).
type Bar struct {
	label  string
	total  atomic.Int64
	done   atomic.Int64
	errs   atomic.Int64
	start  time.Time
	out    io.Writer // nil: log lines instead of a bar
	every  time.Duration
	stop   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New starts reporting. The bar draws on stderr when stderr is a terminal
// and logs every 10 seconds otherwise. Call Finish when done.
func New(label string, total int64) *Bar {
	var out io.Writer
	every := 10 * time.Second
	if term.IsTerminal(int(os.Stderr.Fd())) {
		out = os.Stderr
		every = 150 * time.Millisecond
	}
	return start(label, total, out, every)
}

// NewWriter draws the bar on w every interval (tests, or a forced bar).
// A nil w logs instead.
func NewWriter(label string, total int64, w io.Writer, interval time.Duration) *Bar {
	return start(label, total, w, interval)
}

func start(label string, total int64, out io.Writer, every time.Duration) *Bar {
	b := &Bar{label: label, start: time.Now(), out: out, every: every, stop: make(chan struct{})}
	b.total.Store(total)
	b.wg.Add(1)
	go b.loop()
	return b
}

// Add counts n more units done.
func (b *Bar) Add(n int64) { b.done.Add(n) }

// AddErrors counts n units that failed (they also count as done via Add).
func (b *Bar) AddErrors(n int64) { b.errs.Add(n) }

// SetTotal changes the total (e.g. once it is known).
func (b *Bar) SetTotal(n int64) { b.total.Store(n) }

// Done returns the units done so far.
func (b *Bar) Done() int64 { return b.done.Load() }

func (b *Bar) loop() {
	defer b.wg.Done()
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.report(false)
		}
	}
}

// Finish stops reporting and prints a final line.
func (b *Bar) Finish() {
	if b.closed.Swap(true) {
		return
	}
	close(b.stop)
	b.wg.Wait()
	b.report(true)
}

func (b *Bar) report(final bool) {
	done, total, errs := b.done.Load(), b.total.Load(), b.errs.Load()
	el := time.Since(b.start)
	rate := float64(done) / max(el.Seconds(), 1e-9)
	if b.out == nil {
		args := []any{"done", done, "rate_per_s", round1(rate), "elapsed_s", round1(el.Seconds())}
		if total >= 0 {
			args = append(args, "total", total)
		}
		if errs > 0 {
			args = append(args, "errors", errs)
		}
		slog.Info(b.label, args...)
		return
	}
	var s strings.Builder
	fmt.Fprintf(&s, "\r%s ", b.label)
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		const width = 30
		fill := int(frac * width)
		s.WriteString("[" + strings.Repeat("=", fill) + strings.Repeat(" ", width-fill) + "]")
		fmt.Fprintf(&s, " %d/%d %3.0f%%", done, total, frac*100)
		if rate > 0 && done < total {
			eta := time.Duration(float64(total-done) / rate * float64(time.Second))
			fmt.Fprintf(&s, " ETA %s", eta.Round(time.Second))
		}
	} else {
		fmt.Fprintf(&s, "%d", done)
	}
	fmt.Fprintf(&s, " %.1f/s", rate)
	if errs > 0 {
		fmt.Fprintf(&s, " errors %d", errs)
	}
	s.WriteString("\x1b[K")
	if final {
		s.WriteString("\n")
	}
	io.WriteString(b.out, s.String())
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
