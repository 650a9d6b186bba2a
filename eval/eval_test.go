package eval

import (
	"context"
	"encoding/json"

	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/data"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/solve"
)

// scriptedServer answers each request from a table keyed by its seed, the
// one value that tells (row, sample) apart.
func scriptedServer(t *testing.T, answers map[int64]string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Seed int64 `json:"seed"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		text, ok := answers[req.Seed]
		if !ok {
			t.Errorf("unexpected seed %d", req.Seed)
		}
		b, _ := json.Marshal(map[string]any{
			"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": text}, "finish_reason": "stop"}},
			"usage":   map[string]any{"prompt_tokens": 10, "completion_tokens": 7},
		})
		w.Write(b)
	}))
}

func runEval(t *testing.T, bench string, script map[string][]string, samples int, temp float64) map[string]any {
	t.Helper()
	answers := map[int64]string{}
	for id, outs := range script {
		for s, text := range outs {
			answers[record.Seed(id, s, 7)] = text
		}
	}
	srv := scriptedServer(t, answers)
	defer srv.Close()
	be, err := openai.New(openai.Options{BaseURLs: []string{srv.URL}, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := prompt.Load("math/cot")
	out := t.TempDir()
	res, err := Run(context.Background(), Options{
		Benchmark: bench, OutDir: out,
		Gen: solve.Options{Prompt: p, Samples: samples, Seed: 7, Backend: be, Concurrency: 8, Params: backend.Request{Temperature: temp}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Written != len(script)*samples {
		t.Fatalf("written %d", res.Stats.Written)
	}
	b, err := os.ReadFile(filepath.Join(out, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeLines(t *testing.T, lines ...string) string {
	p := filepath.Join(t.TempDir(), "bench.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func near(t *testing.T, m map[string]any, key string, want float64) {
	t.Helper()
	got, ok := m[key].(float64)
	if !ok || math.Abs(got-want) > 1e-6 {
		t.Errorf("%s = %v, want %v", key, m[key], want)
	}
}

func TestMetricsByHand(t *testing.T) {
	bench := writeLines(t,
		`{"id":"p1","problem":"a","expected_answer":"5","subject":"Algebra","level":"Level 1"}`,
		`{"id":"p2","problem":"b","expected_answer":"4","subject":"Algebra","level":"Level 2"}`,
		`{"id":"p3","problem":"c","expected_answer":"1/2","subject":"Geometry","level":"Level 2"}`,
		`{"id":"p4","problem":"d","expected_answer":"9","subject":"Geometry","level":"Level 2"}`,
	)
	box := func(s string) string { return "so the answer is $\\boxed{" + s + "}$." }
	script := map[string][]string{
		"p1": {box("5"), box("5.0"), box("7"), "I give up"},           // c=2, one missing answer
		"p2": {box("3"), box("4"), box("3"), box("\\frac{8}{2}")},     // c=2, a 2-2 tie at k=2 and k=4
		"p3": {"no box", "still none", "</think> nothing", "\\boxed"}, // no answers at all
		"p4": {box("9"), box("9"), box("9"), box("9")},                // c=4
	}
	m := runEval(t, bench, script, 4, 0.7)
	// Per problem (n=4): c = 2, 2, 0, 4.
	near(t, m, "num_problems", 4)
	near(t, m, "pass@1", (0.5+0.5+0+1)/4)
	near(t, m, "pass@2", (5.0/6+5.0/6+0+1)/4) // 1 - C(2,2)/C(4,2) = 5/6
	near(t, m, "pass@4", 3.0/4)
	near(t, m, "majority@1", (1+0+0+1)/4.0)
	near(t, m, "majority@2", (1+0.5+0+1)/4.0) // p2: 3 vs 4 tie -> half credit
	near(t, m, "majority@4", (1+0.5+0+1)/4.0) // p1: 5,5 beat 7; p2: 3,3 vs 4,4 tie
	// Runs (sample index) accuracy: .5, .75, .25, .5 -> mean .5, sd sqrt(.125/3).
	near(t, m, "pass@1[avg-of-4]", 0.5)
	near(t, m, "pass@1[avg-of-4]_std", math.Sqrt(0.125/3))
	near(t, m, "no_answer", 5.0/16)
	if _, ok := m["greedy"]; ok {
		t.Error("greedy reported for a sampled run")
	}
	sub := m["by_subject"].(map[string]any)["Geometry"].(map[string]any)
	near(t, sub, "num_problems", 2)
	near(t, sub, "pass@4", 0.5)
	lv := m["by_level"].(map[string]any)["2"].(map[string]any)
	near(t, lv, "num_problems", 3)
	near(t, lv, "majority@4", (0.5+0+1)/3)
}

func TestGreedyGSM8KFormat(t *testing.T) {
	bench := writeLines(t,
		`{"question":"q1","answer":"work\n#### 1,234"}`,
		`{"question":"q2","answer":"#### 7"}`,
		`{"question":"q3","answer":"#### -2"}`,
	)
	// ids are content hashes of the prepared rows
	ids := []string{}
	in, _ := record.Open(bench)
	for in.Next() {
		r := in.Row()
		data.Prepare(r)
		ids = append(ids, r.ID())
	}
	script := map[string][]string{
		ids[0]: {"The total is \\boxed{1234}."},
		ids[1]: {"#### 8"},
		ids[2]: {"no idea"},
	}
	m := runEval(t, bench, script, 1, 0)
	near(t, m, "greedy", 1.0/3)
	near(t, m, "pass@1", 1.0/3)
	near(t, m, "majority@1", 1.0/3)
	near(t, m, "no_answer", 1.0/3)
	near(t, m, "pass@1[avg-of-1]_std", 0)
}
