package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/record"
)

func TestDownloadPinnedAndResumable(t *testing.T) {
	body := []byte(strings.Repeat("{\"question\":\"q\",\"answer\":\"#### 1\"}\n", 2000))
	sum := sha256.Sum256(body)
	var ranged atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranged.Add(1)
		}
		http.ServeContent(w, r, "x.jsonl", time.Time{}, strings.NewReader(string(body)))
	}))
	defer srv.Close()
	dir := t.TempDir()
	b := Benchmark{Name: "x", File: "x/test.jsonl", URL: srv.URL + "/x.jsonl", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body))}
	// A partial file from an interrupted download is resumed with a Range request.
	os.MkdirAll(filepath.Join(dir, "x"), 0o755)
	os.WriteFile(filepath.Join(dir, "x/test.jsonl.part"), body[:1000], 0o644)
	p, err := Get(context.Background(), nil, b, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != string(body) || ranged.Load() != 1 {
		t.Fatalf("resume failed: %d bytes, %d ranged", len(got), ranged.Load())
	}
	// A wrong checksum is refused and nothing is left behind.
	b.File, b.SHA256 = "y/test.jsonl", strings.Repeat("0", 64)
	if _, err := Get(context.Background(), nil, b, dir); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "y/test.jsonl")); err == nil {
		t.Fatal("a file with a bad checksum was kept")
	}
	// A benchmark without a source explains what to do.
	if _, err := Get(context.Background(), nil, Benchmark{Name: "math", File: "math/test.jsonl", Source: "place it"}, dir); err == nil || !strings.Contains(err.Error(), "place it") {
		t.Fatalf("err = %v", err)
	}
}

func TestSharedDataPrepares(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "data")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("../shared/data missing in CI")
		}
		t.Skip("../shared/data not present")
	}
	for _, b := range Benchmarks {
		p := filepath.Join(dir, b.File)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, f)
		f.Close()
		if got := hex.EncodeToString(h.Sum(nil)); got != b.SHA256 {
			t.Errorf("%s: sha256 %s, pinned %s", b.Name, got, b.SHA256)
		}
		in, _ := record.Open(p)
		n := 0
		for in.Next() {
			r := in.Row()
			if err := Prepare(r); err != nil {
				t.Fatalf("%s line %d: %v", b.Name, n+1, err)
			}
			if a, _ := r.String("expected_answer"); a == "" && b.Name != "math-train" {
				t.Fatalf("%s line %d: empty answer", b.Name, n+1)
			}
			n++
		}
		if in.Err() != nil {
			t.Fatal(in.Err())
		}
		t.Logf("%s: %d rows", b.Name, n)
	}

}
