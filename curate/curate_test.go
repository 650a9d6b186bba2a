package curate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/record"
)

func sharedData(t testing.TB) string {
	dir := filepath.Join("..", "..", "shared", "data")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("../shared/data missing in CI")
		}
		t.Skip("../shared/data not present")
	}
	return dir
}

func readRows(t testing.TB, path string, n int) []*record.Row {
	in, err := record.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var rows []*record.Row
	for in.Next() && (n <= 0 || len(rows) < n) {
		rows = append(rows, in.Row())
	}
	return rows
}

func row(t testing.TB, kv ...any) *record.Row {
	r := &record.Row{}
	for i := 0; i < len(kv); i += 2 {
		r.Set(kv[i].(string), kv[i+1])
	}
	return r
}

var finalRE = regexp.MustCompile(`#### (.*)$`)

// paraphrase inserts a filler word between all words: every 13-gram
// breaks, the problem stays the same.
func paraphrase(s string) string {
	w := strings.Fields(s)
	var out []string
	for i, x := range w {
		if i > 0 {
			out = append(out, "really")
		}
		out = append(out, x)
	}
	return strings.Join(out, " ")
}

func TestConstructedSet(t *testing.T) {
	data := sharedData(t)
	train := readRows(t, filepath.Join(data, "gsm8k", "train.jsonl"), 400)
	test := readRows(t, filepath.Join(data, "gsm8k", "test.jsonl"), 20)
	m500 := readRows(t, filepath.Join(data, "math", "math500.jsonl"), 20)

	type prob struct{ q, a, n string }
	var probs []prob
	for _, r := range train {
		q, _ := r.String("question")
		a, _ := r.String("answer")
		if len(a) < 250 || len(a) > 700 {
			continue
		}
		probs = append(probs, prob{q, a, strings.TrimSpace(finalRE.FindStringSubmatch(a)[1])})
	}
	const P = 24
	if len(probs) < 3*P+10 {
		t.Fatalf("only %d usable problems", len(probs))
	}
	sol := func(i, s int) string { // solution s of problem i: distinct texts
		text := probs[i].a
		if s > 0 {
			text += "\nAnother way to see it:\n" + probs[P+(i*2+s)%(2*P)].a
		}
		return text + "\nThe answer is \\boxed{" + probs[i].n + "}."
	}
	var rows []*record.Row
	add := func(id, q, solution string, correct bool, extra ...any) {
		r := row(t, append([]any{"id", id, "problem", q, "generation", solution, "is_correct", correct, "problem_source", "gsm8k"}, extra...)...)
		rows = append(rows, r)
	}
	for i := range P {
		for s := range 3 {
			add(fmt.Sprintf("p%d", i), probs[i].q, sol(i, s), true)
		}
		add(fmt.Sprintf("p%d", i), probs[i].q, "The answer is \\boxed{-1}. "+strings.Repeat("wrong ", 50), false)
	}
	want := map[string]int{"correct": P}
	fresh := func(k int) string { // a solution unlike any other in the set
		return probs[3*P+k].a + "\nThe answer is \\boxed{" + probs[3*P+k].n + "}."
	}
	// Planted rows, each to be removed by exactly one step.
	add("p0", probs[0].q, strings.ToUpper(sol(0, 0))+"  \n", true) // exact duplicate (case, spacing)
	want["dedup_exact"] = 1
	near := sol(1, 1)
	near = strings.Replace(near, "Another way", "A second way", 1)
	add("p1", probs[1].q, near, true) // near-duplicate
	want["dedup_minhash"] = 1
	add("p2", probs[2].q, strings.Repeat("I am not sure what to do here. ", 10), true, "predicted_answer", nil)
	want["no_answer"] = 1
	add("p3", probs[3].q, sol(3, 0)+"\nSo \\boxed{"+probs[3].n+"} or maybe \\boxed{0}.", true)
	want["multi_boxed"] = 1
	add("p4", probs[4].q, "Let us compute.\n<llm-code>\nprint(1+1)\n"+sol(4, 0), true)
	want["broken_code"] = 1
	add("p5", probs[5].q, "Easy: \\boxed{"+probs[5].n+"}.", true)
	want["solution_chars"] = 1
	add("p6", probs[6].q, strings.Repeat(probs[6].a+"\n", 12)+"So \\boxed{"+probs[6].n+"}.", true)
	want["solution_chars"]++
	tq, _ := test[3].String("question")
	add("leak1", tq, fresh(0), true, "problem_source", "synthetic") // benchmark problem verbatim
	add("leak1", tq, fresh(1), true, "problem_source", "synthetic")
	ta, _ := test[7].String("answer")
	add("p9", probs[9].q, "We recall a similar problem.\n"+ta+"\n"+fresh(2), true) // leaked benchmark solution
	want["decontaminate_ngram"] = 3
	mq, _ := m500[4].String("problem")
	add("para", paraphrase(mq), fresh(3), true, "problem_source", "synthetic") // paraphrased benchmark problem
	add("para", paraphrase(mq), fresh(4), true, "problem_source", "synthetic")
	want["decontaminate_llm"] = 2

	// A scripted judge: two problems are the same when they are equal once
	// the paraphrase's filler is taken out.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		c := req.Messages[len(req.Messages)-1].Content
		a := c[strings.Index(c, "Problem 1:\n")+11 : strings.Index(c, "\n\nProblem 2:")]
		b := c[strings.Index(c, "Problem 2:\n")+11 : strings.Index(c, "\n\nReply with")]
		clean := func(s string) string {
			return strings.Join(strings.Fields(strings.ReplaceAll(s, " really ", " ")), " ")
		}
		verdict := "False"
		if clean(a) == clean(b) {
			verdict = "True"
		}
		fmt.Fprintf(w, `{"choices":[{"message":{"content":%q},"finish_reason":"stop"}]}`, verdict)
	}))
	defer srv.Close()
	be, _ := openai.New(openai.Options{BaseURLs: []string{srv.URL}, Model: "judge"})

	cfg := `
steps:
  - filter: correct
  - filter: no_answer
  - filter: multi_boxed
  - filter: broken_code
  - filter: {field: solution, min_chars: 200, max_chars: 3000}
  - dedup: {method: exact, field: solution, scope: problem}
  - dedup: {method: minhash, field: solution, scope: global}
  - decontaminate: {method: ngram, benchmarks: [gsm8k, math500], fields: [problem, solution]}
  - decontaminate: {method: llm, benchmarks: [math500], top_k: 3}
  - downsample: {n: 40, per_problem: 2}
`
	p, err := ParsePipeline([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDataset(append([]*record.Row(nil), rows...))
	total := len(rows)
	cache := t.TempDir()
	if err := p.Run(context.Background(), d, Env{Backend: be, DataDir: data, CacheDir: cache, Concurrency: 8}); err != nil {
		t.Fatal(err)
	}
	// Downsampling: P problems minus the decontaminated p9... every
	// remaining problem has 3 correct solutions; the cap takes 2 each, and
	// the fair round-robin stops at 40.
	want["downsample"] = (total - sum(want)) - 40
	got := map[string]int{}
	prev := total
	for _, f := range d.Funnel {
		if f.In != prev || f.In-f.Removed != f.Out {
			t.Errorf("funnel does not add up at %+v (previous out %d)", f, prev)
		}
		prev = f.Out
		got[f.Step] += f.Removed
	}
	for step, n := range want {
		if got[step] != n {
			t.Errorf("%s removed %d rows, want %d", step, got[step], n)
			for _, r := range d.Removed {
				if by, _ := r.String("removed_by"); by == step {
					why, _ := r.String("removed_reason")
					t.Logf("  %s: %s", r.ID(), why)
				}
			}
		}
	}
	if len(d.Rows) != 40 || len(d.Removed)+len(d.Rows) != total {
		t.Errorf("kept %d, removed %d, of %d", len(d.Rows), len(d.Removed), total)
	}
	perProblem := map[string]int{}
	for _, r := range d.Rows {
		perProblem[r.ID()]++
	}
	for id, n := range perProblem {
		if n > 2 {
			t.Errorf("%s kept %d solutions", id, n)
		}
	}
	for _, r := range d.Removed {
		if by, _ := r.String("removed_by"); strings.HasPrefix(by, "decontaminate") && !r.Has("contaminated_with") {
			t.Errorf("%s: no record of what it matched", r.ID())
		}
	}
	// A rerun asks the judge nothing new.
	before := calls.Load()
	d2 := NewDataset(readBack(t, rows))
	if err := p.Run(context.Background(), d2, Env{Backend: be, DataDir: data, CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != before || len(d2.Rows) != 40 {
		t.Errorf("rerun made %d new calls, kept %d", calls.Load()-before, len(d2.Rows))
	}
	rep := NewReport(d)
	if rep.RowsIn != total || rep.RowsOut != 40 || rep.BySource["synthetic"].Out != 0 {
		t.Errorf("report %+v", rep)
	}
	if !strings.Contains(rep.Markdown(), "| decontaminate_llm | ") {
		t.Error("markdown lacks the funnel")
	}
}

// readBack returns fresh copies of rows without the fields a run added.
func readBack(t *testing.T, rows []*record.Row) []*record.Row {
	var out []*record.Row
	for _, r := range rows {
		c := r.Clone()
		for _, k := range []string{"removed_by", "removed_reason", "contaminated_with"} {
			c.Delete(k)
		}
		out = append(out, c)
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

var _ = io.Discard
