package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// genFile writes n rows of varied length (some multi-byte, one over the
// reader's 1 MiB buffer) and returns the lines.
func genFile(t testing.TB, path string, n int, seed uint64) []string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	lines := make([]string, n)
	var b strings.Builder
	for i := range n {
		gen := strings.Repeat("wörd ", r.IntN(40))
		if i == n/2 {
			gen = strings.Repeat("x", 1<<20+123)
		}
		row := map[string]any{"id": fmt.Sprintf("p%d", i/4), "sample": i % 4, "generation": gen + fmt.Sprintf(" Needle%d", i%97),
			"score": r.IntN(1000), "is_correct": i%3 == 0}
		j, _ := json.Marshal(row)
		lines[i] = string(j)
		b.Write(j)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return lines
}

func checkLines(t *testing.T, ix *Index, want []string) {
	t.Helper()
	if ix.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", ix.Len(), len(want))
	}
	for _, i := range []int{0, 1, len(want) / 2, len(want) - 1} {
		got, err := ix.Line(i)
		if err != nil || string(got) != want[i] {
			t.Fatalf("Line(%d) = %.60q, %v; want %.60q", i, got, err, want[i])
		}
	}
	n := 0
	err := ix.Scan(3, func(i int, line []byte) bool {
		if string(line) != want[i] {
			t.Fatalf("Scan line %d = %.60q, want %.60q", i, line, want[i])
		}
		n++
		return true
	})
	if err != nil || n != len(want)-3 {
		t.Fatalf("Scan read %d lines, %v", n, err)
	}
}

func TestIndex(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	p := filepath.Join(dir, "rows.jsonl")
	want := genFile(t, p, 2000, 1)
	ix, err := OpenIndex(p, cache)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, ix, want)

	// A second open reads the cached offsets: corrupt the file's middle
	// without changing size or time and the cached index still says where
	// lines start (proof it was not rebuilt).
	ents, _ := os.ReadDir(cache)
	if len(ents) != 1 {
		t.Fatalf("cache holds %d files", len(ents))
	}
	ix2, err := OpenIndex(p, cache)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, ix2, want)
	if ix2.gen != 0 {
		t.Errorf("a current cached index was rebuilt")
	}

	// Appending: a torn last line is not a row until its newline comes.
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"id":"new1"}` + "\n" + `{"id":"ne`)
	f.Close()
	if err := ix.Refresh(); err != nil {
		t.Fatal(err)
	}
	want = append(want, `{"id":"new1"}`)
	checkLines(t, ix, want)
	f, _ = os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`w2"}` + "\n")
	f.Close()
	ix.Refresh()
	want = append(want, `{"id":"new2"}`)
	checkLines(t, ix, want)

	// A reopened index extends the cached one.
	ix3, err := OpenIndex(p, cache)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, ix3, want)

	// A rewritten, shorter file is indexed again.
	want = genFile(t, p, 50, 2)
	ix.Refresh()
	checkLines(t, ix, want)
	ix4, _ := OpenIndex(p, cache)
	checkLines(t, ix4, want)

	// An empty file has no rows.
	os.WriteFile(p, nil, 0o644)
	ix.Refresh()
	if ix.Len() != 0 {
		t.Errorf("empty file: %d rows", ix.Len())
	}
}

func TestQueries(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rows.jsonl")
	lines := genFile(t, p, 3000, 3)
	ix, err := OpenIndex(p, "")
	if err != nil {
		t.Fatal(err)
	}
	tb := NewTable(ix)
	type row struct {
		ID         string `json:"id"`
		Sample     int    `json:"sample"`
		Generation string `json:"generation"`
		Score      int    `json:"score"`
		IsCorrect  bool   `json:"is_correct"`
	}
	rows := make([]row, len(lines))
	for i, l := range lines {
		json.Unmarshal([]byte(l), &rows[i])
	}
	brute := func(keep func(row) bool) []int {
		var out []int
		for i, r := range rows {
			if keep(r) {
				out = append(out, i)
			}
		}
		return out
	}
	all := func(q Query, limit int) ([]int, int) {
		var got []int
		total := 0
		for off := 0; ; off += limit {
			pg, err := tb.Page(context.Background(), q, off, limit)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range pg.Items {
				got = append(got, it.N)
			}
			total = pg.Total
			if !pg.More {
				break
			}
		}
		return got, total
	}
	for name, c := range map[string]struct {
		q    Query
		keep func(row) bool
	}{
		"all":   {Query{}, func(row) bool { return true }},
		"text":  {Query{Text: "needle7 "}, func(r row) bool { return strings.Contains(strings.ToLower(r.Generation), "needle7 ") }},
		"utf8":  {Query{Text: "WÖRD wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd"}, func(r row) bool { return strings.Count(r.Generation, "wörd") >= 38 }},
		"field": {Query{Field: "id", Value: "p17"}, func(r row) bool { return r.ID == "p17" }},
		"bool":  {Query{Field: "is_correct", Value: "True"}, func(r row) bool { return r.IsCorrect }},
		"where": {Query{Where: "score > 500 && sample == 2"}, func(r row) bool { return r.Score > 500 && r.Sample == 2 }},
		"both":  {Query{Where: "is_correct", Text: "needle1"}, func(r row) bool { return r.IsCorrect && strings.Contains(r.Generation, "Needle1") }},
		"none":  {Query{Where: "score < 0"}, func(row) bool { return false }},
	} {
		want := brute(c.keep)
		for _, limit := range []int{7, 100} {
			got, total := all(c.q, limit)
			if !slices.Equal(got, want) || total != len(want) {
				t.Errorf("%s (pages of %d): %d rows (total %d), want %d", name, limit, len(got), total, len(want))
			}
		}
	}
	// Sorting (text compares as text: p99 after p749): by score, descending, ties in file order; missing last.
	got, _ := all(Query{Sort: "score", Desc: true, Where: "sample == 1"}, 50)
	want := brute(func(r row) bool { return r.Sample == 1 })
	slices.SortStableFunc(want, func(a, b int) int { return rows[b].Score - rows[a].Score })
	if !slices.Equal(got, want) {
		t.Errorf("sorted: got %v…, want %v…", got[:5], want[:5])
	}
	got, _ = all(Query{Sort: "missing_field"}, 1000)
	if len(got) != len(rows) || got[0] != 0 {
		t.Errorf("sort by a missing field: %d rows", len(got))
	}
	got, _ = all(Query{Sort: "id"}, 1000)
	if rows[got[0]].ID != "p0" || rows[got[len(got)-1]].ID != "p99" {
		t.Errorf("sort by text: %s … %s", rows[got[0]].ID, rows[got[len(got)-1]].ID)
	}
	if _, err := tb.Page(context.Background(), Query{Where: "score >"}, 0, 10); err == nil {
		t.Errorf("a bad expression is not an error")
	}
	// A filtered first page reads only as far as it needs.
	pg, _ := tb.Page(context.Background(), Query{Where: "sample == 0"}, 0, 10)
	if pg.Total != -1 || !pg.More || len(pg.Items) != 10 {
		t.Errorf("first filtered page: total %d, more %v, %d rows", pg.Total, pg.More, len(pg.Items))
	}
}
