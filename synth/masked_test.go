package synth

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/record"
)

var maskedInput = []string{
	// The answer 19 is not in the problem.
	`{"id":"g1","problem":"Sam has 4 boxes with 6 pencils each and gives away 5. How many are left?","solution":"Sam has 4 * 6 = 24 pencils. After giving 5 away he has 24 - 5 = 19. The answer is \\boxed{19}.","expected_answer":"19"}`,
	// Every candidate leaks: the original solution is kept.
	`{"id":"g2","problem":"What is 3 + 4?","solution":"3 + 4 = 7, so the answer is \\boxed{7}.","expected_answer":"7"}`,
	// Only candidates outside the length window: the closest one.
	`{"id":"g3","problem":"What is 2 * 5?","reference_solution":"Multiply: 2 * 5 = 10. The answer is \\boxed{10}."}`,
	// Failed requests: written once a rerun has every candidate.
	`{"id":"g4","problem":"fail","solution":"x"}`,
}

func maskedScript(keys map[int64]record.Key) func(chatReq) reply {
	return func(r chatReq) reply {
		k := keys[r.Seed]
		switch k.ID {
		case "g1":
			return reply{text: []string{
				"Sam has 4 * 6 = M pencils. After giving 5 away he has M - 5 = 19 pencils.",             // leaks 19
				"Sam has 4 * 6 = M pencils. After giving 5 away he has M - 5 = N, and N is the answer.", // best
				"Sam has 4 * 6 = M (that is 2 * 12) pencils; giving 5 leaves M - 5 = N, the answer.",    // more digits
				"N.", // too short
			}[k.Sample]}
		case "g2":
			return reply{text: "3 + 4 = \\boxed{7}."}
		case "g3":
			return reply{text: []string{"M.", "Multiply the two given numbers; call the product M. That product M is exactly what the question asks for, so M is the answer we want here at the end."}[k.Sample%2]}
		}
		return reply{status: http.StatusBadRequest}
	}
}

func TestMaskedSolutions(t *testing.T) {
	keys := bySample([]string{"g1", "g2", "g3", "g4"}, 4, 0)
	s := newScripted(t, maskedScript(keys))
	in := writeJSONL(t, maskedInput...)
	out := filepath.Join(t.TempDir(), "masked.jsonl")
	run := func() (*Report, error) {
		return MaskedSolutions(context.Background(), MaskedOptions{
			Common: Common{Backend: s.backend()}, Input: in, Output: out, N: 4,
		})
	}
	rep, err := run()
	if err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want 3 (g4 pending)", len(rows))
	}
	tests := []struct {
		id, source, text, candidates string
		sample                       int64
	}{
		{"g1#0", MaskedChosen, "Sam has 4 * 6 = M pencils. After giving 5 away he has M - 5 = N, and N is the answer.", "3/4", 1},
		{"g2#0", MaskedOriginal, "3 + 4 = 7, so the answer is \\boxed{7}.", "0/4", -1},
		{"g3#0", MaskedAnyLen, "M.", "4/4", 0},
	}
	for _, tt := range tests {
		r := rows[tt.id]
		if got := str(t, r, "masked_solution_source"); got != tt.source {
			t.Errorf("%s: source %q, want %q", tt.id, got, tt.source)
		}
		if got := str(t, r, "reference_masked_solution"); got != tt.text {
			t.Errorf("%s: masked %q, want %q", tt.id, got, tt.text)
		}
		if got := str(t, r, "masked_candidates"); got != tt.candidates {
			t.Errorf("%s: candidates %q, want %q", tt.id, got, tt.candidates)
		}
		if s, ok := r.Int("masked_sample"); tt.sample >= 0 && (!ok || s != tt.sample) {
			t.Errorf("%s: sample %d, want %d", tt.id, s, tt.sample)
		}
		if r.Has("generation") || r.Has("sample") {
			t.Errorf("%s: candidate fields left on the problem row", tt.id)
		}
	}
	if rep.Counts["problems_pending"] != 1 {
		t.Errorf("pending %d, want 1", rep.Counts["problems_pending"])
	}
	checkResume(t, s, run)
}

func TestMaskedInterrupted(t *testing.T) {
	keys := bySample([]string{"g1", "g2", "g3", "g4"}, 4, 0)
	in := writeJSONL(t, maskedInput...)
	checkInterrupted(t, maskedScript(keys), 6, []string{"m.jsonl"},
		func(ctx context.Context, be backend.Backend, dir string) error {
			_, err := MaskedSolutions(ctx, MaskedOptions{Common: Common{Backend: be, Concurrency: 2},
				Input: in, Output: filepath.Join(dir, "m.jsonl"), N: 4})
			return err
		})
}

// The hint prompt renders a masked row for generate.
func TestMaskedHintPrompt(t *testing.T) {
	p, err := Prompt("masked/hint")
	if err != nil {
		t.Fatal(err)
	}
	src, err := PromptSource("masked/hint")
	if err != nil || !strings.Contains(string(src), "reference_masked_solution") {
		t.Fatalf("source: %v", err)
	}
	row := fieldMap{"problem": "What is 2+2?", "reference_masked_solution": "2 + 2 = M, so M is the answer."}
	msgs, err := p.Messages(row)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !strings.Contains(msgs[0].Content, `\boxed{}`) || !strings.Contains(msgs[1].Content, "2 + 2 = M") {
		t.Errorf("messages %+v", msgs)
	}
}
