package hub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

// fakeRepo is one repository of the fake hub.
type fakeRepo struct {
	files map[string][]byte
	lfs   map[string]bool // served through a redirect to the CDN host
	gated bool
}

// fakeHub serves repositories the way huggingface.co does: the model info
// API (blobs=true), /resolve/ with ETag, X-Repo-Commit and, for LFS files,
// X-Linked-Etag/X-Linked-Size and a 302 to another host (the CDN, which
// refuses an Authorization header as a signed-URL store does), refusals
// with X-Error-Code and X-Error-Message, and Range requests.
type fakeHub struct {
	repos    map[string]*fakeRepo
	token    string // has access to gated repositories
	badToken string // rejected as invalid
	hub, cdn *httptest.Server
	// hold, when set, runs before bytes of a file are served; it may block,
	// and it may answer itself (then it returns true).
	hold func(key string, w http.ResponseWriter, r *http.Request) bool

	mu     sync.Mutex
	gets   map[string]int // repo/file → requests that were served bytes
	ranges []string       // "repo/file bytes=N-"
	infos  atomic.Int32   // model info requests
	// onInfo, when set, is told the count after each model info request.
	onInfo func(count int32)
}

func tinyRepo() *fakeRepo {
	shard := func(c byte) []byte { return bytes.Repeat([]byte{c}, 64<<10) }
	index, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"total_size": 128 << 10},
		"weight_map": map[string]string{
			"embed.weight": "model-00001-of-00002.safetensors",
			"lm_head":      "model-00002-of-00002.safetensors",
			"norm.weight":  "model-00002-of-00002.safetensors",
		},
	})
	return &fakeRepo{
		files: map[string][]byte{
			"config.json":                      []byte(`{"architectures": ["LlamaForCausalLM"]}`),
			"tokenizer.json":                   []byte(`{"model": {}}`),
			"README.md":                        []byte("# not needed"),
			"onnx/model.onnx":                  []byte("other format"),
			indexFile:                          index,
			"model-00001-of-00002.safetensors": shard('a'),
			"model-00002-of-00002.safetensors": shard('b'),
			"consolidated.safetensors":         shard('c'),
		},
		lfs: map[string]bool{"model-00001-of-00002.safetensors": true, "model-00002-of-00002.safetensors": true,
			"consolidated.safetensors": true},
	}
}

// newFakeHub starts a fake hub holding org/tiny; setup runs before it
// serves.
func newFakeHub(t *testing.T, setup ...func(h *fakeHub)) *fakeHub {
	h := &fakeHub{repos: map[string]*fakeRepo{"org/tiny": tinyRepo()}, gets: map[string]int{}}
	for _, f := range setup {
		f(h)
	}
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	t.Cleanup(func() { h.hub.Close(); h.cdn.Close() })
	return h
}

// cdnHost is the download host LFS files redirect to; client dials it at
// the CDN server, so that it is another host name than the hub's.
const cdnHost = "cdn-lfs.test"

// client talks to the fake hub and its CDN host.
func (h *fakeHub) client() *http.Client { return h.clientTo(h.cdn.Listener.Addr().String()) }

// clientTo dials cdnHost at the address cdn.
func (h *fakeHub) clientTo(cdn string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasPrefix(addr, cdnHost+":") {
				addr = cdn
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

func (h *fakeHub) options(cache string) Options {
	return Options{Endpoint: h.hub.URL, CacheDir: cache, Client: h.client(), Logger: quiet}
}

var quiet = slog.New(slog.DiscardHandler)

func gitBlobID(b []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(b))
	s.Write(b)
	return hex.EncodeToString(s.Sum(nil))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func refuse(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, msg, status)
}

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if h.badToken != "" && auth == "Bearer "+h.badToken {
		refuse(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return
	}
	p := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	var name, rev, file string
	switch {
	case len(p) == 6 && p[0] == "api" && p[1] == "models" && p[4] == "revision":
		name, rev = p[2]+"/"+p[3], p[5]
	case len(p) >= 5 && p[2] == "resolve":
		name, rev, file = p[0]+"/"+p[1], p[3], strings.Join(p[4:], "/")
	default:
		http.NotFound(w, r)
		return
	}
	repo, ok := h.repos[name]
	if !ok {
		refuse(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
		return
	}
	if rev != "main" && rev != commit {
		refuse(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	if file == "" { // model info: public even for gated repositories
		if c := h.infos.Add(1); h.onInfo != nil {
			h.onInfo(c)
		}
		var sibs []map[string]any
		for n, b := range repo.files {
			s := map[string]any{"rfilename": n, "size": len(b), "blobId": gitBlobID(b)}
			if repo.lfs[n] {
				s["lfs"] = map[string]any{"sha256": sha(b), "size": len(b), "pointerSize": 134}
			}
			sibs = append(sibs, s)
		}
		json.NewEncoder(w).Encode(map[string]any{"id": name, "sha": commit, "siblings": sibs})
		return
	}
	if repo.gated && auth == "" {
		refuse(w, http.StatusUnauthorized, "GatedRepo", "Access to model "+name+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
		return
	}
	if repo.gated && auth != "Bearer "+h.token {
		refuse(w, http.StatusForbidden, "GatedRepo", "Access to model "+name+" is restricted and you are not in the authorized list. Visit https://huggingface.co/"+name+" to ask for access.")
		return
	}
	b, ok := repo.files[file]
	if !ok {
		refuse(w, http.StatusNotFound, "EntryNotFound", file+" does not exist on \"main\"")
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if repo.lfs[file] {
		w.Header().Set("X-Linked-Etag", `"`+sha(b)+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(b)))
		w.Header().Set("ETag", `"`+gitBlobID(b)+`"`)
		http.Redirect(w, r, "http://"+cdnHost+"/"+name+"/"+sha(b)+"?X-Amz-Signature=signed", http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+gitBlobID(b)+`"`)
	h.serve(w, r, name+"/"+file, b)
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		http.Error(w, "Only one auth mechanism allowed", http.StatusBadRequest)
		return
	}
	p := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(p) != 3 || r.URL.Query().Get("X-Amz-Signature") != "signed" {
		http.NotFound(w, r)
		return
	}
	repo := h.repos[p[0]+"/"+p[1]]
	for n, b := range repo.files {
		if repo.lfs[n] && sha(b) == p[2] {
			h.serve(w, r, p[0]+"/"+p[1]+"/"+n, b)
			return
		}
	}
	http.NotFound(w, r)
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request, key string, b []byte) {
	if h.hold != nil && h.hold(key, w, r) {
		return
	}
	h.mu.Lock()
	h.gets[key]++
	if rg := r.Header.Get("Range"); rg != "" {
		h.ranges = append(h.ranges, key+" "+rg)
	}
	h.mu.Unlock()
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}
