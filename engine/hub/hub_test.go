package hub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

// fakeHub serves one repository the way the hub does: the model info API
// (with blobs=true) and /resolve/ with Range support.
type fakeHub struct {
	files   map[string][]byte
	lfs     map[string]bool
	token   string
	corrupt string // a file served with wrong contents

	mu       sync.Mutex
	resolves map[string]int
	ranges   []string
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.token != "" && r.Header.Get("Authorization") != "Bearer "+h.token {
		http.Error(w, "gated", http.StatusUnauthorized)
		return
	}
	switch {
	case r.URL.Path == "/api/models/org/tiny/revision/main":
		type lfs struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		}
		type sib struct {
			Name   string `json:"rfilename"`
			Size   int64  `json:"size"`
			BlobID string `json:"blobId"`
			LFS    *lfs   `json:"lfs,omitempty"`
		}
		var sibs []sib
		for name, b := range h.files {
			s := sib{Name: name, Size: int64(len(b))}
			bid := sha1.Sum(b)
			s.BlobID = hex.EncodeToString(bid[:])
			if h.lfs[name] {
				sum := sha256.Sum256(b)
				s.LFS = &lfs{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}
			}
			sibs = append(sibs, s)
		}
		json.NewEncoder(w).Encode(map[string]any{"sha": commit, "siblings": sibs})
	case strings.HasPrefix(r.URL.Path, "/org/tiny/resolve/"+commit+"/"):
		name := strings.TrimPrefix(r.URL.Path, "/org/tiny/resolve/"+commit+"/")
		b, ok := h.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.mu.Lock()
		h.resolves[name]++
		if rg := r.Header.Get("Range"); rg != "" {
			h.ranges = append(h.ranges, name+" "+rg)
		}
		h.mu.Unlock()
		if name == h.corrupt {
			b = bytes.ToUpper(b)
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	default:
		http.NotFound(w, r)
	}
}

func newFake() *fakeHub {
	return &fakeHub{
		files: map[string][]byte{
			"config.json":       []byte(`{"architectures": ["LlamaForCausalLM"]}`),
			"tokenizer.json":    []byte(`{"model": {}}`),
			"model.safetensors": bytes.Repeat([]byte("weights!"), 4096),
			"README.md":         []byte("# not needed"),
			"onnx/model.onnx":   []byte("other format"),
		},
		lfs:      map[string]bool{"model.safetensors": true},
		resolves: map[string]int{},
	}
}

func TestDownload(t *testing.T) {
	fake := newFake()
	fake.token = "secret"
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cache := t.TempDir()
	var progressCalls int
	o := Options{Endpoint: srv.URL, Token: "secret", CacheDir: cache,
		Progress: func(string, int64, int64) { progressCalls++ }}
	ctx := context.Background()

	dir, err := Download(ctx, "org/tiny", o)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "models--org--tiny", "snapshots", commit); dir != want {
		t.Errorf("snapshot %s, want %s", dir, want)
	}
	for _, name := range []string{"config.json", "tokenizer.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(b, fake.files[name]) {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
		if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is not a symlink into blobs/", name)
		}
	}
	for _, skipped := range []string{"README.md", "onnx/model.onnx"} {
		if _, err := os.Stat(filepath.Join(dir, skipped)); err == nil {
			t.Errorf("%s was downloaded", skipped)
		}
	}
	if ref, _ := os.ReadFile(filepath.Join(cache, "models--org--tiny", "refs", "main")); string(ref) != commit {
		t.Errorf("refs/main = %q", ref)
	}
	if progressCalls == 0 {
		t.Error("no progress reported")
	}

	// Again: everything comes from the cache.
	if _, err := Download(ctx, "org/tiny", o); err != nil {
		t.Fatal(err)
	}
	for name, n := range fake.resolves {
		if n != 1 {
			t.Errorf("%s fetched %d times", name, n)
		}
	}

	// Offline: the cache answers, the server is not asked.
	srv.Close()
	o.Offline = true
	if d, err := Download(ctx, "org/tiny", o); err != nil || d != dir {
		t.Errorf("offline: %s, %v", d, err)
	}
	if _, err := Download(ctx, "org/other", o); !errors.Is(err, ErrOffline) {
		t.Errorf("offline, not cached: err = %v, want ErrOffline", err)
	}
	// Unreachable hub, but cached: falls back to the cache.
	o.Offline = false
	if d, err := Download(ctx, "org/tiny", o); err != nil || d != dir {
		t.Errorf("unreachable hub: %s, %v", d, err)
	}
}

func TestResumeAndChecks(t *testing.T) {
	fake := newFake()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cache := t.TempDir()
	o := Options{Endpoint: srv.URL, CacheDir: cache}
	ctx := context.Background()

	// A partial download left by an interrupted run is resumed with a Range request.
	w := fake.files["model.safetensors"]
	sum := sha256.Sum256(w)
	blobs := filepath.Join(cache, "models--org--tiny", "blobs")
	os.MkdirAll(blobs, 0o755)
	os.WriteFile(filepath.Join(blobs, hex.EncodeToString(sum[:])+".incomplete"), w[:1000], 0o644)
	dir, err := Download(ctx, "org/tiny", o)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(b, w) {
		t.Error("resumed file differs")
	}
	if len(fake.ranges) != 1 || fake.ranges[0] != "model.safetensors bytes=1000-" {
		t.Errorf("range requests %v", fake.ranges)
	}

	// Corrupt contents fail the sha256 check and leave nothing behind.
	fake2 := newFake()
	fake2.corrupt = "model.safetensors"
	srv2 := httptest.NewServer(fake2)
	defer srv2.Close()
	if _, err := Download(ctx, "org/tiny", Options{Endpoint: srv2.URL, CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("corrupt file: err = %v", err)
	}

	// A gated model without a token says so.
	fake3 := newFake()
	fake3.token = "x"
	srv3 := httptest.NewServer(fake3)
	defer srv3.Close()
	if _, err := Download(ctx, "org/tiny", Options{Endpoint: srv3.URL, CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("gated: err = %v", err)
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv("HF_HOME", "/tmp/hfhome")
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_TOKEN", "tok")
	o := OptionsFromEnv()
	if o.CacheDir != "/tmp/hfhome/hub" || !o.Offline || o.Token != "tok" {
		t.Errorf("%+v", o)
	}
}

func TestIsRepoID(t *testing.T) {
	for s, want := range map[string]bool{"Qwen/Qwen2.5-0.5B-Instruct": true, "org/name": true, "./models/x": false,
		"/abs/path": false, "org/../x": false, "a/b/c": false, "name": false} {
		if got := IsRepoID(s); got != want {
			t.Errorf("IsRepoID(%q) = %v", s, got)
		}
	}
}
