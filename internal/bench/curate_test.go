package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCurateScale(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		limit  int64
		global bool
	}{
		{"default limit", 0, false},
		{"small limit, global dedup", 4 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := CurateScale(context.Background(), CurateScaleOptions{Rows: 4000, Dir: dir, MemoryLimit: tc.limit, Global: tc.global})
			if err != nil {
				t.Fatal(err)
			}
			if res.OutputRows <= 0 || res.OutputRows >= res.Rows || res.InputBytes <= 0 || res.OutputBytes <= 0 {
				t.Fatalf("result %+v", res)
			}
			steps := map[string]bool{}
			for _, s := range res.Steps {
				steps[s.Step] = true
				if _, name, ok := strings.Cut(s.Step, " "); ok {
					steps[name] = true
				}
			}
			for _, want := range []string{"split", "1 aggregate", "7 dedup_minhash", "decontaminate_ngram", "downsample", "write"} {
				if !steps[want] {
					t.Errorf("no timing for %s in %+v", want, res.Steps)
				}
			}
			if tc.global && !steps["9 dedup_minhash decide"] {
				t.Errorf("global MinHash was not decided across partitions: %+v", res.Steps)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("files left in the bench folder: %v", left)
			}
			if _, err := os.Stat(filepath.Join(dir, "rows.jsonl")); !os.IsNotExist(err) {
				t.Errorf("input kept: %v", err)
			}
		})
	}
}
