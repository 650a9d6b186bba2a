package synth

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// Bad input stops a pipeline with an error naming the file and line.
func TestBadInputNamesFileAndLine(t *testing.T) {
	s := newScripted(t, func(chatReq) reply { return reply{text: "ok"} })
	tests := []struct {
		name string
		rows []string
		run  func(in, out string) error
		want string
	}{
		{"augment without problem", []string{`{"id":"a","problem":"p"}`, `{"id":"b","text":"no problem here"}`},
			func(in, out string) error {
				_, err := Augment(context.Background(), AugmentOptions{Common: Common{Backend: s.backend()}, Input: in, Output: out})
				return err
			}, "in.jsonl:2: row has neither `problem` nor `question`"},
		{"malformed json", []string{`{"id":"a","problem":"p"}`, `{"id":"b",`},
			func(in, out string) error {
				_, err := Augment(context.Background(), AugmentOptions{Common: Common{Backend: s.backend()}, Input: in, Output: out})
				return err
			}, "in.jsonl:2"},
		{"judge duplicate key", []string{`{"id":"a","expected_answer":"1","predicted_answer":"1"}`, `{"id":"a","expected_answer":"1","predicted_answer":"2"}`},
			func(in, out string) error {
				_, err := Judge(context.Background(), JudgeOptions{Common: Common{Backend: s.backend()}, Input: in, Output: out})
				return err
			}, "in.jsonl:2: duplicate row (id \"a\", sample 0)"},
		{"closed-qa without document", []string{`{"id":"d","body":"x"}`},
			func(in, out string) error {
				_, err := GeneratePrompts(context.Background(), PromptsOptions{Common: Common{Backend: s.backend()}, Kind: "closed-qa", Input: in, Output: out})
				return err
			}, "in.jsonl:1: closed-qa row has no `document` or `text` field"},
		{"unknown kind", []string{`{"id":"d"}`},
			func(in, out string) error {
				_, err := GeneratePrompts(context.Background(), PromptsOptions{Common: Common{Backend: s.backend()}, Kind: "poetry", Input: in, Output: out})
				return err
			}, `kind "poetry"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := writeJSONL(t, tt.rows...)
			err := tt.run(in, filepath.Join(t.TempDir(), "out.jsonl"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// A judge or reward row whose request failed is retried with RetryErrors.
func TestMapRowsRetryErrors(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	s := newScripted(t, func(r chatReq) reply {
		if fail.Load() {
			return reply{status: http.StatusServiceUnavailable}
		}
		return reply{text: "Judgement: Yes"}
	})
	in := writeJSONL(t, `{"id":"a","problem":"Colour?","expected_answer":"red","predicted_answer":"crimson"}`,
		`{"id":"b","problem":"Sum?","expected_answer":"2","predicted_answer":"2"}`)
	out := filepath.Join(t.TempDir(), "j.jsonl")
	run := func(retry bool) *Report {
		rep, err := Judge(context.Background(), JudgeOptions{Common: Common{Backend: s.backend(), RetryErrors: retry}, Input: in, Output: out})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := run(false); rep.Errors != 1 {
		t.Fatalf("errors %d, want 1", rep.Errors)
	}
	fail.Store(false)
	if rep := run(false); rep.Stages[0].Written != 0 {
		t.Errorf("without RetryErrors the failed row must stay as it is")
	}
	if rep := run(true); rep.Stages[0].Written != 1 || rep.Errors != 0 {
		t.Errorf("retry wrote %d rows with %d errors, want 1 and 0", rep.Stages[0].Written, rep.Errors)
	}
	rows := readRows(t, out)
	if rows["a#0"].Has("error") || str(t, rows["a#0"], "judged_by") != "llm" {
		t.Errorf("retried row: %s", rows["a#0"].AppendJSON(nil))
	}
}
