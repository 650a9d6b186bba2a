package download

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitCounter is a slog handler that counts the "waiting for another
// download" records and closes reached when there are want of them.
type waitCounter struct {
	n       atomic.Int32
	want    int32
	reached chan struct{}
}

func newWaitCounter(want int) *waitCounter {
	return &waitCounter{want: int32(want), reached: make(chan struct{})}
}

func (c *waitCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *waitCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *waitCounter) WithGroup(string) slog.Handler            { return c }
func (c *waitCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "waiting") && c.n.Add(1) == c.want {
		close(c.reached)
	}
	return nil
}

// TestConcurrentDownloadsFetchOnce: 20 downloaders of one file; the server
// answers the first request only once the 19 others are waiting on the
// lock, and is asked exactly once.
func TestConcurrentDownloadsFetchOnce(t *testing.T) {
	const n = 20
	body := strings.Repeat("abcdefgh", 8192)
	waiting := newWaitCounter(n - 1)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		<-waiting.reached
		http.ServeContent(w, r, "f", time.Time{}, strings.NewReader(body))
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "f")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = File(context.Background(), srv.URL, dest, Options{Size: int64(len(body)), Logger: slog.New(waiting)})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("downloader %d: %v", i, err)
		}
	}
	if got, _ := os.ReadFile(dest); string(got) != body {
		t.Fatalf("dest holds %d bytes, want %d", len(got), len(body))
	}
	if r := requests.Load(); r != 1 {
		t.Fatalf("%d requests, want 1", r)
	}
}

// TestCancel: a cancelled context stops a download (and a wait for the
// lock) with an error that wraps context.Canceled, and the partial file is
// resumed by the next call.
func TestCancel(t *testing.T) {
	body := strings.Repeat("x", 4096)
	var ranges []string
	first := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first {
			first = false
			w.Header().Set("Content-Length", "4096")
			w.Write([]byte(body[:1000]))
			w.(http.Flusher).Flush()
			<-r.Context().Done() // hold the connection until the client gives up
			return
		}
		ranges = append(ranges, r.Header.Get("Range"))
		http.ServeContent(w, r, "f", time.Time{}, strings.NewReader(body))
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "f")

	ctx, cancel := context.WithCancel(context.Background())
	err := File(ctx, srv.URL, dest, Options{Size: 4096, Progress: func(done, _ int64) {
		if done >= 1000 {
			cancel()
		}
	}})
	var ie *InterruptedError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an InterruptedError wrapping context.Canceled", err)
	}
	if fi, err := os.Stat(dest + ".part"); err != nil || fi.Size() != 1000 {
		t.Fatalf("partial file: %v, %v; want 1000 bytes", fi, err)
	}

	// While another download holds the lock, cancelling stops the wait.
	hold, _, err := acquire(context.Background(), dest+".lock", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	waiting := newWaitCounter(1)
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { <-waiting.reached; cancel2() }()
	if err := File(ctx2, srv.URL, dest, Options{Logger: slog.New(waiting)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting for the lock: err = %v", err)
	}
	hold()

	if err := File(context.Background(), srv.URL, dest, Options{Size: 4096}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != body {
		t.Fatalf("got %d bytes", len(got))
	}
	if len(ranges) != 1 || ranges[0] != "bytes=1000-" {
		t.Fatalf("resumed with ranges %q, want [bytes=1000-]", ranges)
	}
}

func TestStatusErrorKeepsHeader(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Error-Code", "GatedRepo")
		http.Error(w, "gated", http.StatusUnauthorized)
	}))
	defer srv.Close()
	var se *StatusError
	err := File(context.Background(), srv.URL, filepath.Join(t.TempDir(), "f"), Options{})
	if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || se.Header.Get("X-Error-Code") != "GatedRepo" {
		t.Fatalf("err = %v", err)
	}
}
