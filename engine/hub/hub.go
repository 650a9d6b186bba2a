// Package hub fetches model repositories from the Hugging Face hub into the
// standard cache layout shared with the Python libraries:
//
//	$HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//	  models--org--name/
//	    refs/main                       the commit the revision resolved to
//	    blobs/<etag>                    file contents (sha256 for LFS files)
//	    snapshots/<commit>/<file>       symlinks to ../../blobs/<etag>
//
// Files already in the cache are reused; interrupted downloads resume from
// blobs/<etag>.incomplete; sizes and (for LFS files) sha256 are checked.
// HF_TOKEN authenticates, HF_HUB_OFFLINE=1 uses the cache only, and
// HF_ENDPOINT points at another hub.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/crucible-ml/crucible/internal/download"
)

// Options configure a download. OptionsFromEnv fills them the way the
// Python libraries read their environment.
type Options struct {
	Endpoint string // default https://huggingface.co
	Token    string // sent as a bearer token when set
	CacheDir string // the hub cache (models--org--name live inside)
	Offline  bool   // never touch the network
	Revision string // branch, tag or commit; default "main"
	Client   *http.Client
	// Progress, when set, is called as bytes of a file arrive.
	Progress func(file string, done, total int64)
	// Want selects the repository files to fetch (default: WantModelFile).
	Want func(name string) bool
}

// OptionsFromEnv reads HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE, HF_HOME and
// HF_HUB_OFFLINE.
func OptionsFromEnv() Options {
	o := Options{Endpoint: os.Getenv("HF_ENDPOINT"), Token: os.Getenv("HF_TOKEN"), CacheDir: os.Getenv("HF_HUB_CACHE")}
	if o.CacheDir == "" {
		home := os.Getenv("HF_HOME")
		if home == "" {
			if h, err := os.UserHomeDir(); err == nil {
				home = filepath.Join(h, ".cache", "huggingface")
			}
		}
		o.CacheDir = filepath.Join(home, "hub")
	}
	switch strings.ToLower(os.Getenv("HF_HUB_OFFLINE")) {
	case "1", "true", "yes", "on":
		o.Offline = true
	}
	return o
}

// WantModelFile selects what the engine needs: configs, tokenizer files,
// chat template and safetensors weights (not .bin/.pth/.gguf copies).
func WantModelFile(name string) bool {
	base := path.Base(name)
	if name != base { // files in sub-folders (onnx/, original/...) are other formats
		return false
	}
	switch base {
	case "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
		"special_tokens_map.json", "chat_template.jinja", "chat_template.json", "model.safetensors.index.json":
		return true
	}
	return strings.HasSuffix(base, ".safetensors")
}

var repoRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)

// IsRepoID reports whether s looks like an "org/name" repository id.
func IsRepoID(s string) bool { return repoRE.MatchString(s) && !strings.Contains(s, "..") }

// Resolve turns a --model argument into a local folder: an existing folder
// as it is, an "org/name" repository id through Download.
func Resolve(ctx context.Context, model string, o Options) (string, error) {
	if fi, err := os.Stat(model); err == nil && fi.IsDir() {
		return model, nil
	}
	if !IsRepoID(model) {
		return "", fmt.Errorf("model %q: no such folder, and not an org/name hub repository id", model)
	}
	return Download(ctx, model, o)
}

// ErrOffline marks a model that is not in the cache while offline.
var ErrOffline = errors.New("hub: offline and not in the cache")

// repoInfo is the part of /api/models/{repo}/revision/{rev}?blobs=true used.
type repoInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		Name   string `json:"rfilename"`
		Size   *int64 `json:"size"`
		BlobID string `json:"blobId"`
		LFS    *struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"lfs"`
	} `json:"siblings"`
}

// Download makes sure the model repository is in the cache and returns its
// snapshot folder.
func Download(ctx context.Context, repo string, o Options) (string, error) {
	if !IsRepoID(repo) {
		return "", fmt.Errorf("hub: %q is not an org/name repository id", repo)
	}
	if o.Endpoint == "" {
		o.Endpoint = "https://huggingface.co"
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.Revision == "" {
		o.Revision = "main"
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Want == nil {
		o.Want = WantModelFile
	}
	if o.CacheDir == "" {
		return "", errors.New("hub: no cache folder (set HF_HOME or HF_HUB_CACHE)")
	}
	root := filepath.Join(o.CacheDir, "models--"+strings.ReplaceAll(repo, "/", "--"))
	if o.Offline {
		return cachedSnapshot(root, o.Revision, repo)
	}
	info, err := fetchInfo(ctx, repo, o)
	if err != nil {
		// Like huggingface_hub: fall back to the cache when the hub cannot be reached.
		if dir, cerr := cachedSnapshot(root, o.Revision, repo); cerr == nil {
			return dir, nil
		}
		return "", err
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(info.SHA) {
		return "", fmt.Errorf("hub: %s@%s: bad commit id %q", repo, o.Revision, info.SHA)
	}
	if info.SHA != o.Revision {
		if err := writeFileAtomic(filepath.Join(root, "refs", filepath.FromSlash(o.Revision)), []byte(info.SHA)); err != nil {
			return "", err
		}
	}
	snap := filepath.Join(root, "snapshots", info.SHA)
	n := 0
	for _, s := range info.Siblings {
		if !o.Want(s.Name) {
			continue
		}
		if strings.Contains(s.Name, "..") || strings.HasPrefix(s.Name, "/") {
			return "", fmt.Errorf("hub: %s: unsafe file name %q", repo, s.Name)
		}
		f := fileSpec{name: s.Name, size: -1}
		switch {
		case s.LFS != nil:
			f.etag, f.sha256, f.size = s.LFS.SHA256, s.LFS.SHA256, s.LFS.Size
		case s.BlobID != "":
			f.etag = s.BlobID
			if s.Size != nil {
				f.size = *s.Size
			}
		default:
			return "", fmt.Errorf("hub: %s: no blob id for %s (the hub did not answer with blobs=true)", repo, s.Name)
		}
		if err := fetchFile(ctx, repo, info.SHA, root, snap, f, o); err != nil {
			return "", err
		}
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("hub: %s@%s has no model files", repo, o.Revision)
	}
	return snap, nil
}

func cachedSnapshot(root, rev, repo string) (string, error) {
	commit := rev
	if b, err := os.ReadFile(filepath.Join(root, "refs", filepath.FromSlash(rev))); err == nil {
		commit = strings.TrimSpace(string(b))
	}
	snap := filepath.Join(root, "snapshots", commit)
	if _, err := os.Stat(filepath.Join(snap, "config.json")); err != nil {
		return "", fmt.Errorf("%w: %s@%s (looked in %s)", ErrOffline, repo, rev, root)
	}
	return snap, nil
}

// header holds what every hub request carries.
func (o *Options) header() http.Header {
	h := http.Header{"User-Agent": {"crucible"}}
	if o.Token != "" {
		h.Set("Authorization", "Bearer "+o.Token)
	}
	return h
}

func (o *Options) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header = o.header()
	return o.Client.Do(req)
}

func fetchInfo(ctx context.Context, repo string, o Options) (*repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", o.Endpoint, repo, url.PathEscape(o.Revision))
	resp, err := o.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("hub: %s: %w", repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (a gated or private model needs HF_TOKEN)"
		}
		return nil, fmt.Errorf("hub: %s@%s: %s%s: %s", repo, o.Revision, resp.Status, hint, strings.TrimSpace(string(b)))
	}
	var info repoInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("hub: %s: model info: %w", repo, err)
	}
	return &info, nil
}

type fileSpec struct {
	name   string
	etag   string
	sha256 string // "" for non-LFS files
	size   int64  // -1 when unknown
}

// fetchFile puts one file into blobs/ (resuming a partial download) and
// links it from the snapshot.
func fetchFile(ctx context.Context, repo, commit, root, snap string, f fileSpec, o Options) error {
	if !regexp.MustCompile(`^[0-9a-fA-F]{40,64}$`).MatchString(f.etag) {
		return fmt.Errorf("hub: %s: %s: bad etag %q", repo, f.name, f.etag)
	}
	link := filepath.Join(snap, filepath.FromSlash(f.name))
	blob := filepath.Join(root, "blobs", f.etag)
	if fi, err := os.Stat(link); err == nil && (f.size < 0 || fi.Size() == f.size) {
		return nil // already in the snapshot
	}
	if fi, err := os.Stat(blob); err != nil || (f.size >= 0 && fi.Size() != f.size) {
		if err := downloadBlob(ctx, repo, commit, blob, f, o); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(link), blob)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	os.Remove(link)
	if err := os.Symlink(rel, link); err != nil {
		return fmt.Errorf("hub: link %s: %w", link, err)
	}
	return nil
}

func downloadBlob(ctx context.Context, repo, commit, blob string, f fileSpec, o Options) error {
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", o.Endpoint, repo, commit, escapePath(f.name))
	do := download.Options{
		Client: o.Client,
		Header: o.header(),
		Part:   blob + ".incomplete",
		Size:   f.size,
		SHA256: f.sha256,
	}
	if o.Progress != nil {
		do.Progress = func(done, total int64) { o.Progress(f.name, done, total) }
	}
	err := download.File(ctx, u, blob, do)
	var status *download.StatusError
	var cut *download.InterruptedError
	var sum *download.ChecksumError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &status):
		return fmt.Errorf("hub: %s: %s: %s", repo, f.name, status.Status)
	case errors.As(err, &cut):
		return fmt.Errorf("hub: %s: %s: download interrupted (resumes next time): %w", repo, f.name, cut.Err)
	case errors.As(err, &sum):
		return fmt.Errorf("hub: %s: %s: sha256 %s, want %s", repo, f.name, sum.Got, sum.Want)
	}
	return fmt.Errorf("hub: %s: %s: %w", repo, f.name, err)
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

func writeFileAtomic(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}
