package record

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func TestRowKeepsOrderAndBytes(t *testing.T) {
	in := `{"z": 1, "a": "x\u00e9", "m": [1, {"b": 2}], "n": null, "f": 1.50}`
	r, err := ParseRow([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	r.Set("generation", "a \"quoted\"\nline <b>")
	r.Set("z", 2)
	got := string(r.AppendJSON(nil))
	want := `{"z":2,"a":"x\u00e9","m":[1, {"b": 2}],"n":null,"f":1.50,"generation":"a \"quoted\"\nline <b>"}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if s, ok := r.String("a"); !ok || s != "xé" {
		t.Fatalf("String(a) = %q, %v", s, ok)
	}
	if s, _ := r.Text("f"); s != "1.50" {
		t.Fatalf("Text(f) = %q", s)
	}
	if s, _ := r.Text("n"); s != "None" {
		t.Fatalf("Text(n) = %q", s)
	}
}

func TestParseRowErrors(t *testing.T) {
	for _, bad := range []string{`[1]`, `{"a":1,}`, `{"a" 1}`, `{"a":tru}`, `{"a":1} x`, `{"a":"\x01"}`, `{"a":01}`, `{"a":"`, `{"a":1`, strings.Repeat("[", 20000)} {
		if _, err := ParseRow([]byte(bad)); err == nil {
			t.Errorf("ParseRow(%.30q) = nil error", bad)
		}
	}
}

func TestIDs(t *testing.T) {
	a, _ := ParseRow([]byte(`{"problem": "1+1", "x": [1,2]}`))
	b, _ := ParseRow([]byte(`{"x":[1, 2],"problem":"1+1"}`))
	c, _ := ParseRow([]byte(`{"problem": "1+2", "x": [1,2]}`))
	if a.ID() != b.ID() || a.ID() == c.ID() || !strings.HasPrefix(a.ID(), "h:") {
		t.Fatalf("ids %s %s %s", a.ID(), b.ID(), c.ID())
	}
	d, _ := ParseRow([]byte(`{"id": 17}`))
	e, _ := ParseRow([]byte(`{"id": "p-1"}`))
	if d.ID() != "17" || e.ID() != "p-1" {
		t.Fatalf("ids %s %s", d.ID(), e.ID())
	}
	if Seed("p-1", 0, 1) == Seed("p-1", 1, 1) || Seed("p-1", 0, 1) != Seed("p-1", 0, 1) || Seed("p-1", 0, 1) == Seed("p-1", 0, 2) {
		t.Fatal("seeds not derived from (id, sample, base)")
	}
}

func TestShardPartition(t *testing.T) {
	for _, bad := range []string{"3/3", "-1/2", "a/b", "1", "0/0"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
	shards := make([]Shard, 4)
	for i := range shards {
		shards[i], _ = ParseShard(strings.Join([]string{string(rune('0' + i)), "4"}, "/"))
	}
	counts := make([]int, 4)
	for i := 0; i < 4000; i++ {
		id := "row" + string(rune(i))
		n := 0
		for j, s := range shards {
			if s.Contains(id) {
				n++
				counts[j]++
			}
		}
		if n != 1 {
			t.Fatalf("id %q in %d shards", id, n)
		}
	}
	for _, c := range counts {
		if c < 800 {
			t.Fatalf("unbalanced shards %v", counts)
		}
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReaderErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "in.jsonl")
	write(t, p, "{\"a\":1}\n\n{\"a\":2}\n{\"a\":\n")
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.Next() {
		n++
	}
	if n != 2 || r.Err() == nil || !strings.Contains(r.Err().Error(), "in.jsonl:4:") {
		t.Fatalf("n=%d err=%v", n, r.Err())
	}
	if _, err := Open(filepath.Join(dir, "*.nothing")); err == nil {
		t.Fatal("empty glob accepted")
	}
	if _, err := Open(filepath.Join(dir, "missing.jsonl")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestReaderGlobAndParquet(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.jsonl"), "{\"a\":1}\n{\"a\":2}")
	type pq struct {
		Problem string   `parquet:"problem"`
		Level   int64    `parquet:"level"`
		Tags    []string `parquet:"tags,list"`
	}
	if err := parquet.WriteFile(filepath.Join(dir, "b.parquet"), []pq{{"p1", 3, []string{"x"}}, {"p2", 5, nil}}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for r.Next() {
		got = append(got, string(r.Row().AppendJSON(nil)))
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	want := []string{`{"a":1}`, `{"a":2}`, `{"problem":"p1","level":3,"tags":["x"]}`, `{"problem":"p2","level":5,"tags":[]}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q", got)
	}
	if n := CountRows(filepath.Join(dir, "*")); n != 4 {
		t.Fatalf("CountRows = %d", n)
	}
}

func TestWriterResumeRepairsTornLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.jsonl")
	cases := []struct {
		name, content string
		done          []Key
		wantPrefix    string
	}{
		{"torn", "{\"id\":\"a\",\"sample\":0}\n{\"id\":\"a\",\"sam", []Key{{"a", 0}}, "{\"id\":\"a\",\"sample\":0}\n"},
		{"complete-without-newline", "{\"id\":\"a\",\"sample\":0}\n{\"id\":\"a\",\"sample\":1}", []Key{{"a", 0}, {"a", 1}}, "{\"id\":\"a\",\"sample\":0}\n{\"id\":\"a\",\"sample\":1}\n"},
		{"garbage-last-line", "{\"id\":\"b\"}\n\x00\x00\x00\n", []Key{{"b", 0}}, "{\"id\":\"b\"}\n"},
		{"empty", "", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			write(t, p, c.content)
			w, err := Create(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range c.done {
				if !w.Done(k.ID, k.Sample) {
					t.Errorf("%v not done", k)
				}
			}
			if w.Existing() != len(c.done) {
				t.Errorf("existing = %d", w.Existing())
			}
			row, _ := ParseRow([]byte(`{"id":"z","sample":3}`))
			if err := w.Write(row); err != nil {
				t.Fatal(err)
			}
			if err := w.Write(row); err == nil {
				t.Error("duplicate write accepted")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(p)
			if want := c.wantPrefix + "{\"id\":\"z\",\"sample\":3}\n"; string(b) != want {
				t.Fatalf("file = %q, want %q", b, want)
			}
		})
	}
}

func TestWriterRefusesCorruptMiddle(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.jsonl")
	content := "{\"id\":\"a\"}\nnot json\n{\"id\":\"b\"}\n"
	write(t, p, content)
	if _, err := Create(p); err == nil || !strings.Contains(err.Error(), "out.jsonl:2") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != content {
		t.Fatal("corrupt output was modified")
	}
}

func TestWriterAddsID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.jsonl")
	w, _ := Create(p)
	row, _ := ParseRow([]byte(`{"problem":"x"}`))
	id := row.ID()
	w.Write(row)
	w.Close()
	w2, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if !w2.Done(id, 0) {
		t.Fatal("hash id not preserved across runs")
	}
}

func TestRetryErrorsDropsFailedRows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.jsonl")
	write(t, p, "{\"id\":\"a\"}\n{\"id\":\"b\",\"error\":\"timeout\"}\n{\"id\":\"c\"}\n{\"id\":\"d\"")
	w, err := CreateWith(p, CreateOptions{RetryErrors: true})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Done("a", 0) || w.Done("b", 0) || !w.Done("c", 0) || w.Done("d", 0) || w.Existing() != 2 {
		t.Fatal("wrong keys after dropping error rows")
	}
	w.Close()
	if b, _ := os.ReadFile(p); string(b) != "{\"id\":\"a\"}\n{\"id\":\"c\"}\n" {
		t.Fatalf("file %q", b)
	}
}

func TestWriterIsExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.jsonl")
	w, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(p); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second writer: %v", err)
	}
	w.Close()
	w2, err := Create(p)
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	w2.Close()
}

// FuzzString checks the fast string decoder against encoding/json.
func FuzzString(f *testing.F) {
	for _, s := range []string{`"a\nb"`, `"\u00e9\ud83d\ude00"`, `"\ud800x"`, `"\\\/\b\f\r\t\""`, `"\udc00\ud800"`, `"plain"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		row, err := ParseRow([]byte(`{"s":` + lit + `}`))
		if err != nil {
			return
		}
		got, ok := row.String("s")
		var want string
		if json.Unmarshal([]byte(lit), &want) != nil {
			return
		}
		if !ok || got != want {
			t.Fatalf("String(%s) = %q, %v; encoding/json says %q", lit, got, ok, want)
		}
	})
}
