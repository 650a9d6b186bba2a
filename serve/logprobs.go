package serve

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/crucible-ml/crucible/backend/local"
	"github.com/crucible-ml/crucible/engine"
)

// echoText is a completion prompt given as a string (or a one-element
// list of one), which echo returns as it was sent; nil for token ids.
func echoText(raw json.RawMessage) *string {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return &str
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil && len(list) == 1 {
		return &list[0]
	}
	return nil
}

// tokenText is how a token is shown in logprobs: its text, or, when its
// bytes are not whole UTF-8 (a piece of a character), "bytes:\xNN…" as
// vLLM writes it. bytes are the token's UTF-8 bytes as OpenAI lists them.
func (s *Server) tokenText(id int) (text string, bytes []int) {
	b := s.b.Tokenizer().TokenBytes(id)
	bytes = make([]int, len(b))
	for i, c := range b {
		bytes[i] = int(c)
	}
	if utf8.Valid(b) {
		return string(b), bytes
	}
	var sb strings.Builder
	sb.WriteString("bytes:")
	for _, c := range b {
		fmt.Fprintf(&sb, "\\x%02x", c)
	}
	return sb.String(), bytes
}

// chatLogprobs is choices[i].logprobs.content of a chat completion.
func (s *Server) chatLogprobs(lps []engine.TokenLogprob) []map[string]any {
	out := make([]map[string]any, len(lps))
	for i, lp := range lps {
		text, bytes := s.tokenText(lp.ID)
		top := make([]map[string]any, len(lp.Top))
		for j, c := range lp.Top {
			t, b := s.tokenText(c.ID)
			top[j] = map[string]any{"token": t, "logprob": c.Logprob, "bytes": b}
		}
		out[i] = map[string]any{"token": text, "logprob": lp.Logprob.Logprob, "bytes": bytes, "top_logprobs": top}
	}
	return out
}

// completionLogprobs is choices[i].logprobs of a completion, in the legacy
// shape: tokens, token_logprobs, top_logprobs (a map per position) and
// text_offset. With echo the prompt's tokens come first, the first of
// them with null logprobs (nothing precedes it).
func (s *Server) completionLogprobs(p *prepared, r *local.Result) map[string]any {
	var tokens []string
	var logprobs []any
	var tops []any
	var offsets []int
	offset := 0
	add := func(id int, lp *engine.TokenLogprob) {
		text, _ := s.tokenText(id)
		tokens = append(tokens, text)
		offsets = append(offsets, offset)
		offset += len(text)
		if lp == nil {
			logprobs, tops = append(logprobs, nil), append(tops, nil)
			return
		}
		logprobs = append(logprobs, lp.Logprob.Logprob)
		top := make(map[string]float32, len(lp.Top)+1)
		for _, c := range lp.Top {
			t, _ := s.tokenText(c.ID)
			top[t] = c.Logprob
		}
		top[text] = lp.Logprob.Logprob // the chosen token is listed too, as vLLM does
		tops = append(tops, top)
	}
	if p.echo {
		for i, id := range p.prompt {
			if i == 0 || i-1 >= len(r.PromptLogprobs) {
				add(id, nil)
				continue
			}
			add(id, &r.PromptLogprobs[i-1])
		}
	}
	for i := range r.Logprobs {
		add(r.Logprobs[i].ID, &r.Logprobs[i])
	}
	return map[string]any{"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": tops, "text_offset": offsets}
}

// reasoningSplit routes a chat stream's text pieces to the reasoning or
// the answer as they arrive, by splitting the text so far (split is the
// backend's SplitReasoning) and sending what each part gained. A part
// that shrinks (a piece that ended up being a tag) waits for the next
// piece; a piece that ends with the start of a tag is split without it.
// Once the answer has begun the split cannot move, so pieces go
// to it without splitting again.
type reasoningSplit struct {
	split     func(text string) (reasoning, answer string)
	text      strings.Builder
	sentRText string // the reasoning sent so far
	answered  bool   // the answer has begun (then the split is fixed)
}

// add takes the next piece (last: the text is complete) and returns what
// to send of each part.
func (r *reasoningSplit) add(delta string, last bool) (reasoning, answer string) {
	if r.answered { // the answer has begun: all that follows is answer
		return "", delta
	}
	r.text.WriteString(delta)
	text := r.text.String()
	// A piece may end inside a tag (text held back for a stop string is
	// released in any cut): split without it until the tag is whole.
	if !last {
		text = text[:len(text)-partialTag(text)]
	}
	re, an := r.split(text)
	if strings.HasPrefix(re, r.sentRText) && len(re) > len(r.sentRText) {
		reasoning, r.sentRText = re[len(r.sentRText):], re
	}
	if an != "" {
		answer, r.answered = an, true
	}
	return reasoning, answer
}

// partialTag is the length of the longest end of text that begins a
// reasoning tag without completing it.
func partialTag(text string) int {
	for n := min(len(text), len(local.ThinkClose)-1); n > 0; n-- {
		end := text[len(text)-n:]
		if strings.HasPrefix(local.ThinkClose, end) || strings.HasPrefix(local.ThinkOpen, end) {
			return n
		}
	}
	return 0
}
