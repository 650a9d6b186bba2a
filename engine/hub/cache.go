package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
)

// repoCache is one repository's folder in the hub cache, in the layout
// huggingface_hub uses, so either can fill it for the other:
//
//	models--org--name/refs/<revision>          the commit, written last
//	models--org--name/blobs/<etag>             contents (.incomplete while downloading)
//	models--org--name/snapshots/<commit>/<f>   links to ../../blobs/<etag>
//	.locks/models--org--name/<etag>.lock       one lock per blob
type repoCache struct {
	repo  string
	root  string
	locks string
}

func newRepoCache(cacheDir, repo string) repoCache {
	folder := "models--" + strings.ReplaceAll(repo, "/", "--")
	return repoCache{repo: repo, root: filepath.Join(cacheDir, folder), locks: filepath.Join(cacheDir, ".locks", folder)}
}

func (c repoCache) blob(etag string) string { return filepath.Join(c.root, "blobs", etag) }
func (c repoCache) lock(etag string) string { return filepath.Join(c.locks, etag+".lock") }
func (c repoCache) snap(commit string) string {
	return filepath.Join(c.root, "snapshots", commit)
}

var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// snapshot returns the cached snapshot of rev when it holds everything the
// engine needs, and otherwise an error (wrapping ErrOffline) naming what is
// missing.
func (c repoCache) snapshot(rev string) (string, error) {
	commit := rev
	if b, err := os.ReadFile(filepath.Join(c.root, "refs", filepath.FromSlash(rev))); err == nil {
		commit = strings.TrimSpace(string(b))
	} else if !commitRE.MatchString(rev) {
		if _, err := os.Stat(c.root); err != nil {
			return "", fmt.Errorf("%w: %s is not in %s", ErrOffline, c.repo, filepath.Dir(c.root))
		}
		return "", fmt.Errorf("%w: %s has no refs/%s in %s: its download never finished", ErrOffline, c.repo, rev, c.root)
	}
	snap := c.snap(commit)
	if missing := missingFiles(snap); len(missing) > 0 {
		return "", fmt.Errorf("%w: %s@%s: %s lacks %s", ErrOffline, c.repo, rev, snap, strings.Join(missing, ", "))
	}
	return snap, nil
}

// missingFiles lists what the engine needs from a snapshot and cannot
// read there: config.json, the weights (every shard
// model.safetensors.index.json names, else model.safetensors), and any
// file whose blob is gone.
func missingFiles(snap string) []string {
	var missing []string
	need := []string{"config.json"}
	if b, err := os.ReadFile(filepath.Join(snap, indexFile)); err == nil {
		shards, err := indexShards(b)
		if err != nil {
			missing = append(missing, indexFile+" ("+err.Error()+")")
		}
		need = append(need, shards...)
	} else {
		need = append(need, "model.safetensors")
	}
	for _, n := range need {
		if _, err := os.Stat(filepath.Join(snap, n)); err != nil {
			missing = append(missing, n)
		}
	}
	filepath.WalkDir(snap, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		if _, err := os.Stat(p); err != nil {
			rel, _ := filepath.Rel(snap, p)
			missing = append(missing, filepath.ToSlash(rel)+" (its blob is gone)")
		}
		return nil
	})
	return missing
}

const indexFile = "model.safetensors.index.json"

// indexShards returns the files a safetensors index's weight_map names.
func indexShards(b []byte) ([]string, error) {
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, err
	}
	if len(idx.WeightMap) == 0 {
		return nil, errors.New("no weight_map")
	}
	set := map[string]bool{}
	for _, f := range idx.WeightMap {
		if f != path.Base(f) || strings.HasPrefix(f, ".") {
			return nil, fmt.Errorf("unsafe shard name %q", f)
		}
		set[f] = true
	}
	var shards []string
	for f := range set {
		shards = append(shards, f)
	}
	sort.Strings(shards)
	return shards, nil
}

var tmpSeq atomic.Int64

// tmpName is a name beside p that no other process or goroutine uses, for
// writing p whole and renaming it into place.
func tmpName(p string) string {
	return fmt.Sprintf("%s.tmp-%d-%d", p, os.Getpid(), tmpSeq.Add(1))
}

// link makes snap/name point at the blob: a relative symlink as
// huggingface_hub makes, else (Windows without the symlink privilege) a
// hard link, else a copy. The link is made under a temporary name and
// renamed, so concurrent downloaders never see half of one.
func (c repoCache) link(snap, name, etag string, size int64) error {
	dst := filepath.Join(snap, filepath.FromSlash(name))
	if fi, err := os.Stat(dst); err == nil && (size < 0 || fi.Size() == size) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	blob := c.blob(etag)
	rel, err := filepath.Rel(filepath.Dir(dst), blob)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	tmp := tmpName(dst)
	if err := os.Symlink(rel, tmp); err != nil {
		if err := os.Link(blob, tmp); err != nil {
			if err := copyFile(blob, tmp); err != nil {
				return fmt.Errorf("hub: link %s: %w", dst, err)
			}
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: link %s: %w", dst, err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

// writeRef records that rev resolved to commit; Download writes it last,
// once every file is in the snapshot.
func (c repoCache) writeRef(rev, commit string) error {
	p := filepath.Join(c.root, "refs", filepath.FromSlash(rev))
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	tmp := tmpName(p)
	if err := os.WriteFile(tmp, []byte(commit), 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}
