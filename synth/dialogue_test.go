package synth

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crucible-ml/crucible/backend"
)

// dialogueScript plays the assistant (echoing the last user message) and
// the simulated user (a polite opening, then a question). The opening
// "quiet" makes the simulated user refuse; "down" fails on the assistant's
// second turn.
func dialogueScript(r chatReq) reply {
	p := r.last()
	if strings.Contains(p, "[conversation start]") {
		switch {
		case strings.Contains(p, "User: quiet"):
			return reply{text: "I'm sorry, I can't continue this."}
		case strings.Contains(p, "user's own voice: a follow-up that is demanding"):
			return reply{text: "User: \"Compare that with the alternatives, step by step.\""}
		default:
			n := strings.Count(p, "Assistant:")
			return reply{text: "Thank you, that helps a lot! Why is that true? (" + string(rune('0'+n)) + ")"}
		}
	}
	if strings.Contains(p, "down") && len(r.Messages) > 1 {
		return reply{status: http.StatusBadRequest}
	}
	if strings.HasPrefix(p, "Why") && strings.Contains(r.Messages[0].Content, "down") {
		return reply{status: http.StatusBadRequest}
	}
	return reply{text: "Answer to: " + p}
}

func TestDialogue(t *testing.T) {
	in := writeJSONL(t, `{"id":"a","prompt":"Tell me about tides."}`, `{"id":"q","prompt":"quiet"}`, `{"id":"d","prompt":"down"}`)
	s := newScripted(t, dialogueScript)
	out := filepath.Join(t.TempDir(), "dialogues.jsonl")
	run := func() (*Report, error) {
		return Dialogue(context.Background(), DialogueOptions{Common: Common{Backend: s.backend()},
			Input: in, Output: out, Turns: 3, System: "Be brief {really}."})
	}
	rep, err := run()
	if err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	var msgs []backend.Message
	if err := rows["a#0"].Decode("messages", &msgs); err != nil {
		t.Fatal(err)
	}
	want := []backend.Message{
		{Role: "system", Content: "Be brief {really}."},
		{Role: "user", Content: "Tell me about tides."},
		{Role: "assistant", Content: "Answer to: Tell me about tides."},
		{Role: "user", Content: "Why is that true? (1)"},
		{Role: "assistant", Content: "Answer to: Why is that true? (1)"},
		{Role: "user", Content: "Why is that true? (2)"},
		{Role: "assistant", Content: "Answer to: Why is that true? (2)"},
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d: %v", len(msgs), len(want), msgs)
	}
	for i := range want {
		if msgs[i] != want[i] {
			t.Errorf("message %d: %+v, want %+v", i, msgs[i], want[i])
		}
	}
	if g := str(t, rows["a#0"], "generation"); g != want[6].Content {
		t.Errorf("generation %q", g)
	}
	if str(t, rows["a#0"], "user_style") != "normal" || rows["a#0"].Has("dialogue_opening") {
		t.Errorf("bad fields: %s", rows["a#0"].AppendJSON(nil))
	}
	if !rows["q#0"].Has("dialogue_stopped") {
		t.Errorf("a refusing user should stop the dialogue: %s", rows["q#0"].AppendJSON(nil))
	}
	rows["q#0"].Decode("messages", &msgs)
	if len(msgs) != 3 {
		t.Errorf("stopped dialogue has %d messages, want 3", len(msgs))
	}
	if !rows["d#0"].Has("error") || rep.Errors != 1 {
		t.Errorf("the failed turn should be recorded as an error: %s", rows["d#0"].AppendJSON(nil))
	}
	checkResume(t, s, run)
}

func TestDialogueStyles(t *testing.T) {
	in := writeJSONL(t, `{"id":"a","problem":"Tell me about tides."}`)
	s := newScripted(t, dialogueScript)
	out := filepath.Join(t.TempDir(), "d.jsonl")
	_, err := Dialogue(context.Background(), DialogueOptions{Common: Common{Backend: s.backend()},
		Input: in, Output: out, Turns: 2, UserStyle: "complex"})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []backend.Message
	readRows(t, out)["a#0"].Decode("messages", &msgs)
	if len(msgs) != 4 || msgs[2].Content != "Compare that with the alternatives, step by step." {
		t.Errorf("complex user turn not cleaned: %+v", msgs)
	}
	if _, err := Dialogue(context.Background(), DialogueOptions{Common: Common{Backend: s.backend()},
		Input: in, Output: out + "2", UserStyle: "rude"}); err == nil {
		t.Errorf("an unknown style should be an error")
	}
}

func TestDialogueInterrupted(t *testing.T) {
	in := writeJSONL(t, `{"id":"a","prompt":"Tell me about tides."}`, `{"id":"b","prompt":"Moons?"}`,
		`{"id":"c","prompt":"Stars?"}`, `{"id":"q","prompt":"quiet"}`)
	checkInterrupted(t, dialogueScript, 5, []string{"d.jsonl"},
		func(ctx context.Context, be backend.Backend, dir string) error {
			_, err := Dialogue(ctx, DialogueOptions{Common: Common{Backend: be, Concurrency: 2},
				Input: in, Output: filepath.Join(dir, "d.jsonl"), Samples: 2, UserStyle: "mixed"})
			return err
		})
}

func TestCleanUserTurn(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Why?", "Why?"},
		{"User: Why?", "Why?"},
		{`"Why?"`, "Why?"},
		{"Thanks for the detail. Why?", "Why?"},
		{"That's really helpful! Can you go on?", "Can you go on?"},
		{"Thank you.", "Thank you."},
		{"Great Barrier Reef: how old is it?", "Great Barrier Reef: how old is it?"},
	}
	for _, tt := range tests {
		if got := cleanUserTurn(tt.in); got != tt.want {
			t.Errorf("cleanUserTurn(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
