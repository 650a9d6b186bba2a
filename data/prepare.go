package data

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/crucible-ml/crucible/record"
)

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

// Prepared returns a copy of the benchmark called name in folder out, with
// every row through Prepare, making it once: a copy with a manifest is
// reused. The benchmark comes from dataDir (downloaded when missing);
// version is recorded in the copy's manifest.
func Prepared(ctx context.Context, name, dataDir, out, version string) (string, error) {
	b, ok := Lookup(name)
	if !ok {
		return "", fmt.Errorf("data:%s: no such benchmark (have %s)", name, strings.Join(Names(), ", "))
	}
	dest := filepath.Join(out, name+".jsonl")
	if _, ok, _ := record.ReadManifest(dest); ok {
		return dest, nil
	}
	src, err := Get(ctx, nil, b, dataDir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	in, err := record.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	os.Remove(dest)
	w, err := record.Create(dest)
	if err != nil {
		return "", err
	}
	for in.Next() {
		row := in.Row()
		if err := Prepare(row); err != nil {
			f, l := in.Pos()
			w.Close()
			return "", fmt.Errorf("%s:%d: %w", f, l, err)
		}
		if err := w.Write(row); err != nil {
			w.Close()
			return "", err
		}
	}
	if err := in.Err(); err != nil {
		w.Close()
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return dest, record.WriteManifest(&record.Manifest{Output: dest, Command: "data " + name, Version: version, Rows: w.Written(), Written: w.Written()})
}
