package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// waitCounter is a slog handler that closes reached once want downloaders
// have logged that they wait for another one.
type waitCounter struct {
	n       atomic.Int32
	want    int32
	reached chan struct{}
}

func (c *waitCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *waitCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *waitCounter) WithGroup(string) slog.Handler            { return c }
func (c *waitCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "waiting for another download") && c.n.Add(1) == c.want {
		close(c.reached)
	}
	return nil
}

// checkShared checks what 20 downloaders of one model must leave: every
// file fetched once, the snapshot whole, nothing temporary behind.
func checkShared(t *testing.T, h *fakeHub, cache string) {
	t.Helper()
	for k, n := range h.gets {
		if n != 1 {
			t.Errorf("%s fetched %d times, want once", k, n)
		}
	}
	if len(h.gets) != 5 {
		t.Errorf("%d files fetched, want 5: %v", len(h.gets), h.gets)
	}
	snap := filepath.Join(cache, "models--org--tiny", "snapshots", commit)
	if m := missingFiles(snap); len(m) > 0 {
		t.Errorf("snapshot lacks %v", m)
	}
	for name, b := range h.repos["org/tiny"].files {
		if got, err := os.ReadFile(filepath.Join(snap, name)); err == nil && string(got) != string(b) {
			t.Errorf("%s differs", name)
		}
	}
	filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if strings.Contains(p, ".tmp-") || strings.HasSuffix(p, ".incomplete") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}

// TestConcurrentDownloaders: 20 goroutines fetch one model into one cache.
// The first file's bytes are served only once the 19 others wait on its
// lock, so they all contend; each file is still fetched once.
func TestConcurrentDownloaders(t *testing.T) {
	const n = 20
	waiting := &waitCounter{want: n - 1, reached: make(chan struct{})}
	// A second request for one file means the lock failed: then stop
	// holding, and checkShared reports it.
	var mu sync.Mutex
	seen, broken := map[string]bool{}, make(chan struct{})
	var breakOnce sync.Once
	hold := func(key string, _ http.ResponseWriter, _ *http.Request) bool {
		mu.Lock()
		again := seen[key]
		seen[key] = true
		mu.Unlock()
		if again {
			breakOnce.Do(func() { close(broken) })
		}
		select {
		case <-waiting.reached:
		case <-broken:
		}
		return false
	}
	h := newFakeHub(t, func(h *fakeHub) { h.hold = hold })
	cache := t.TempDir()
	o := h.options(cache)
	o.Logger = slog.New(waiting)
	dirs, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = Download(context.Background(), "org/tiny", o)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("downloader %d: %s, %v", i, dirs[i], errs[i])
		}
	}
	checkShared(t, h, cache)
}

// TestConcurrentProcesses: the same with 20 processes (this test binary,
// re-run as a downloader), as Slurm array tasks sharing a cache would be.
// The first file's bytes are served only once all 20 have asked for the
// model info.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	const n = 20
	all := make(chan struct{})
	h := newFakeHub(t, func(h *fakeHub) {
		h.onInfo = func(count int32) {
			if count == n {
				close(all)
			}
		}
		h.hold = func(string, http.ResponseWriter, *http.Request) bool { <-all; return false }
	})
	cache := t.TempDir()
	cmds := make([]*exec.Cmd, n)
	outs := make([]strings.Builder, n)
	for i := range n {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestHelperDownloader$")
		cmds[i].Env = append(os.Environ(), "HUB_TEST_HELPER=1", "HUB_TEST_ENDPOINT="+h.hub.URL,
			"HUB_TEST_CDN="+h.cdn.Listener.Addr().String(), "HUB_TEST_CACHE="+cache)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("downloader process %d: %v\n%s", i, err, outs[i].String())
		}
	}
	checkShared(t, h, cache)
}

// TestHelperDownloader is one downloader process of TestConcurrentProcesses.
func TestHelperDownloader(t *testing.T) {
	if os.Getenv("HUB_TEST_HELPER") != "1" {
		t.Skip("run by TestConcurrentProcesses")
	}
	h := &fakeHub{}
	o := Options{Endpoint: os.Getenv("HUB_TEST_ENDPOINT"), CacheDir: os.Getenv("HUB_TEST_CACHE"), Logger: quiet,
		Client: h.clientTo(os.Getenv("HUB_TEST_CDN"))}
	dir, err := Download(context.Background(), "org/tiny", o)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(dir)
}

// TestCancelResumes: cancelling the context (what Ctrl-C does) mid-file
// stops the download with context.Canceled, keeps the partial blob, writes
// no ref (so offline the model is not taken as there), and the next run
// resumes the blob with a Range request through the redirect.
func TestCancelResumes(t *testing.T) {
	shard := "org/tiny/model-00002-of-00002.safetensors"
	body := tinyRepo().files["model-00002-of-00002.safetensors"]
	size := len(body)
	var first atomic.Bool
	first.Store(true)
	h := newFakeHub(t, func(h *fakeHub) {
		h.hold = func(key string, w http.ResponseWriter, r *http.Request) bool {
			if key != shard || !first.CompareAndSwap(true, false) {
				return false
			}
			w.Header().Set("Content-Length", fmt.Sprint(size))
			w.Write(body[:size/2])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // hold the connection until the client gives up
			return true
		}
	})
	cache := t.TempDir()
	o := h.options(cache)
	ctx, cancel := context.WithCancel(context.Background())
	o.Progress = func(file string, done, _ int64) {
		if file == "model-00002-of-00002.safetensors" && done >= int64(size/2) {
			cancel()
		}
	}
	_, err := Download(ctx, "org/tiny", o)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "resumes next time") {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	blob := filepath.Join(cache, "models--org--tiny", "blobs", sha(h.repos["org/tiny"].files["model-00002-of-00002.safetensors"]))
	if fi, err := os.Stat(blob + ".incomplete"); err != nil || fi.Size() != int64(size/2) {
		t.Fatalf("partial blob: %v %v, want %d bytes", fi, err, size/2)
	}
	off := o
	off.Offline, off.Progress = true, nil
	if _, err := Download(context.Background(), "org/tiny", off); !errors.Is(err, ErrOffline) {
		t.Fatalf("offline after an interrupted download: err = %v, want ErrOffline", err)
	}
	o.Progress = nil
	if _, err := Download(context.Background(), "org/tiny", o); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s bytes=%d-", shard, size/2)
	if len(h.ranges) != 1 || h.ranges[0] != want {
		t.Errorf("ranges %q, want [%s]", h.ranges, want)
	}
	if _, err := Download(context.Background(), "org/tiny", off); err != nil {
		t.Errorf("offline after the resumed download: %v", err)
	}
}
