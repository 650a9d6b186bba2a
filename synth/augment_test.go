package synth

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/record"
)

// bySample maps request seeds to the (id, sample) they were derived from,
// so that a script can answer each sample differently.
func bySample(ids []string, samples int, base int64) map[int64]record.Key {
	m := map[int64]record.Key{}
	for _, id := range ids {
		for s := range samples {
			m[record.Seed(id, s, base)] = record.Key{ID: id, Sample: s}
		}
	}
	return m
}

var augmentSeeds = []string{
	`{"id":"m1","problem":"Find the sum of the roots of $x^2-5x+6=0$.","expected_answer":"5","problem_source":"math","level":"Level 2"}`,
	`{"id":"m2","problem":"How many positive divisors does 36 have?","expected_answer":"9","problem_source":"math"}`,
	`{"id":"bad","problem":"This one fails.","expected_answer":"0"}`,
}

// augmentScript answers sample 0 with a new problem, sample 1 with the seed
// with other numbers (a near-copy), sample 2 with a refusal and sample 3
// with sample 0's problem behind a label (a repeat). The seed "bad" gets a
// client error.
func augmentScript(keys map[int64]record.Key) func(chatReq) reply {
	return func(r chatReq) reply {
		k, ok := keys[r.Seed]
		if !ok {
			return reply{status: http.StatusBadRequest}
		}
		if k.ID == "bad" {
			return reply{status: http.StatusBadRequest}
		}
		seedProblem := r.last()[strings.LastIndex(r.last(), "Seed problem:\n")+len("Seed problem:\n"):]
		seedProblem = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(seedProblem), "New problem:"))
		fresh := fmt.Sprintf("A square garden of side %s metres is fenced; how long is the fence?", k.ID)
		switch k.Sample {
		case 0:
			return reply{text: fresh}
		case 1:
			return reply{text: strings.NewReplacer("5", "7", "6", "8", "36", "48").Replace(seedProblem)}
		case 2:
			return reply{text: "I'm sorry, I can't create new problems."}
		default:
			return reply{text: "**New problem:** " + fresh + "\n\nSolution: it is 4 times the side."}
		}
	}
}

func TestAugment(t *testing.T) {
	keys := bySample([]string{"m1", "m2", "bad"}, 4, 0)
	s := newScripted(t, augmentScript(keys))
	in := writeJSONL(t, augmentSeeds...)
	out := filepath.Join(t.TempDir(), "new.jsonl")
	run := func() (*Report, error) {
		return Augment(context.Background(), AugmentOptions{
			Common: Common{Backend: s.backend(), Concurrency: 3}, Input: in, Output: out, N: 4, Source: "math",
		})
	}
	rep, err := run()
	if err != nil {
		t.Fatal(err)
	}
	kept := readRows(t, out)
	if len(kept) != 2 {
		t.Fatalf("kept %d new problems, want 2: %v", len(kept), kept)
	}
	r := kept["m1-aug0#0"]
	if r == nil {
		t.Fatalf("m1-aug0 missing: %v", kept)
	}
	for k, want := range map[string]string{
		"problem":              "A square garden of side m1 metres is fenced; how long is the fence?",
		"problem_source":       "augmented_math",
		"seed_id":              "m1",
		"seed_problem":         "Find the sum of the roots of $x^2-5x+6=0$.",
		"seed_expected_answer": "5",
		"seed_problem_source":  "math",
		"level":                "Level 2",
	} {
		if got := str(t, r, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if r.Has("expected_answer") || r.Has("generation") {
		t.Errorf("a new problem must not carry the seed's answer or the raw generation: %s", r.AppendJSON(nil))
	}
	dropped := readRows(t, strings.TrimSuffix(out, ".jsonl")+".dropped.jsonl")
	reasons := map[string]string{}
	for k, r := range dropped {
		reasons[k] = strings.Fields(str(t, r, "dropped_reason"))[0]
	}
	want := map[string]string{
		"m1-aug1#0": "near-copy", "m1-aug2#0": "refusal", "m1-aug3#0": "repeats",
		"m2-aug1#0": "near-copy", "m2-aug2#0": "refusal", "m2-aug3#0": "repeats",
	}
	if fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("dropped %v, want %v", reasons, want)
	}
	if rep.Errors != 4 || rep.Counts["request_errors_pending"] != 4 {
		t.Errorf("errors %d, pending %d; want 4 and 4", rep.Errors, rep.Counts["request_errors_pending"])
	}
	checkResume(t, s, run)
}

func TestAugmentInterrupted(t *testing.T) {
	keys := bySample([]string{"m1", "m2", "bad"}, 4, 0)
	in := writeJSONL(t, augmentSeeds...)
	checkInterrupted(t, augmentScript(keys), 5, []string{"new.jsonl", "new.dropped.jsonl"},
		func(ctx context.Context, be backend.Backend, dir string) error {
			_, err := Augment(ctx, AugmentOptions{
				Common: Common{Backend: be, Concurrency: 2}, Input: in, Output: filepath.Join(dir, "new.jsonl"), N: 4,
			})
			return err
		})
}

func TestSimilarity(t *testing.T) {
	tests := []struct {
		a, b string
		mask bool
		lo   float64
		hi   float64
	}{
		{"How many divisors does 36 have?", "How many divisors does 36 have?", false, 1, 1},
		{"How many divisors does 36 have?", "how  many divisors does 36 HAVE?", false, 1, 1},
		{"How many divisors does 36 have?", "How many divisors does 48 have?", true, 1, 1},
		{"How many divisors does 36 have?", "How many divisors does 48 have?", false, 0.5, 0.9},
		{"How many divisors does 36 have?", "A train leaves at noon at 60 km/h.", false, 0, 0.1},
	}
	for _, tt := range tests {
		if s := similarity(tt.a, tt.b, tt.mask); s < tt.lo || s > tt.hi {
			t.Errorf("similarity(%q, %q, %v) = %.2f, want in [%.2f, %.2f]", tt.a, tt.b, tt.mask, s, tt.lo, tt.hi)
		}
	}
}
