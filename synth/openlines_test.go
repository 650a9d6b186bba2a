package synth

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/backend"
)

var (
	aboutRE    = regexp.MustCompile(`about\s+"([^"]+)"`)
	openlineRE = regexp.MustCompile(`(?s)(?:asked an assistant|writing assignment):\n\n(.*?)\n\n`)
)

func promptsScript(r chatReq) reply {
	p := r.last()
	topic := ""
	if m := aboutRE.FindStringSubmatch(p); m != nil {
		topic = m[1]
	}
	switch {
	case strings.Contains(p, "reworked versions") || strings.Contains(p, "more demanding versions"):
		ol := openlineRE.FindStringSubmatch(p)[1]
		if strings.Contains(ol, "refuse") {
			return reply{text: "I'm sorry, I won't do that."}
		}
		return reply{text: "1. " + ol + " Explain the history.\n2. " + ol + " Answer in 100 words."}
	case strings.Contains(p, "curious person"):
		switch topic {
		case "Food":
			return reply{text: "1. What is food?\n2. Why do we eat?"}
		case "Travel":
			return reply{text: `["Where to go?", "How to pack?", "When to refuse?"]`}
		case "Boom":
			return reply{status: http.StatusBadRequest}
		}
	case strings.Contains(p, "writing assignments"):
		kind := regexp.MustCompile(`asking for a (.+?) about`).FindStringSubmatch(strings.ReplaceAll(p, "\n", " "))[1]
		return reply{text: "1. Write a " + kind + " about " + topic + " for children.\n2. Write a " + kind + " about " + topic + " for experts."}
	case strings.Contains(p, "Read this text:"):
		return reply{text: "Sure:\n1. Summarise the text.\n2. List the names in it.\n3. Rewrite it as a poem."}
	case strings.Contains(p, "math problems"):
		return reply{text: "- Compute 1 + 1 for " + topic + ".\n- Compute 2 + 2."}
	case strings.Contains(p, "programming tasks"):
		return reply{text: "1. Reverse a list of " + topic + " in Python."}
	}
	return reply{status: http.StatusBadRequest}
}

func TestGeneratePrompts(t *testing.T) {
	topics := writeJSONL(t, `{"id":"t1","topic":"Food","topic_level":"sub"}`, `{"id":"t2","topic":"Travel"}`, `{"id":"t3","topic":"Boom"}`)
	docs := writeJSONL(t, `{"id":"d1","text":"Ada and Bob went to Rome."}`)
	tests := []struct {
		name      string
		o         PromptsOptions
		rows      int
		wantID    string
		wantField map[string]string
	}{
		{"open-qa revised", PromptsOptions{Kind: "open-qa", Input: topics, N: 2, Revisions: 2}, 8, "t1-1-0",
			map[string]string{"prompt": "Why do we eat? Explain the history.", "openline": "Why do we eat?", "topic": "Food",
				"kind": "open-qa", "topic_level": "sub"}},
		{"open-qa unrevised", PromptsOptions{Kind: "open-qa", Input: topics, N: 2}, 5, "t2-2",
			map[string]string{"prompt": "When to refuse?", "openlines_count_mismatch": "asked for 2, got 3"}},
		{"writing", PromptsOptions{Kind: "writing", Input: topics, N: 2, Revisions: 1, DocTypes: []string{"Poem", "Blog post"}}, 24, "t1-blog-post-1-1",
			map[string]string{"prompt": "Write a Blog post about Food for experts. Answer in 100 words.", "text_material_type": "Blog post",
				"revisions_count_mismatch": "asked for 1, got 2"}},
		{"closed-qa", PromptsOptions{Kind: "closed-qa", Input: docs, N: 3}, 3, "d1-1",
			map[string]string{"prompt": "Ada and Bob went to Rome.\n\nList the names in it.", "instruction": "List the names in it."}},
		{"math with repeats", PromptsOptions{Kind: "math", Input: topics, N: 2}, 4, "t1-1", map[string]string{"prompt": "Compute 2 + 2."}},
		{"coding", PromptsOptions{Kind: "coding", Input: topics, N: 2}, 3, "t1-0",
			map[string]string{"prompt": "Reverse a list of Food in Python.", "openlines_count_mismatch": "asked for 2, got 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScripted(t, promptsScript)
			o := tt.o
			o.Common = Common{Backend: s.backend(), Concurrency: 4}
			o.Output = filepath.Join(t.TempDir(), "prompts.jsonl")
			run := func() (*Report, error) { return GeneratePrompts(context.Background(), o) }
			if _, err := run(); err != nil {
				t.Fatal(err)
			}
			rows := readRows(t, o.Output)
			if len(rows) != tt.rows {
				var ids []string
				for k := range rows {
					ids = append(ids, k)
				}
				t.Errorf("got %d prompts, want %d: %v", len(rows), tt.rows, ids)
			}
			r := rows[tt.wantID+"#0"]
			if r == nil {
				t.Fatalf("no row %s", tt.wantID)
			}
			for k, v := range tt.wantField {
				if got := str(t, r, k); got != v {
					t.Errorf("%s: %s = %q, want %q", tt.wantID, k, got, v)
				}
			}
			checkResume(t, s, run)
		})
	}
}

func TestGeneratePromptsInterrupted(t *testing.T) {
	topics := writeJSONL(t, `{"id":"t1","topic":"Food"}`, `{"id":"t2","topic":"Travel"}`, `{"id":"t3","topic":"Boom"}`)
	checkInterrupted(t, promptsScript, 4, []string{"p.jsonl", "p.jsonl.work/03-revisions.jsonl"},
		func(ctx context.Context, be backend.Backend, dir string) error {
			_, err := GeneratePrompts(ctx, PromptsOptions{Common: Common{Backend: be, Concurrency: 2},
				Kind: "open-qa", Input: topics, Output: filepath.Join(dir, "p.jsonl"), N: 2, Revisions: 2, Constraints: 2})
			return err
		})
}

func TestPromptsConstraintsAndInstructionJudge(t *testing.T) {
	s := newScripted(t, promptsScript)
	topics := writeJSONL(t, `{"id":"t1","topic":"Food"}`)
	dir := t.TempDir()
	out := filepath.Join(dir, "p.jsonl")
	_, err := GeneratePrompts(context.Background(), PromptsOptions{Common: Common{Backend: s.backend()},
		Kind: "math", Input: topics, Output: out, N: 2, Constraints: 2})
	if err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	var lines []string
	for _, r := range rows {
		var ids []string
		if err := r.Decode("instruction_id_list", &ids); err != nil || len(ids) == 0 {
			t.Fatalf("no instructions: %s", r.AppendJSON(nil))
		}
		base, p := str(t, r, "base_prompt"), str(t, r, "prompt")
		if !strings.HasPrefix(p, base+"\n\n") || len(p) <= len(base)+2 {
			t.Errorf("prompt %q does not extend base %q", p, base)
		}
		// A response that repeats the prompt and does nothing else, and an
		// empty one, are judged by the checkers.
		row := r.Clone()
		row.Set("generation", "")
		lines = append(lines, string(row.AppendJSON(nil)))
	}
	judged := filepath.Join(dir, "j.jsonl")
	_, err = Judge(context.Background(), JudgeOptions{Input: writeJSONL(t, lines...), Output: judged, Mode: JudgeInstructions})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readRows(t, judged) {
		var follow []bool
		if err := r.Decode("follow_instruction_list", &follow); err != nil {
			t.Fatal(err)
		}
		var ids []string
		r.Decode("instruction_id_list", &ids)
		if len(follow) != len(ids) {
			t.Errorf("follow list %v for %v", follow, ids)
		}
		all, _ := r.Bool("follow_all_instructions")
		ic, _ := r.Bool("is_correct")
		if all != ic {
			t.Errorf("is_correct differs from follow_all_instructions")
		}
	}
}

func TestConstraintsAllTurns(t *testing.T) {
	s := newScripted(t, promptsScript)
	out := filepath.Join(t.TempDir(), "p.jsonl")
	_, err := GeneratePrompts(context.Background(), PromptsOptions{Common: Common{Backend: s.backend()},
		Kind: "math", Input: writeJSONL(t, `{"id":"t1","topic":"Food"}`), Output: out, N: 2, Constraints: 1, ConstraintStyle: "all-turns"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readRows(t, out) {
		p := str(t, r, "prompt")
		if !strings.HasPrefix(p, "[BEGIN OF INSTRUCTION] ") || !strings.HasSuffix(p, "[END OF INSTRUCTION]\n\n"+str(t, r, "base_prompt")) ||
			str(t, r, "instruction_scope") != "all_turns" {
			t.Errorf("prompt %q", p)
		}
	}
	// Every assistant turn of a dialogue must follow an all-turns instruction.
	in := writeJSONL(t,
		`{"id":"a","instruction_id_list":["punctuation:no_comma"],"kwargs":[{}],"instruction_scope":"all_turns","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"hello there"},{"role":"user","content":"More"},{"role":"assistant","content":"well, no"}],"generation":"well, no"}`,
		`{"id":"b","instruction_id_list":["punctuation:no_comma"],"kwargs":[{}],"instruction_scope":"all_turns","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"hello there"},{"role":"user","content":"More"},{"role":"assistant","content":"fine"}],"generation":"fine"}`,
		`{"id":"c","instruction_id_list":["punctuation:no_comma","language:response_language"],"kwargs":[{},{"language":"fr"}],"messages":[{"role":"assistant","content":"a, b"}],"generation":"fine"}`,
	)
	judged := filepath.Join(t.TempDir(), "j.jsonl")
	if _, err := Judge(context.Background(), JudgeOptions{Input: in, Output: judged, Mode: JudgeInstructions}); err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, judged)
	for key, want := range map[string]bool{"a#0": false, "b#0": true, "c#0": true} {
		if got, _ := rows[key].Bool("follow_all_instructions"); got != want {
			t.Errorf("%s: follow_all_instructions %v, want %v", key, got, want)
		}
	}
	if !rows["c#0"].Has("unverified_instructions") {
		t.Errorf("an instruction that cannot be checked should be listed")
	}
}
