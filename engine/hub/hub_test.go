package hub

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fetched lists the repository files whose bytes the fake served.
func (h *fakeHub) fetched(repo string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for k := range h.gets {
		if n, ok := strings.CutPrefix(k, repo+"/"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func TestDownload(t *testing.T) {
	h := newFakeHub(t, func(h *fakeHub) { h.repos["org/tiny"].gated, h.token = true, "secret" })
	cache := t.TempDir()
	o := h.options(cache)
	o.Token = "secret"
	var progressCalls int
	o.Progress = func(string, int64, int64) { progressCalls++ }
	ctx := context.Background()

	dir, err := Download(ctx, "org/tiny", o)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "models--org--tiny", "snapshots", commit); dir != want {
		t.Errorf("snapshot %s, want %s", dir, want)
	}
	repo := h.repos["org/tiny"]
	for _, name := range []string{"config.json", "tokenizer.json", indexFile, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(b, repo.files[name]) {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
		if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is not a symlink into blobs/", name)
		}
	}
	for _, skipped := range []string{"README.md", "onnx/model.onnx", "consolidated.safetensors"} {
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
	// Python's layout: one lock per blob under .locks.
	if locks, _ := filepath.Glob(filepath.Join(cache, ".locks", "models--org--tiny", "*.lock")); len(locks) != 5 {
		t.Errorf("%d lock files, want 5", len(locks))
	}
	// Nothing temporary is left behind.
	filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if strings.Contains(p, ".tmp-") || strings.HasSuffix(p, ".incomplete") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})

	// Again: everything comes from the cache.
	if _, err := Download(ctx, "org/tiny", o); err != nil {
		t.Fatal(err)
	}
	for k, n := range h.gets {
		if n != 1 {
			t.Errorf("%s fetched %d times", k, n)
		}
	}

	// Offline: the cache answers, the server is not asked.
	infos := h.infos.Load()
	o.Offline = true
	if d, err := Download(ctx, "org/tiny", o); err != nil || d != dir {
		t.Errorf("offline: %s, %v", d, err)
	}
	if h.infos.Load() != infos {
		t.Error("offline mode asked the hub")
	}
	if _, err := Download(ctx, "org/other", o); !errors.Is(err, ErrOffline) {
		t.Errorf("offline, not cached: err = %v, want ErrOffline", err)
	}
	// Unreachable hub, but cached: falls back to the cache.
	h.hub.Close()
	o.Offline = false
	if d, err := Download(ctx, "org/tiny", o); err != nil || d != dir {
		t.Errorf("unreachable hub: %s, %v", d, err)
	}
}

// TestWeightSelection: only the shards the index names, else only
// model.safetensors; never consolidated.safetensors beside them.
func TestWeightSelection(t *testing.T) {
	badIndex := tinyRepo()
	badIndex.files[indexFile] = []byte(`{"weight_map": {"x": "model-00003-of-00002.safetensors"}}`)
	single := &fakeRepo{files: map[string][]byte{
		"config.json": []byte(`{}`), "model.safetensors": []byte("weights"), "consolidated.safetensors": []byte("same weights"),
	}}
	for _, tc := range []struct {
		name    string
		repo    *fakeRepo
		want    []string
		wantErr string
	}{
		{name: "index", repo: tinyRepo(), want: []string{"config.json",
			"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", indexFile, "tokenizer.json"}},
		{name: "no index", repo: single, want: []string{"config.json", "model.safetensors"}},
		{name: "index names a missing shard", repo: badIndex, wantErr: "model-00003-of-00002.safetensors, which the repository does not have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHub(t, func(h *fakeHub) { h.repos["org/tiny"] = tc.repo })
			_, err := Download(context.Background(), "org/tiny", h.options(t.TempDir()))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := h.fetched("org/tiny"); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("fetched %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRefusals: the hub's X-Error-Code and X-Error-Message become an Error
// that says what to do.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, repo, token, rev string
		is                     error
		want                   []string
	}{
		{name: "gated, no token", repo: "org/gated", is: ErrGated,
			want: []string{"401", "GatedRepo", "Please log in", "request access at HUB/org/gated", "hf auth login", "HF_TOKEN"}},
		{name: "gated, token without access", repo: "org/gated", token: "other", is: ErrGated,
			want: []string{"403", "not in the authorized list", "the token from HF_TOKEN has no access yet", "request access at HUB/org/gated"}},
		{name: "no such repository", repo: "org/missing", is: ErrNotFound,
			want: []string{"404", "RepoNotFound", "No repository org/missing, or it is private", "hf auth login"}},
		{name: "invalid token", repo: "org/tiny", token: "bad",
			want: []string{"401", "Invalid credentials", "The token from HF_TOKEN is not valid", "HUB/settings/tokens"}},
		{name: "no such revision", repo: "org/tiny", rev: "v9", is: ErrNotFound,
			want: []string{"RevisionNotFound", `no revision "v9"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHub(t, func(h *fakeHub) {
				h.repos["org/gated"] = tinyRepo()
				h.repos["org/gated"].gated = true
				h.token, h.badToken = "secret", "bad"
			})
			o := h.options(t.TempDir())
			o.Token, o.Revision = tc.token, tc.rev
			if tc.token != "" {
				o.TokenSource = "HF_TOKEN"
			}
			_, err := Download(context.Background(), tc.repo, o)
			t.Log(err)
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(err, %v) is false", tc.is)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "HUB", h.hub.URL); !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if _, serr := os.Stat(filepath.Join(o.CacheDir, "models--"+strings.ReplaceAll(tc.repo, "/", "--"), "refs")); serr == nil {
				t.Error("a refused download wrote refs/")
			}
		})
	}
}

// TestUnreachable: a hub that cannot be reached says so and what to do
// instead of a raw dial error, and tells why the cache cannot stand in.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	dnsFails := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "huggingface.co", IsNotFound: true}}
	}}}
	for _, tc := range []struct {
		name     string
		endpoint string
		client   *http.Client
		want     string
	}{
		{name: "connection refused", endpoint: closed, want: "connection refused"},
		{name: "no DNS", endpoint: "https://huggingface.co", client: dnsFails, want: "no such host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Download(context.Background(), "org/tiny", Options{Endpoint: tc.endpoint, Client: tc.client, CacheDir: t.TempDir(), Logger: quiet})
			t.Log(err)
			if !errors.Is(err, ErrUnreachable) || !errors.Is(err, ErrOffline) {
				t.Fatalf("err = %v, want ErrUnreachable and ErrOffline", err)
			}
			for _, w := range []string{"cannot reach " + tc.endpoint, tc.want, "local model folder", "HF_HUB_CACHE", "HF_HUB_OFFLINE=1", "org/tiny is not in"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

// TestOfflineNamesMissing: offline, a snapshot is used only when every file
// the engine needs is there, and the error names what is not.
func TestOfflineNamesMissing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(cache, snap string)
		want   string
	}{
		{name: "complete", damage: func(string, string) {}},
		{name: "shard link gone", want: "lacks model-00002-of-00002.safetensors",
			damage: func(_, snap string) { os.Remove(filepath.Join(snap, "model-00002-of-00002.safetensors")) }},
		{name: "blob gone", want: "model-00001-of-00002.safetensors (its blob is gone)",
			damage: func(cache, _ string) {
				os.Remove(filepath.Join(cache, "models--org--tiny", "blobs", sha(tinyRepo().files["model-00001-of-00002.safetensors"])))
			}},
		{name: "config gone", want: "lacks config.json",
			damage: func(_, snap string) { os.Remove(filepath.Join(snap, "config.json")) }},
		{name: "ref never written", want: "no refs/main",
			damage: func(cache, _ string) { os.Remove(filepath.Join(cache, "models--org--tiny", "refs", "main")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHub(t)
			cache := t.TempDir()
			o := h.options(cache)
			snap, err := Download(context.Background(), "org/tiny", o)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(cache, snap)
			o.Offline = true
			_, err = Download(context.Background(), "org/tiny", o)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
				t.Fatalf("err = %v, want ErrOffline naming %q", err, tc.want)
			}
		})
	}
}

func TestOptionsFromEnv(t *testing.T) {
	home := t.TempDir()
	tokenFile := filepath.Join(home, "hf", "token")
	os.MkdirAll(filepath.Dir(tokenFile), 0o755)
	os.WriteFile(tokenFile, []byte("hf_fromfile\r\n"), 0o600)
	other := filepath.Join(home, "other-token")
	os.WriteFile(other, []byte("  hf_other\n"), 0o600)
	for _, tc := range []struct {
		name                 string
		env                  map[string]string
		cache, token, source string
		offline              bool
	}{
		{name: "defaults", cache: home + "/.cache/huggingface/hub"},
		{name: "XDG_CACHE_HOME", env: map[string]string{"XDG_CACHE_HOME": home + "/xdg"}, cache: home + "/xdg/huggingface/hub"},
		{name: "HF_HOME and its token file", env: map[string]string{"HF_HOME": home + "/hf", "XDG_CACHE_HOME": "/elsewhere"},
			cache: home + "/hf/hub", token: "hf_fromfile", source: tokenFile},
		{name: "HF_HOME with ~", env: map[string]string{"HF_HOME": "~/hf"}, cache: home + "/hf/hub", token: "hf_fromfile", source: tokenFile},
		{name: "HUGGINGFACE_HUB_CACHE", env: map[string]string{"HUGGINGFACE_HUB_CACHE": home + "/legacy"}, cache: home + "/legacy"},
		{name: "HF_HUB_CACHE wins", env: map[string]string{"HF_HUB_CACHE": "$HOME/new", "HUGGINGFACE_HUB_CACHE": home + "/legacy"}, cache: home + "/new"},
		{name: "HF_TOKEN trimmed, before the file", env: map[string]string{"HF_HOME": home + "/hf", "HF_TOKEN": " hf_env\n"},
			cache: home + "/hf/hub", token: "hf_env", source: "HF_TOKEN"},
		{name: "HUGGING_FACE_HUB_TOKEN", env: map[string]string{"HUGGING_FACE_HUB_TOKEN": "hf_legacy"},
			cache: home + "/.cache/huggingface/hub", token: "hf_legacy", source: "HUGGING_FACE_HUB_TOKEN"},
		{name: "HF_TOKEN_PATH", env: map[string]string{"HF_HOME": home + "/hf", "HF_TOKEN_PATH": other},
			cache: home + "/hf/hub", token: "hf_other", source: other},
		{name: "HF_HUB_OFFLINE", env: map[string]string{"HF_HUB_OFFLINE": "yes"}, cache: home + "/.cache/huggingface/hub", offline: true},
		{name: "TRANSFORMERS_OFFLINE", env: map[string]string{"TRANSFORMERS_OFFLINE": "1"}, cache: home + "/.cache/huggingface/hub", offline: true},
		{name: "HF_HUB_OFFLINE=0 wins", env: map[string]string{"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1"}, cache: home + "/.cache/huggingface/hub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"HF_HOME", "XDG_CACHE_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN",
				"HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT"} {
				t.Setenv(k, "")
			}
			t.Setenv("HOME", home)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			o := OptionsFromEnv()
			if o.CacheDir != filepath.FromSlash(tc.cache) || o.Token != tc.token || o.TokenSource != tc.source || o.Offline != tc.offline {
				t.Errorf("cache %q token %q from %q offline %v; want %q %q %q %v", o.CacheDir, o.Token, o.TokenSource, o.Offline,
					tc.cache, tc.token, tc.source, tc.offline)
			}
		})
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
