package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// Finish reasons of a generation.
const (
	FinishStop   = "stop"   // an EOS token or a stop string
	FinishLength = "length" // MaxTokens reached
)

// GenRequest is one sequence to generate.
type GenRequest struct {
	Prompt    []int // token ids, at least one
	MaxTokens int   // new tokens at most; must be > 0
	Sampling  SamplingParams
	EOS       []int    // token ids that end the sequence (not part of the text)
	Stop      []string // strings that end the sequence, matched on the decoded text across token boundaries
	// OnText, when set, receives the text as it becomes final (never
	// text that a stop string may still cut): the pieces concatenate to
	// GenResult.Text. It runs on the generating goroutine and must not
	// block.
	OnText func(delta string)
	// Logprobs records each generated token's log-probability in
	// GenResult.Logprobs, with the TopLogprobs (at most MaxTopLogprobs)
	// most likely tokens at its position.
	Logprobs    bool
	TopLogprobs int
	// PromptLogprobs records the log-probability of every prompt token
	// after the first, given those before it, in GenResult.PromptLogprobs
	// (with TopLogprobs alternatives). Such a prompt is prefilled on its
	// own, not taken from the prefix cache. With PromptLogprobs, MaxTokens
	// may be 0: the prompt is scored and nothing is generated.
	PromptLogprobs bool
}

// GenResult is a finished sequence.
type GenResult struct {
	Tokens       []int  // generated ids, including an EOS or the token that completed a stop string
	Text         string // decoded text of Tokens without special tokens, cut before a stop string
	FinishReason string // FinishStop or FinishLength
	StopString   string // the stop string that ended the text, if any
	PromptTokens int
	// Logprobs holds one entry per token of Tokens when the request asked
	// for Logprobs.
	Logprobs []TokenLogprob
	// PromptLogprobs holds one entry per prompt token after the first
	// (PromptLogprobs[i] is that of Prompt[i+1]) when asked for.
	PromptLogprobs []TokenLogprob
}

// seq is one sequence being generated.
type seq struct {
	req     *GenRequest
	st      state
	sampler *sampler
	logits  []float32
	history []int // prompt then generated ids (for the repetition penalty)
	stream  *tokenizer.Stream
	text    strings.Builder
	maxStop int
	res     GenResult
	done    bool
	emitted int         // bytes of text passed to OnText
	plBuf   [][]float32 // logits of prompt positions, for PromptLogprobs: [promptChunk][VocabSize]
	raw     []float32   // the logits before a repetition penalty, for Logprobs
}

// promptChunk is how many prompt positions a sequence scoring its prompt
// (PromptLogprobs) feeds per forward pass: each needs a row of logits.
const promptChunk = 16

func newSeq(m Model, tok *tokenizer.Tokenizer, req *GenRequest, st state) (*seq, error) {
	if len(req.Prompt) == 0 {
		return nil, errors.New("generate: empty prompt")
	}
	if req.MaxTokens < 0 || req.MaxTokens == 0 && !req.PromptLogprobs {
		return nil, fmt.Errorf("generate: max tokens %d", req.MaxTokens)
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > MaxTopLogprobs {
		return nil, fmt.Errorf("generate: top logprobs %d (0 to %d)", req.TopLogprobs, MaxTopLogprobs)
	}
	if err := req.Sampling.Validate(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	for _, t := range req.Prompt {
		if err := checkToken(m, t); err != nil {
			return nil, fmt.Errorf("generate: prompt: %w", err)
		}
	}
	// Room for the prompt and a first stretch of output; the KV cache and
	// the history grow past that, so a huge MaxTokens costs nothing upfront.
	room := len(req.Prompt) + min(req.MaxTokens, 1024)
	if st == nil {
		st = m.newState(room)
	} else {
		st.Reset()
	}
	s := &seq{req: req, st: st, sampler: newSampler(req.Sampling), logits: make([]float32, m.Config().VocabSize),
		history: append(make([]int, 0, room), req.Prompt...)}
	s.res.PromptTokens = len(req.Prompt)
	if tok != nil {
		s.stream = tok.NewStream(true)
	}
	for _, stop := range req.Stop {
		s.maxStop = max(s.maxStop, len(stop))
	}
	if req.PromptLogprobs {
		v := m.Config().VocabSize
		buf := make([]float32, promptChunk*v)
		s.plBuf = make([][]float32, promptChunk)
		for i := range s.plBuf {
			s.plBuf[i] = buf[i*v : (i+1)*v]
		}
		s.res.PromptLogprobs = make([]TokenLogprob, 0, len(req.Prompt)-1)
	}
	return s, nil
}

// scorePrompt records the log-probabilities of the prompt tokens that
// follow positions from..to-1, whose logits are in plBuf[0:to-from]; when
// to is the prompt's end, the last row becomes the next-token logits.
func (s *seq) scorePrompt(from, to int) {
	p := s.req.Prompt
	for i := from; i < to; i++ {
		if i+1 < len(p) {
			s.res.PromptLogprobs = append(s.res.PromptLogprobs, logprobOf(s.plBuf[i-from], p[i+1], s.req.TopLogprobs))
		}
	}
	if to == len(p) {
		copy(s.logits, s.plBuf[to-1-from])
	}
}

// prefillScored prefills the prompt promptChunk tokens at a time, scoring
// each token (see GenRequest.PromptLogprobs).
func (s *seq) prefillScored(ctx context.Context, m Model) error {
	p := s.req.Prompt
	for a := 0; a < len(p); a += promptChunk {
		b := min(a+promptChunk, len(p))
		v := len(s.logits)
		all := s.plBuf[0][: (b-a)*v : (b-a)*v] // plBuf's rows are one contiguous buffer
		if err := prefill(ctx, m, s.st, p[a:b], all, nil); err != nil {
			return err
		}
		s.scorePrompt(a, b)
	}
	return nil
}

// start begins decoding once the prompt is in the state and s.logits hold
// its next-token logits: it samples the first token, or ends a request
// that only scores its prompt.
func (s *seq) start() {
	if s.req.MaxTokens == 0 {
		s.finish(FinishLength)
		return
	}
	s.next()
}

// next samples a token from s.logits and updates the finish state.
func (s *seq) next() {
	raw := s.logits
	if s.req.Logprobs && s.sampler.penalizes() { // Sample changes the logits in place
		s.raw = append(s.raw[:0], s.logits...)
		raw = s.raw
	}
	t := s.sampler.Sample(s.logits, s.history)
	if s.req.Logprobs {
		s.res.Logprobs = append(s.res.Logprobs, logprobOf(raw, t, s.req.TopLogprobs))
	}
	s.history = append(s.history, t)
	s.res.Tokens = append(s.res.Tokens, t)
	for _, e := range s.req.EOS {
		if t == e {
			s.finish(FinishStop)
			return
		}
	}
	if s.stream != nil {
		before := s.text.Len()
		s.text.WriteString(s.stream.Add(t))
		if s.maxStop > 0 && s.text.Len() > before && s.matchStop(before) {
			return
		}
	}
	if len(s.res.Tokens) >= s.req.MaxTokens {
		s.finish(FinishLength)
	}
}

// matchStop looks for a stop string that ends in the text added after
// offset before; on a match it cuts the text and finishes.
func (s *seq) matchStop(before int) bool {
	text := s.text.String()
	from := max(0, before-s.maxStop+1)
	best, bestStop := -1, ""
	for _, stop := range s.req.Stop {
		if stop == "" {
			continue
		}
		if i := strings.Index(text[from:], stop); i >= 0 && (best < 0 || from+i < best) {
			best, bestStop = from+i, stop
		}
	}
	if best < 0 {
		return false
	}
	s.res.Text = text[:best]
	s.res.StopString = bestStop
	s.res.FinishReason = FinishStop
	s.done = true
	return true
}

// emit passes the text that can no longer change to OnText: all of it
// once done, else all but the last maxStop-1 bytes (a stop string may
// still begin there), never splitting a UTF-8 sequence.
func (s *seq) emit() {
	if s.req.OnText == nil {
		return
	}
	text := s.res.Text
	safe := len(text)
	if !s.done {
		text = s.text.String()
		safe = len(text) - max(s.maxStop-1, 0)
		for safe > s.emitted && safe < len(text) && !utf8.RuneStart(text[safe]) {
			safe--
		}
	}
	if safe > s.emitted {
		s.req.OnText(text[s.emitted:safe])
		s.emitted = safe
	}
}

// fail ends the sequence with an error finish (its text so far is kept).
func (s *seq) fail(err error) {
	s.finish(FinishLength)
	s.res.FinishReason = "error: " + err.Error()
}

func (s *seq) finish(reason string) {
	s.done = true
	s.res.FinishReason = reason
	if s.stream != nil {
		s.text.WriteString(s.stream.Flush())
	}
	s.res.Text = s.text.String()
}

// GenerateBatch generates all requests together: one prefill each, then
// decode steps over every unfinished sequence at once. tok may be nil
// (no text, no stop strings).
func GenerateBatch(ctx context.Context, m Model, tok *tokenizer.Tokenizer, reqs []GenRequest) ([]GenResult, error) {
	seqs := make([]*seq, len(reqs))
	for i := range reqs {
		s, err := newSeq(m, tok, &reqs[i], nil)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		seqs[i] = s
		// A prompt seen before is not prefilled again: fork that state.
		forked := false
		for _, o := range seqs[:i] {
			if slices.Equal(o.req.Prompt, s.req.Prompt) && copyState(s.st, o.st) == nil {
				copy(s.logits, o.logits)
				forked = true
				break
			}
		}
		if s.plBuf != nil {
			if err := s.prefillScored(ctx, m); err != nil {
				return nil, fmt.Errorf("request %d: %w", i, err)
			}
		} else if !forked {
			if err := prefill(ctx, m, s.st, s.req.Prompt, nil, s.logits); err != nil {
				return nil, fmt.Errorf("request %d: %w", i, err)
			}
		}
	}
	first := make([]*seq, 0, len(seqs))
	for _, s := range seqs {
		if s.req.MaxTokens == 0 {
			s.start() // only scores its prompt
		} else {
			first = append(first, s)
		}
	}
	sampleAll(first) // first tokens, once every prompt is in
	var states []state
	var tokens []int
	var logits [][]float32
	var active []*seq
	for {
		states, tokens, logits, active = states[:0], tokens[:0], logits[:0], active[:0]
		for _, s := range seqs {
			if !s.done {
				active = append(active, s)
				states = append(states, s.st)
				tokens = append(tokens, s.res.Tokens[len(s.res.Tokens)-1])
				logits = append(logits, s.logits)
			}
		}
		if len(active) == 0 {
			break
		}
		if err := decodeStep(ctx, m, states, tokens, logits); err != nil {
			return nil, err
		}
		sampleAll(active)
	}
	out := make([]GenResult, len(seqs))
	for i, s := range seqs {
		out[i] = s.res
	}
	return out, nil
}
