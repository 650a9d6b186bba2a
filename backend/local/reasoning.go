package local

import "strings"

// ThinkOpen and ThinkClose are the tags reasoning models (DeepSeek-R1,
// Qwen3, Nemotron Nano) put around their chain of thought.
const (
	ThinkOpen  = "<think>"
	ThinkClose = "</think>"
)

// thinkTokens finds the model's <think> and </think> tokens; a model
// without both is not a reasoning model.
func (b *Backend) thinkTokens() (open int, ok bool) {
	open, ok1 := b.tok.TokenID(ThinkOpen)
	_, ok2 := b.tok.TokenID(ThinkClose)
	return open, ok1 && ok2
}

// opensThink reports whether the prompt ends inside a <think> block that
// the chat template opened (its last tokens are <think> and white space).
func (b *Backend) opensThink(prompt []int) bool {
	open, ok := b.thinkTokens()
	if !ok {
		return false
	}
	for i := len(prompt) - 1; i >= 0 && i >= len(prompt)-3; i-- {
		if prompt[i] == open {
			return true
		}
		if strings.TrimSpace(b.tok.Decode(prompt[i:i+1], false)) != "" {
			return false
		}
	}
	return false
}

// SplitReasoning separates a reasoning model's chain of thought from its
// answer, as vLLM's reasoning parsers do: what comes before </think> is
// reasoning (a leading <think> dropped), what follows is the answer. A
// generation that stopped inside the reasoning (the template or the model
// opened <think> and no </think> came) is all reasoning with an empty
// answer. For a model without <think> tokens, the text is all answer.
func (b *Backend) SplitReasoning(prompt []int, text string) (reasoning, answer string) {
	if _, ok := b.thinkTokens(); !ok {
		return "", text
	}
	t := strings.TrimLeft(text, " \t\r\n")
	opened := strings.HasPrefix(t, ThinkOpen)
	if opened {
		t = t[len(ThinkOpen):]
	}
	if i := strings.Index(t, ThinkClose); i >= 0 {
		return strings.TrimSpace(t[:i]), strings.TrimLeft(t[i+len(ThinkClose):], " \t\r\n")
	}
	if opened || b.opensThink(prompt) {
		return strings.TrimSpace(t), ""
	}
	return "", text
}
