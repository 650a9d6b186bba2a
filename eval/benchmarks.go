package eval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/crucible-ml/crucible/progress"
	"github.com/crucible-ml/crucible/record"
)

// Benchmark is a downloadable evaluation set.
type Benchmark struct {
	Name string
	// File is the path inside the data folder, e.g. "gsm8k/test.jsonl"; the
	// layout is the same as ../shared/data.
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

// DefaultDataDir is where downloaded benchmarks live: $CRUCIBLE_DATA_DIR, else
// the user cache folder's crucible/data.
func DefaultDataDir() string {
	if d := os.Getenv("CRUCIBLE_DATA_DIR"); d != "" {
		return d
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "crucible", "data")
	}
	return filepath.Join(".crucible", "data")
}

// Get makes sure the benchmark's file is in dataDir, downloading it when
// missing, and returns its path. A present file is trusted only when its
// size matches; a downloaded one must match the pinned SHA-256.
func Get(ctx context.Context, client *http.Client, b Benchmark, dataDir string) (string, error) {
	dest := filepath.Join(dataDir, b.File)
	if st, err := os.Stat(dest); err == nil && (b.Size == 0 || st.Size() == b.Size) {
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
	if client == nil {
		client = http.DefaultClient
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	part := dest + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := client.Do(req)
	if err != nil {
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
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		have = 0
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// The partial file is already complete (or bigger): verify below.
	default:
		return fmt.Errorf("download %s: HTTP %s", url, resp.Status)
	}
	total := int64(-1)
	if resp.ContentLength >= 0 {
		total = have + resp.ContentLength
	}
	bar := progress.New("download "+filepath.Base(dest), total)
	bar.Add(have)
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		_, err = io.Copy(f, &countingReader{r: resp.Body, bar: bar})
	}
	bar.Finish()
	if err != nil {
		return fmt.Errorf("download %s: %w (rerun to resume)", url, err)
	}
	if wantSHA != "" {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, wantSHA) {
			f.Close()
			os.Remove(part)
			return fmt.Errorf("download %s: sha256 %s, want %s (the partial file was removed)", url, got, wantSHA)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(part, dest)
}

type countingReader struct {
	r   io.Reader
	bar *progress.Bar
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bar.Add(int64(n))
	return n, err
}

// Prepare maps a benchmark row to the fields Crucible's prompts and grader
// use, keeping every original field: `problem` (from `question`),
// `expected_answer` (from `answer`; GSM8K's text after "####" with thousands
// separators removed), `subject` (from MATH's `type`). A row that has no
// problem or no answer is an error.
func Prepare(row *record.Row) error {
	if !row.Has("problem") {
		q, ok := row.Text("question")
		if !ok {
			return errors.New("row has neither `problem` nor `question`")
		}
		row.Set("problem", q)
	}
	if !row.Has("expected_answer") {
		a, ok := row.Text("answer")
		if !ok {
			return errors.New("row has neither `expected_answer` nor `answer`")
		}
		if i := strings.LastIndex(a, "####"); i >= 0 {
			a = strings.ReplaceAll(strings.TrimSpace(a[i+4:]), ",", "")
		}
		row.Set("expected_answer", a)
	}
	if !row.Has("subject") {
		if t, ok := row.String("type"); ok {
			row.Set("subject", t)
		}
	}
	return nil
}
