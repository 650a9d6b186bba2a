// Package hub fetches model repositories from the Hugging Face hub into the
// standard cache layout shared with the Python libraries (see repoCache):
// files already in the cache are reused, interrupted downloads resume from
// blobs/<etag>.incomplete, sizes and (for LFS files) sha256 are checked.
//
// It behaves as huggingface_hub does where users meet it: the same
// environment (OptionsFromEnv: tokens, cache folders, offline mode), the
// hub's own explanations of a refusal turned into what to do (Error), one
// lock per blob so that many processes (Slurm array tasks) can fetch one
// model into one cache at once, only the shards model.safetensors.index.json
// names, and refs/<revision> written last, so that an interrupted download
// never looks complete offline.
//
//	dir, err := hub.Resolve(ctx, "Qwen/Qwen2.5-0.5B-Instruct", hub.OptionsFromEnv())
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/crucible-ml/crucible/internal/download"
)

// Options configure a download. OptionsFromEnv fills them the way the
// Python libraries read their environment.
type Options struct {
	Endpoint string // default https://huggingface.co
	Token    string // sent as a bearer token when set
	// TokenSource says where Token came from (HF_TOKEN, a file), for
	// messages.
	TokenSource string
	CacheDir    string // the hub cache (models--org--name live inside)
	Offline     bool   // never touch the network
	Revision    string // branch, tag or commit; default "main"
	Client      *http.Client
	// Progress, when set, is called as bytes of a file arrive.
	Progress func(file string, done, total int64)
	// Want selects the repository files to fetch (default: WantModelFile).
	Want func(name string) bool
	// Logger tells about waits for other downloaders and about falling
	// back to the cache (default slog.Default()).
	Logger *slog.Logger
}

// WantModelFile selects what the engine needs: configs, tokenizer files,
// chat template and safetensors weights (not .bin/.pth/.gguf copies).
// Download narrows the weights further to what the index names.
func WantModelFile(name string) bool {
	base := path.Base(name)
	if name != base { // files in sub-folders (onnx/, original/...) are other formats
		return false
	}
	switch base {
	case "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
		"special_tokens_map.json", "chat_template.jinja", "chat_template.json", indexFile:
		return true
	}
	return isWeights(base)
}

func isWeights(name string) bool {
	return path.Base(name) == name && strings.HasSuffix(name, ".safetensors")
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

// sibling is one file of the repository, as the model info API lists it.
type sibling struct {
	Name   string `json:"rfilename"`
	Size   *int64 `json:"size"`
	BlobID string `json:"blobId"`
	LFS    *struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

// repoInfo is the part of /api/models/{repo}/revision/{rev}?blobs=true used.
type repoInfo struct {
	SHA      string    `json:"sha"`
	Siblings []sibling `json:"siblings"`
}

// fileSpec is one file to fetch: its blob's name (the etag the hub gives
// it: the git blob id, or the sha256 of an LFS file) and what to check.
type fileSpec struct {
	name   string
	etag   string
	sha256 string // "" for non-LFS files
	size   int64  // -1 when unknown
}

var etagRE = regexp.MustCompile(`^[0-9a-fA-F]{40,64}$`)

func (s sibling) spec() (fileSpec, error) {
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
		return f, fmt.Errorf("no blob id for %s (the hub did not answer with blobs=true)", s.Name)
	}
	if !etagRE.MatchString(f.etag) {
		return f, fmt.Errorf("%s: bad etag %q", s.Name, f.etag)
	}
	return f, nil
}

func (o *Options) defaults() {
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
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Download makes sure the model repository is in the cache and returns its
// snapshot folder. Offline, or when the hub cannot be reached, a complete
// cached snapshot is used and an incomplete one is an error naming what
// is missing. Cancelling ctx stops it; the partial blob resumes next time.
func Download(ctx context.Context, repo string, o Options) (string, error) {
	if !IsRepoID(repo) {
		return "", fmt.Errorf("hub: %q is not an org/name repository id", repo)
	}
	o.defaults()
	if o.CacheDir == "" {
		return "", errors.New("hub: no cache folder (set HF_HOME or HF_HUB_CACHE)")
	}
	c := newRepoCache(o.CacheDir, repo)
	if o.Offline {
		dir, err := c.snapshot(o.Revision)
		if err != nil {
			return "", fmt.Errorf("%w (offline: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set; unset it to download, or pass a local model folder)", err)
		}
		return dir, nil
	}
	info, err := fetchInfo(ctx, repo, &o)
	if err != nil {
		var ue *UnreachableError
		if errors.As(err, &ue) {
			// Like huggingface_hub: fall back to the cache when the hub
			// cannot be reached.
			dir, cerr := c.snapshot(o.Revision)
			if cerr == nil {
				o.Logger.Warn("hub: unreachable; using the cached snapshot", "repo", repo, "dir", dir, "err", ue.Err)
				return dir, nil
			}
			ue.Cache = cerr
		}
		return "", err
	}
	if !commitRE.MatchString(info.SHA) {
		return "", fmt.Errorf("hub: %s@%s: bad commit id %q", repo, o.Revision, info.SHA)
	}
	files, err := choose(ctx, c, info, &o)
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("hub: %s@%s has no model files", repo, o.Revision)
	}
	for _, f := range files {
		if err := fetchBlob(ctx, c, info.SHA, f, &o); err != nil {
			return "", err
		}
	}
	// Every blob is in: now the snapshot, then the ref, so that a snapshot
	// a ref points at is complete.
	snap := c.snap(info.SHA)
	for _, f := range files {
		if err := c.link(snap, f.name, f.etag, f.size); err != nil {
			return "", err
		}
	}
	if info.SHA != o.Revision {
		if err := c.writeRef(o.Revision, info.SHA); err != nil {
			return "", err
		}
	}
	return snap, nil
}

// choose picks the files to fetch: those o.Want selects, with the weights
// narrowed to the shards model.safetensors.index.json names (fetched first
// to read it), or to model.safetensors when there is no index, so that a
// repository that also holds consolidated.safetensors is not downloaded
// twice.
func choose(ctx context.Context, c repoCache, info *repoInfo, o *Options) ([]fileSpec, error) {
	var all []fileSpec
	byName := map[string]fileSpec{}
	for _, s := range info.Siblings {
		if !o.Want(s.Name) {
			continue
		}
		if strings.Contains(s.Name, "..") || strings.HasPrefix(s.Name, "/") || strings.Contains(s.Name, `\`) {
			return nil, fmt.Errorf("hub: %s: unsafe file name %q", c.repo, s.Name)
		}
		f, err := s.spec()
		if err != nil {
			return nil, fmt.Errorf("hub: %s: %w", c.repo, err)
		}
		all = append(all, f)
		byName[f.name] = f
	}
	keep := func(string) bool { return true }
	if idx, ok := byName[indexFile]; ok {
		if err := fetchBlob(ctx, c, info.SHA, idx, o); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(c.blob(idx.etag))
		if err != nil {
			return nil, fmt.Errorf("hub: %w", err)
		}
		shards, err := indexShards(b)
		if err != nil {
			return nil, fmt.Errorf("hub: %s: %s: %w", c.repo, indexFile, err)
		}
		named := map[string]bool{}
		for _, s := range shards {
			if _, ok := byName[s]; !ok {
				return nil, fmt.Errorf("hub: %s@%s: %s names %s, which the repository does not have", c.repo, o.Revision, indexFile, s)
			}
			named[s] = true
		}
		keep = func(name string) bool { return named[name] }
	} else if _, ok := byName["model.safetensors"]; ok {
		keep = func(name string) bool { return name == "model.safetensors" }
	}
	var files []fileSpec
	for _, f := range all {
		if !isWeights(f.name) || keep(f.name) {
			files = append(files, f)
		}
	}
	return files, nil
}

// header holds what every hub request carries.
func (o *Options) header() http.Header {
	h := http.Header{"User-Agent": {"crucible"}}
	if o.Token != "" {
		h.Set("Authorization", "Bearer "+o.Token)
	}
	return h
}

func fetchInfo(ctx context.Context, repo string, o *Options) (*repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", o.Endpoint, repo, url.PathEscape(o.Revision))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header = o.header()
	resp, err := o.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("hub: %s: %w", repo, ctx.Err())
		}
		if unreachable(err) {
			return nil, &UnreachableError{Host: o.Endpoint, Repo: repo, Err: err}
		}
		return nil, fmt.Errorf("hub: %s: %w", repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, refusal(o, repo, "", resp.StatusCode, resp.Header)
	}
	var info repoInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("hub: %s: model info: %w", repo, err)
	}
	return &info, nil
}

// fetchBlob puts one file into blobs/, unless it is there: under the
// blob's lock, resuming blobs/<etag>.incomplete.
func fetchBlob(ctx context.Context, c repoCache, commit string, f fileSpec, o *Options) error {
	blob := c.blob(f.etag)
	if fi, err := os.Stat(blob); err == nil && (f.size < 0 || fi.Size() == f.size) {
		return nil
	}
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", o.Endpoint, c.repo, commit, escapePath(f.name))
	do := download.Options{
		Client: o.Client,
		Header: o.header(),
		Part:   blob + ".incomplete",
		Lock:   c.lock(f.etag),
		Size:   f.size,
		SHA256: f.sha256,
		Logger: o.Logger,
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
		return refusal(o, c.repo, f.name, status.Code, status.Header)
	case errors.As(err, &cut) && ctx.Err() != nil:
		return fmt.Errorf("hub: %s: %s: stopped; the partial download in %s resumes next time: %w", c.repo, f.name, do.Part, ctx.Err())
	case errors.As(err, &cut):
		return fmt.Errorf("hub: %s: %s: download interrupted (rerun to resume): %w", c.repo, f.name, cut.Err)
	case errors.As(err, &sum):
		return fmt.Errorf("hub: %s: %s: sha256 %s, want %s (the partial file was removed; rerun)", c.repo, f.name, sum.Got, sum.Want)
	case unreachable(err):
		host := o.Endpoint
		var ue *url.Error
		if errors.As(err, &ue) {
			if p, perr := url.Parse(ue.URL); perr == nil {
				host = p.Scheme + "://" + p.Host
			}
		}
		return &UnreachableError{Host: host, Repo: c.repo, Err: err}
	}
	return fmt.Errorf("hub: %s: %s: %w", c.repo, f.name, err)
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
