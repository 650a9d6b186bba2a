// Package download fetches one URL into one file, resumably: bytes arrive in
// a partial file next to the destination, an interrupted download continues
// from where it stopped with a Range request, the size and SHA-256 are
// checked when known, and only a complete, verified file takes the final
// name. Both the benchmark data (package data) and the Hugging Face hub
// client (package engine/hub) download through it.
//
// Concurrent downloads of one file (goroutines, processes, Slurm array tasks
// on a shared file system) take turns on a lock file beside it (flock on
// Unix, LockFileEx on Windows): one writes the partial file, the others wait
// and then find the file done. Where the file system has no locks, each
// process writes a partial file of its own and the first complete, verified
// one takes the final name.
package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Options describe what is expected of a download.
type Options struct {
	// Client sends the request (default http.DefaultClient).
	Client *http.Client
	// Header is added to the request (authorization, user agent).
	Header http.Header
	// Part is the partial file (default dest + ".part").
	Part string
	// Lock is the lock file concurrent downloads of dest take turns on
	// (default dest + ".lock"). It stays in place afterwards: removing a lock
	// file that another process may be opening would break the exclusion.
	Lock string
	// Logger tells when a download waits for another one (default
	// slog.Default()).
	Logger *slog.Logger
	// Size is the expected size in bytes; -1 or 0 when unknown.
	Size int64
	// SHA256 is the expected hex digest; "" skips the check.
	SHA256 string
	// Progress, when set, is called as bytes arrive with the bytes the file
	// holds so far and the total (-1 when unknown).
	Progress func(done, total int64)
}

// StatusError is a response the download cannot use.
type StatusError struct {
	URL    string
	Code   int
	Status string // e.g. "404 Not Found"
	// Header is the response's header (the Hugging Face hub explains its
	// refusals in X-Error-Code and X-Error-Message).
	Header http.Header
}

func (e *StatusError) Error() string { return fmt.Sprintf("download %s: HTTP %s", e.URL, e.Status) }

// InterruptedError is a download cut before its end (a dropped connection,
// or the context cancelled: then Err is the context's error); a rerun
// resumes it.
type InterruptedError struct {
	URL string
	Err error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("download %s: %v (rerun to resume)", e.URL, e.Err)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// ChecksumError is a complete download whose bytes are not the expected
// ones; the partial file has been removed so that the next try starts over.
type ChecksumError struct {
	URL       string
	Got, Want string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("download %s: sha256 %s, want %s (the partial file was removed)", e.URL, e.Got, e.Want)
}

// File downloads url into dest. A partial file left by an earlier attempt is
// resumed; a server that ignores the range restarts it from the beginning.
// A dest that already exists with the expected size (any size when the size
// is unknown) is done: another downloader finished it while this one waited.
// Cancelling ctx stops the download and leaves the partial file to resume.
func File(ctx context.Context, url, dest string, o Options) error {
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Part == "" {
		o.Part = dest + ".part"
	}
	if o.Lock == "" {
		o.Lock = dest + ".lock"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Size == 0 {
		o.Size = -1
	}
	release, locked, err := acquire(ctx, o.Lock, o.Logger)
	if err != nil {
		return err
	}
	defer release()
	if !locked {
		// No lock on this file system: a partial file of this process only,
		// which nobody else can resume.
		o.Part = fmt.Sprintf("%s.%d.%d", o.Part, os.Getpid(), partSeq.Add(1))
		defer os.Remove(o.Part)
	}
	if fi, err := os.Stat(dest); err == nil && fi.Mode().IsRegular() && (o.Size < 0 || fi.Size() == o.Size) {
		return nil
	}
	return fetch(ctx, url, dest, o)
}

var partSeq atomic.Int64

// acquire takes the lock file, waiting (and polling, as Python's filelock
// does) while another download holds it. locked is false where the file
// system offers no lock.
func acquire(ctx context.Context, path string, log *slog.Logger) (release func(), locked bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("download: lock: %w", err)
	}
	wait, told := 2*time.Millisecond, false
	for {
		busy, err := tryLock(f)
		if err != nil {
			f.Close()
			log.Warn("download: the file system offers no lock; downloading into a partial file of this process",
				"lock", path, "err", err)
			return func() {}, false, nil
		}
		if !busy {
			return func() { unlock(f); f.Close() }, true, nil
		}
		if !told {
			log.Info("download: waiting for another download of the same file", "lock", path)
			told = true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, false, &InterruptedError{URL: path, Err: ctx.Err()}
		case <-t.C:
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// fetch downloads url into o.Part, resuming it, checks it and renames it to
// dest. The caller holds the lock.
func fetch(ctx context.Context, url, dest string, o Options) error {
	if err := os.MkdirAll(filepath.Dir(o.Part), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(o.Part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if o.Size >= 0 && have > o.Size {
		// More than the whole file: not a prefix of it.
		if err := f.Truncate(0); err != nil {
			return err
		}
		have = 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for k, v := range o.Header {
		req.Header[k] = v
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return &InterruptedError{URL: url, Err: ctx.Err()}
		}
		return fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
	case resp.StatusCode == http.StatusOK:
		// The server ignored the range (or there was none): start over.
		if err := f.Truncate(0); err != nil {
			return err
		}
		have = 0
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0 && (o.Size < 0 || have == o.Size):
		// The partial file is already complete: verify below.
	default:
		if have == 0 {
			f.Close()
			os.Remove(o.Part) // nothing to resume
		}
		return &StatusError{URL: url, Code: resp.StatusCode, Status: resp.Status, Header: resp.Header}
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		total := o.Size
		if total < 0 && resp.ContentLength >= 0 {
			total = have + resp.ContentLength
		}
		var w io.Writer = f
		if o.Progress != nil {
			o.Progress(have, total)
			w = &progressWriter{w: f, done: have, total: total, fn: o.Progress}
		}
		if _, err := io.Copy(w, resp.Body); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return &InterruptedError{URL: url, Err: err}
		}
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if o.Size >= 0 && size != o.Size {
		return fmt.Errorf("download %s: %d bytes, want %d", url, size, o.Size)
	}
	if o.SHA256 != "" {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, o.SHA256) {
			f.Close()
			os.Remove(o.Part) // corrupt: do not resume from it
			return &ChecksumError{URL: url, Got: got, Want: o.SHA256}
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(o.Part, dest)
}

type progressWriter struct {
	w           io.Writer
	done, total int64
	fn          func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.fn(p.done, p.total)
	return n, err
}
