package inspect

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeMillion writes n rows shaped like graded generate output (~700
// bytes each).
func writeMillion(b *testing.B, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(7, 7))
	words := strings.Fields("so we add the two numbers then multiply by three and divide the result which gives us the answer")
	var gen strings.Builder
	for i := range n {
		gen.Reset()
		for range 60 + r.IntN(40) {
			gen.WriteString(words[r.IntN(len(words))])
			gen.WriteByte(' ')
		}
		tokens := 100 + r.IntN(1900)
		correct := r.IntN(4) != 0
		fmt.Fprintf(w, `{"id":"p%d","problem":"What is %d times %d? Put the answer in \\boxed{}.","expected_answer":"%d","subject":"Algebra","level":"Level %d","sample":%d,"generation":"%s\\boxed{%d}","finish_reason":"stop","num_generated_tokens":%d,"predicted_answer":"%d","is_correct":%t,"grade_policy":"default"}`+"\n",
			i/4, i, i+1, i*(i+1), i%5+1, i%4, gen.String(), i, tokens, i, correct)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
}

func rssKB(field string) int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// BenchmarkRows1M opens a 1,000,000-row JSONL file in the rows browser
// over HTTP, as a person would, and reports (once, with -benchtime 1x):
// the first page with the index built (cold) and from the cached index
// (warm), a filtered page, a full-text page, a rare filter that reads the
// whole file, the last page, a sort, and the process's RSS.
//
//	go test ./inspect/ -run '^$' -bench Rows1M -benchtime 1x
//
// CRUCIBLE_BENCH_ROWS changes the row count.
func BenchmarkRows1M(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("CRUCIBLE_BENCH_ROWS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "rows.jsonl")
	writeMillion(b, path, n)
	fi, _ := os.Stat(path)
	cache := filepath.Join(dir, "cache")
	b.Logf("%d rows, %.0f MB", n, float64(fi.Size())/1e6)
	get := func(ts *httptest.Server, q string) time.Duration {
		start := time.Now()
		resp, err := http.Get(ts.URL + "/rows?f=0:&" + q)
		if err != nil {
			b.Fatal(err)
		}
		var body strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(body.String(), "rowlink") {
			b.Fatalf("%s: %d", q, resp.StatusCode)
		}
		return time.Since(start)
	}
	serve := func() *httptest.Server {
		s, err := New(Options{Roots: []string{path}, CacheDir: cache})
		if err != nil {
			b.Fatal(err)
		}
		return httptest.NewServer(s.Handler())
	}
	b.ResetTimer()
	for range b.N {
		os.RemoveAll(cache)
		ts := serve()
		cold := get(ts, "")
		ts.Close()
		ts = serve() // a new process would find the cached index
		warm := get(ts, "")
		filtered := get(ts, "where="+url.QueryEscape("is_correct == false && num_generated_tokens > 1500"))
		text := get(ts, "q=multiply+by+three+and+divide&o=0")
		rare := get(ts, "field=id&value=p"+strconv.Itoa(n/4-1))
		last := get(ts, "o="+strconv.Itoa(n-50))
		sorted := get(ts, "sort=num_generated_tokens&desc=1")
		ts.Close()
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(cold), "ms/first-page-cold")
		b.ReportMetric(ms(warm), "ms/first-page-warm")
		b.ReportMetric(ms(filtered), "ms/filtered-page")
		b.ReportMetric(ms(text), "ms/text-page")
		b.ReportMetric(ms(rare), "ms/rare-filter-full-scan")
		b.ReportMetric(ms(last), "ms/last-page")
		b.ReportMetric(ms(sorted), "ms/sorted-page")
		b.ReportMetric(float64(rssKB("VmRSS"))/1024, "MB-RSS")
		b.ReportMetric(float64(rssKB("VmHWM"))/1024, "MB-peak-RSS")
	}
}
