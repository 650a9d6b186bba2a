// Package data knows the benchmark sets Crucible evaluates on and
// decontaminates against (GSM8K, MATH, MATH-500): where each comes from and
// its pinned SHA-256, whether it is in the data folder, how to download it,
// and how its rows map to Crucible's field names (Prepare). Evaluation,
// curation and pipelines find benchmark files through it.
package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/crucible-ml/crucible/internal/download"
	"github.com/crucible-ml/crucible/progress"
)

// Benchmark is a downloadable evaluation set.
type Benchmark struct {
	Name string
	// File is the path inside the data folder, e.g. "gsm8k/test.jsonl".
	File string
	// URL is the public source: the file itself, or the archive Convert
	// reads. Mirrors are other addresses of the same content, tried in turn.
	URL     string
	Mirrors []string
	// SHA256 and Size pin the exact bytes of File: for a converted
	// benchmark the converted JSONL (its content), not the source archive.
	SHA256 string
	Size   int64
	// Convert, when set, writes File's JSONL from the archive downloaded
	// from URL (kept in the data folder's .sources/ until every benchmark
	// converted from it is present).
	Convert func(archive string, w io.Writer) error
	// Source tells where the file comes from, for `data list`.
	Source string
}

// The MATH benchmarks are converted from the original release: a tar of one
// JSON file per problem, MATH/{train,test}/<subject>/<n>.json, with the
// fields problem, level, type and solution (see convertMATH for the rule).
// The primary source is the tar the MATH authors publish, linked from
// https://github.com/hendrycks/math ("Download the MATH dataset here"); the
// mirror is a GitHub snapshot that commits the same unmodified per-problem
// files under src/agents/datasets/data/math/ (a .tar.gz of the repository at
// the commit the pins were made from). Either converts to the pinned JSONL.
var (
	mathURL     = "https://people.eecs.berkeley.edu/~hendrycks/MATH.tar"
	mathMirrors = []string{"https://github.com/aiwaves-cn/agents/archive/e8c4e3c2d19739d3dff59e577d1c97090cc15f59.tar.gz"}
)

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
		URL:    mathURL, Mirrors: mathMirrors, Convert: convertMATH("test"),
		Source: "MATH test (5000 problems, MIT), converted from the per-problem files of the MATH release",
	},
	{
		Name: "math-train", File: "math/train.jsonl", Size: 7005123,
		SHA256: "04062877d9915a767d971d2583652f2810dcb603dfe2f5ab6b01e0ecea941a08",
		URL:    mathURL, Mirrors: mathMirrors, Convert: convertMATH("train"),
		Source: "MATH train (7500 problems, MIT), converted from the per-problem files of the MATH release",
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

// Status is what the data folder holds for a benchmark, by the one rule
// that `data list`, `data get`, eval and curate accept a file with: it is a
// regular file with the pinned size and SHA-256.
type Status struct {
	Path string // where the file is expected
	OK   bool
	// State is "present", "missing" or "not accepted".
	State string
	// Reason says why the file is not accepted and what to do; "" when OK.
	Reason string
}

// Status checks the benchmark's file in dir.
func (b Benchmark) Status(dir string) Status {
	s := Status{Path: b.Path(dir), State: "not accepted"}
	fi, err := os.Stat(s.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.State, s.Reason = "missing", fmt.Sprintf("%s does not exist: run `crucible data get %s`", s.Path, b.Name)
		return s
	case err != nil:
		s.Reason = err.Error()
		return s
	case !fi.Mode().IsRegular():
		s.Reason = fmt.Sprintf("%s is not a regular file", s.Path)
		return s
	}
	redo := fmt.Sprintf(": it is not the pinned file; remove it and run `crucible data get %s`, or pass it to eval as --benchmark %s to use it as it is", b.Name, s.Path)
	if b.Size > 0 && fi.Size() != b.Size {
		s.Reason = fmt.Sprintf("%s has %d bytes, want %d%s", s.Path, fi.Size(), b.Size, redo)
		return s
	}
	if b.SHA256 != "" {
		got, err := fileSHA256(s.Path)
		if err != nil {
			s.Reason = err.Error()
			return s
		}
		if !strings.EqualFold(got, b.SHA256) {
			s.Reason = fmt.Sprintf("%s has sha256 %s, want %s%s", s.Path, got, b.SHA256, redo)
			return s
		}
	}
	s.OK, s.State = true, "present"
	return s
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Get makes sure the benchmark's file is in dir, downloading (and, for a
// converted benchmark, converting) it when missing, and returns its path.
// A file that is there but not accepted (see Status) is an error that says
// why: it is never overwritten.
func Get(ctx context.Context, client *http.Client, b Benchmark, dir string) (string, error) {
	st := b.Status(dir)
	switch {
	case st.OK:
		return st.Path, nil
	case st.State != "missing":
		return "", fmt.Errorf("benchmark %s: %s", b.Name, st.Reason)
	case b.URL == "":
		return "", fmt.Errorf("benchmark %s: %s is missing; %s", b.Name, st.Path, b.Source)
	case b.Convert != nil:
		if err := getConverted(ctx, client, b, dir); err != nil {
			return "", fmt.Errorf("benchmark %s: %w", b.Name, err)
		}
		return st.Path, nil
	}
	if err := Download(ctx, client, b.URL, st.Path, b.SHA256); err != nil {
		return "", fmt.Errorf("benchmark %s: %w", b.Name, err)
	}
	return st.Path, nil
}

// Download fetches url into dest through dest+".part", resuming a partial
// download with a Range request, showing progress, and checking the SHA-256
// (when wantSHA is set) before the file takes its final name. Concurrent
// downloads of one dest fetch it once.
func Download(ctx context.Context, client *http.Client, url, dest, wantSHA string) error {
	bar := progress.New("download "+filepath.Base(dest), -1)
	var shown int64
	err := download.File(ctx, url, dest, download.Options{
		Client: client,
		// Concurrent runs (Slurm array tasks) take turns; the lock files
		// stay out of sight in .locks beside the file.
		Lock:   filepath.Join(filepath.Dir(dest), ".locks", filepath.Base(dest)+".lock"),
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
