package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFile(t *testing.T) {
	body := strings.Repeat("0123456789", 1000)
	sum := sha256.Sum256([]byte(body))
	good := hex.EncodeToString(sum[:])
	ranges := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", time.Time{}, strings.NewReader(body))
	})
	noRanges := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(body))
	})
	for _, tc := range []struct {
		name    string
		handler http.Handler
		partial string // what the partial file holds before
		size    int64
		sha     string
		wantErr any // nil, or a pointer to the error type wanted
		ranged  bool
	}{
		{name: "fresh", handler: ranges, sha: good},
		{name: "resume", handler: ranges, partial: body[:1234], sha: good, size: int64(len(body)), ranged: true},
		{name: "server ignores range", handler: noRanges, partial: body[:1234], sha: good, ranged: true},
		{name: "partial already complete", handler: ranges, partial: body, sha: good, size: int64(len(body)), ranged: true},
		{name: "partial longer than the file", handler: ranges, partial: body + "junk", sha: good, size: int64(len(body))},
		{name: "wrong checksum", handler: ranges, sha: strings.Repeat("0", 64), wantErr: new(*ChecksumError)},
		{name: "not found", handler: http.NotFoundHandler(), wantErr: new(*StatusError)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sawRange bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Range") != "" {
					sawRange = true
				}
				if r.Header.Get("X-Test") != "yes" {
					http.Error(w, "header not sent", http.StatusBadRequest)
					return
				}
				tc.handler.ServeHTTP(w, r)
			}))
			defer srv.Close()
			dest := filepath.Join(t.TempDir(), "sub", "f.bin")
			part := dest + ".part"
			if tc.partial != "" {
				os.MkdirAll(filepath.Dir(part), 0o755)
				os.WriteFile(part, []byte(tc.partial), 0o644)
			}
			var last int64
			err := File(context.Background(), srv.URL+"/f", dest, Options{
				Header: http.Header{"X-Test": {"yes"}}, Size: tc.size, SHA256: tc.sha,
				Progress: func(done, total int64) { last = done },
			})
			if tc.wantErr != nil {
				if err == nil || !errors.As(err, tc.wantErr) {
					t.Fatalf("err = %v, want %T", err, tc.wantErr)
				}
				if _, serr := os.Stat(dest); serr == nil {
					t.Fatal("a failed download took the final name")
				}
				if _, serr := os.Stat(part); serr == nil {
					t.Fatal("a failed download left a partial file")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dest)
			if string(got) != body {
				t.Fatalf("got %d bytes, want %d", len(got), len(body))
			}
			if _, err := os.Stat(part); err == nil {
				t.Fatal("the partial file was left behind")
			}
			if sawRange != tc.ranged {
				t.Fatalf("range request sent: %v, want %v", sawRange, tc.ranged)
			}
			if last != int64(len(body)) && tc.name != "partial already complete" {
				t.Fatalf("progress ended at %d", last)
			}
		})
	}
}

func TestInterruptedResumes(t *testing.T) {
	body := strings.Repeat("x", 4096)
	cut := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cut {
			cut = false
			w.Header().Set("Content-Length", "4096")
			w.Write([]byte(body[:1000]))
			return // the connection ends short of Content-Length
		}
		http.ServeContent(w, r, "f", time.Time{}, strings.NewReader(body))
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "f")
	var ie *InterruptedError
	if err := File(context.Background(), srv.URL, dest, Options{}); !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an InterruptedError", err)
	}
	if err := File(context.Background(), srv.URL, dest, Options{Size: 4096}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != body {
		t.Fatalf("got %d bytes", len(got))
	}
}
