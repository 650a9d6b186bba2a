// Package chat renders conversations into model prompts with the model's
// own Jinja chat template (tokenizer_config.json's chat_template or
// chat_template.jinja), as Hugging Face's apply_chat_template does.
//
//	tmpl, err := chat.Compile(src)
//	prompt, err := tmpl.Render([]chat.Message{{Role: "user", Content: "2+3?"}}, chat.Options{AddGenerationPrompt: true})
package chat

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ardanlabs/jinja"
)

// Message is one chat turn.
type Message struct {
	Role    string
	Content string
}

// Options are the variables a template sees besides the messages.
type Options struct {
	AddGenerationPrompt bool
	BOSToken, EOSToken  string
	// Extra holds further template variables (e.g. "tools",
	// "enable_thinking"); they override nothing above.
	Extra map[string]any
}

// ErrNoTemplate marks a tokenizer without a chat template.
var ErrNoTemplate = errors.New("chat: the model has no chat template")

// Template is a compiled chat template, safe for concurrent use.
type Template struct {
	t *jinja.Template
}

// Compile parses a chat template.
func Compile(src string) (*Template, error) {
	if src == "" {
		return nil, ErrNoTemplate
	}
	t, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	return &Template{t: t}, nil
}

// Render renders messages into the prompt text.
func (t *Template) Render(msgs []Message, opt Options) (string, error) {
	ms := make([]any, len(msgs))
	for i, m := range msgs {
		ms[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	data := map[string]any{}
	for k, v := range opt.Extra {
		data[k] = v
	}
	data["messages"] = ms
	data["add_generation_prompt"] = opt.AddGenerationPrompt
	data["bos_token"] = opt.BOSToken
	data["eos_token"] = opt.EOSToken
	out, err := t.t.Render(data)
	if err != nil {
		return "", fmt.Errorf("render chat template: %w", err)
	}
	return out, nil
}

// EndOfTurn returns the text the template puts after an assistant message
// (e.g. "<|im_end|>\n" for Qwen, "<|eot_id|>" for Llama 3): what a training
// example must end with so that the model learns to stop. It renders a user
// and an assistant turn and takes what follows the assistant's content; ok is
// false when the template does not render the content verbatim.
func (t *Template) EndOfTurn(opt Options) (text string, ok bool, err error) {
	const mark = "\x00crucible end of turn\x00"
	opt.AddGenerationPrompt = false
	s, err := t.Render([]Message{{Role: "user", Content: "u"}, {Role: "assistant", Content: mark}}, opt)
	if err != nil {
		return "", false, err
	}
	i := strings.Index(s, mark)
	if i < 0 {
		return "", false, nil
	}
	return s[i+len(mark):], true, nil
}
