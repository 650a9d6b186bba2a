package synth

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// User styles of Dialogue.
var UserStyles = []string{"normal", "complex", "concise"}

// DialogueOptions configure Dialogue.
type DialogueOptions struct {
	Common
	Input  string // rows with the opening user message (PromptField)
	Output string
	// PromptField names the opening message (default "prompt", else
	// "problem" or "question").
	PromptField string
	// Turns is the number of user turns, the opening one included (default
	// 3, as in Nemotron-4); a dialogue has 2*Turns messages.
	Turns int
	// Samples is the number of dialogues per input row (default 1).
	Samples int
	// UserStyle is normal, complex, concise, or mixed (one of the three per
	// dialogue, chosen from its seed). Default normal.
	UserStyle string
	// System is an optional system message for the assistant turns.
	System string
	// UserPrompt replaces the built-in dialogue/user-STYLE prompt (field
	// `conversation_history`).
	UserPrompt *prompt.Prompt
}

// Dialogue has the model play both sides of a conversation: it answers the
// opening message as the assistant, then writes the user's next message
// from the conversation so far (in the chosen style), and so on for Turns
// user turns. Each output row is the input row plus messages ([{role,
// content}]), generation (the last assistant message), user_style, and
// dialogue_stopped when the simulated user gave nothing usable and the
// dialogue ended early. Simulated user messages lose quotes, a "User:"
// label and a polite opening sentence ("Thank you, ..."). Unlike
// NeMo-Curator, the history shown to the user simulator separates turns by
// a blank line.
func Dialogue(ctx context.Context, o DialogueOptions) (*Report, error) {
	start := time.Now()
	if o.Backend == nil {
		return nil, errNoBackend
	}
	if o.Input == "" || o.Output == "" {
		return nil, fmt.Errorf("dialogue: input and output are required")
	}
	if o.Completion {
		return nil, fmt.Errorf("dialogue: needs chat messages; it cannot run on /v1/completions")
	}
	if o.Turns <= 0 {
		o.Turns = 3
	}
	if o.UserStyle == "" {
		o.UserStyle = "normal"
	}
	styles := map[string]*prompt.Prompt{}
	switch o.UserStyle {
	case "normal", "complex", "concise", "mixed":
	default:
		return nil, fmt.Errorf("dialogue: user style %q: want normal, complex, concise or mixed", o.UserStyle)
	}
	for _, s := range UserStyles {
		styles[s] = orDefault(o.UserPrompt, "dialogue/user-"+s)
	}
	field := o.PromptField
	opening, err := prompt.New("synth/dialogue-opening", prompt.Config{System: escapeBraces(o.System), User: "{dialogue_opening}"})
	if err != nil {
		return nil, err
	}
	rep := newReport(o.Output)
	err = o.run(ctx, rep, genStep{
		name: "dialogue", input: o.Input, output: o.Output, samples: o.Samples, prompt: opening,
		prepare: func(r *record.Row) error {
			for _, f := range []string{field, "prompt", "problem", "question"} {
				if t, ok := r.Text(f); f != "" && ok {
					r.Set("dialogue_opening", t)
					return nil
				}
			}
			return fmt.Errorf("row has no opening message (`prompt`, `problem` or `question`)")
		},
		generate: func(ctx context.Context, req *backend.Request, out *record.Row) (*backend.Response, error) {
			style := o.UserStyle
			if style == "mixed" {
				style = UserStyles[req.Seed%int64(len(UserStyles))]
			}
			return o.converse(ctx, req, out, style, styles[style])
		},
		finish: func(r *record.Row) { r.Delete("dialogue_opening") },
	})
	if err != nil {
		return rep, err
	}
	st := rep.lastStage()
	return rep, o.finish(rep, start, StageStats{Existing: st.Existing, Written: st.Written})
}

func (o *DialogueOptions) converse(ctx context.Context, req *backend.Request, out *record.Row, style string, userPrompt *prompt.Prompt) (*backend.Response, error) {
	var system []backend.Message
	history := req.Messages
	if len(history) > 0 && history[0].Role == "system" {
		system, history = history[:1], history[1:]
	}
	history = append([]backend.Message(nil), history...)
	var last *backend.Response
	tokens := 0
	stopped := ""
	for t := range o.Turns {
		if t > 0 {
			um, err := userPrompt.Messages(fieldMap{"conversation_history": renderHistory(history)})
			if err != nil {
				return nil, fmt.Errorf("user prompt: %w", err)
			}
			ureq := *req
			ureq.Messages = um
			ureq.Seed = turnSeed(req.Seed, 2*t)
			resp, err := o.Backend.Generate(ctx, &ureq)
			if err != nil {
				return nil, fmt.Errorf("turn %d (user): %w", t+1, err)
			}
			tokens += resp.CompletionTokens
			u := cleanUserTurn(resp.Text)
			if u == "" || isRefusal(u) {
				stopped = fmt.Sprintf("the simulated user gave no usable message at turn %d", t+1)
				break
			}
			history = append(history, backend.Message{Role: "user", Content: u})
		}
		areq := *req
		if t > 0 {
			areq.Messages = append(append([]backend.Message(nil), system...), history...)
			areq.Seed = turnSeed(req.Seed, 2*t+1)
		}
		resp, err := o.Backend.Generate(ctx, &areq)
		if err != nil {
			return nil, fmt.Errorf("turn %d (assistant): %w", t+1, err)
		}
		tokens += resp.CompletionTokens
		history = append(history, backend.Message{Role: "assistant", Content: resp.Text})
		last = resp
	}
	out.Set("messages", append(append([]backend.Message(nil), system...), history...))
	out.Set("user_style", style)
	if stopped != "" {
		out.Set("dialogue_stopped", stopped)
	}
	return &backend.Response{Text: last.Text, FinishReason: last.FinishReason, CompletionTokens: tokens}, nil
}

// turnSeed derives the seed of the i-th request of a dialogue.
func turnSeed(seed int64, i int) int64 {
	return (seed*1000003 + int64(i)*7919) & 0x7fffffff
}

func renderHistory(msgs []backend.Message) string {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		role := "User"
		if m.Role == "assistant" {
			role = "Assistant"
		}
		parts[i] = role + ": " + m.Content
	}
	return strings.Join(parts, "\n\n")
}

var (
	userLabelRE = regexp.MustCompile(`(?i)^\s*(\*\*)?user(\*\*)?\s*:\s*`)
	politeRE    = regexp.MustCompile(`(?i)^(thank you|thanks|great|that's (very |really )?(helpful|great|interesting|useful)|i appreciate|sure|perfect|awesome)\b[^.!?]*[.!?]\s+`)
)

// cleanUserTurn strips a simulated user message of a "User:" label,
// surrounding quotes and a polite opening sentence.
func cleanUserTurn(s string) string {
	s = strings.TrimSpace(s)
	s = userLabelRE.ReplaceAllString(s, "")
	s = cleanItem(s)
	if loc := politeRE.FindStringIndex(s); loc != nil && loc[1] < len(s) {
		s = s[loc[1]:]
	}
	return strings.TrimSpace(s)
}

func escapeBraces(s string) string {
	return strings.NewReplacer("{", "{{", "}", "}}").Replace(s)
}
