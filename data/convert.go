package data

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// getConverted makes b's file from its source archive: the archive is
// downloaded (resumably) into dir/.sources, converted into a temporary file
// while its SHA-256 is taken, and the file takes its name only when that
// matches the pin. The URL and then each mirror are tried in turn.
func getConverted(ctx context.Context, client *http.Client, b Benchmark, dir string) error {
	var errs []error
	for _, u := range append([]string{b.URL}, b.Mirrors...) {
		err := convertFrom(ctx, client, b, u, dir)
		if err == nil {
			removeSources(b, dir)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// sourcePath is where the archive at url is kept: one name per URL, so that
// a partial download of one source is never resumed from another.
func sourcePath(dir, url string) string {
	h := sha256.Sum256([]byte(url))
	return filepath.Join(dir, ".sources", hex.EncodeToString(h[:6])+"-"+path.Base(url))
}

func convertFrom(ctx context.Context, client *http.Client, b Benchmark, url, dir string) error {
	archive := sourcePath(dir, url)
	if err := Download(ctx, client, url, archive, ""); err != nil {
		return err
	}
	dest := b.Path(dir)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dest, os.Getpid())
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	h := sha256.New()
	w := bufio.NewWriter(io.MultiWriter(f, h))
	err = b.Convert(archive, w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(archive) // not the archive expected: do not convert it again
		return fmt.Errorf("convert %s: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, b.SHA256) {
		os.Remove(archive)
		return fmt.Errorf("%s converts to sha256 %s, want %s: that source's content is not the pinned data", url, got, b.SHA256)
	}
	return os.Rename(tmp, dest)
}

// removeSources deletes b's downloaded archives (and their partial and
// lock files) once every benchmark converted from the same source is
// present: nothing downloads them any more.
func removeSources(b Benchmark, dir string) {
	for _, o := range Benchmarks {
		if o.Convert != nil && o.URL == b.URL && o.Name != b.Name && !o.Status(dir).OK {
			return
		}
	}
	for _, u := range append([]string{b.URL}, b.Mirrors...) {
		p := sourcePath(dir, u)
		for _, f := range []string{p, p + ".part", filepath.Join(filepath.Dir(p), ".locks", filepath.Base(p)+".lock")} {
			os.Remove(f)
		}
	}
	os.Remove(filepath.Join(dir, ".sources", ".locks")) // when empty
	os.Remove(filepath.Join(dir, ".sources"))
}
