// Package data knows the benchmark sets Crucible evaluates on and
// decontaminates against (GSM8K, MATH, MATH-500): where each comes from and
// its pinned SHA-256, whether it is in the data folder, how to download it,
// and how its rows map to Crucible's field names (Prepare). Evaluation,
// curation and pipelines find benchmark files through it.
package data

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"github.com/crucible-ml/crucible/internal/download"
	"github.com/crucible-ml/crucible/progress"
)

// Benchmark is a downloadable evaluation set.
type Benchmark struct {
	Name string
	// File is the path inside the data folder, e.g. "gsm8k/test.jsonl".
	File string
	// URL is the public source; SHA256 and Size pin its exact bytes.
	URL    string
	SHA256 string
	Size   int64
	// Source tells where the file comes from, for `data list`.
	Source string
}

// Benchmarks lists the known benchmarks.
var Benchmarks = []Benchmark{
	{
		Name: "gsm8k", File: "gsm8k/test.jsonl", Size: 749738,
		URL:    "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/test.jsonl",
		SHA256: "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
		Source: "openai/grade-school-math test split (1319 problems, MIT)",
	},
	{
		Name: "gsm8k-train", File: "gsm8k/train.jsonl", Size: 4166206,
		URL:    "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/train.jsonl",
		SHA256: "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
		Source: "openai/grade-school-math train split (7473 problems, MIT)",
	},
	{
		Name: "math500", File: "math/math500.jsonl", Size: 446564,
		URL:    "https://media.githubusercontent.com/media/openai/prm800k/7ecc794703b2877f63226f2477a49b34f9b25163/prm800k/math_splits/test.jsonl",
		SHA256: "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
		Source: "openai/prm800k MATH-500 (500 problems, MIT)",
	},
	{
		Name: "math", File: "math/test.jsonl", Size: 4401889,
		SHA256: "653ab79003b23c03b7459befc1b72ae3b2d6fa87a74fc49327dbb34e5bb19f09",
		Source: "MATH test (5000 problems, MIT); published only as a tarball of per-problem files, so it is not downloaded: place the JSONL in the data folder",
	},
	{
		Name: "math-train", File: "math/train.jsonl", Size: 7005123,
		SHA256: "04062877d9915a767d971d2583652f2810dcb603dfe2f5ab6b01e0ecea941a08",
		Source: "MATH train (7500 problems, MIT); not downloaded: place the JSONL in the data folder",
	},
}

// Lookup finds a benchmark by name.
func Lookup(name string) (Benchmark, bool) {
	for _, b := range Benchmarks {
		if b.Name == name {
			return b, true
		}
	}
	return Benchmark{}, false
}

// Names lists the benchmark names.
func Names() []string {
	var n []string
	for _, b := range Benchmarks {
		n = append(n, b.Name)
	}
	sort.Strings(n)
	return n
}

// DefaultDir is where downloaded benchmarks live: $CRUCIBLE_DATA_DIR, else
// the user cache folder's crucible/data.
func DefaultDir() string {
	if d := os.Getenv("CRUCIBLE_DATA_DIR"); d != "" {
		return d
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "crucible", "data")
	}
	return filepath.Join(".crucible", "data")
}

// Path is where the benchmark's file lives in dir.
func (b Benchmark) Path(dir string) string { return filepath.Join(dir, b.File) }

// Present reports whether the benchmark's file is in dir, by the rule Get
// trusts a file with: it exists and has the pinned size.
func (b Benchmark) Present(dir string) bool {
	st, err := os.Stat(b.Path(dir))
	return err == nil && (b.Size == 0 || st.Size() == b.Size)
}

// Get makes sure the benchmark's file is in dir, downloading it when
// missing, and returns its path. A present file is trusted only when its
// size matches; a downloaded one must match the pinned SHA-256.
func Get(ctx context.Context, client *http.Client, b Benchmark, dir string) (string, error) {
	dest := b.Path(dir)
	if b.Present(dir) {
		return dest, nil
	}
	if b.URL == "" {
		return "", fmt.Errorf("benchmark %s: %s is missing; %s", b.Name, dest, b.Source)
	}
	if err := Download(ctx, client, b.URL, dest, b.SHA256); err != nil {
		return "", fmt.Errorf("benchmark %s: %w", b.Name, err)
	}
	return dest, nil
}

// Download fetches url into dest through dest+".part", resuming a partial
// download with a Range request, showing progress, and checking the SHA-256
// (when wantSHA is set) before the file takes its final name.
func Download(ctx context.Context, client *http.Client, url, dest, wantSHA string) error {
	bar := progress.New("download "+filepath.Base(dest), -1)
	var shown int64
	err := download.File(ctx, url, dest, download.Options{
		Client: client,
		SHA256: wantSHA,
		Progress: func(done, total int64) {
			if shown == 0 && total >= 0 {
				bar.SetTotal(total)
			}
			bar.Add(done - shown)
			shown = done
		},
	})
	bar.Finish()
	return err
}
