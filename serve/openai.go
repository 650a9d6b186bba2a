package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/local"
	"github.com/crucible-ml/crucible/engine"
)

// request is the body of /v1/completions and /v1/chat/completions.
type request struct {
	Model               string          `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`   // completions: a string, or token ids; or a one-element list of either
	Messages            []chatMessage   `json:"messages"` // chat
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	MinP                *float64        `json:"min_p"`
	RepetitionPenalty   *float64        `json:"repetition_penalty"`
	Seed                *int64          `json:"seed"`
	Stop                json.RawMessage `json:"stop"` // a string or a list
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	IgnoreEOS   bool            `json:"ignore_eos"` // vLLM's extension
	Echo        bool            `json:"echo"`
	Logprobs    json.RawMessage `json:"logprobs"`     // chat: a boolean; completions: how many alternatives
	TopLogprobs *int            `json:"top_logprobs"` // chat
	// Refused rather than ignored: tools and structured output.
	Tools          json.RawMessage `json:"tools"`
	Functions      json.RawMessage `json:"functions"`
	ResponseFormat json.RawMessage `json:"response_format"`
}

// present reports whether a JSON field was given a value other than null.
func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string or a list of {"type": "text", "text": ...}
}

// apiError is an invalid request, answered with OpenAI's error JSON.
type apiError struct {
	status int
	typ    string
	msg    string
	param  string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(param, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", msg: fmt.Sprintf(format, a...), param: param}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeAPIError(w, &apiError{status: status, typ: typ, msg: msg})
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	var param any
	if e.param != "" {
		param = e.param
	}
	writeJSON(w, e.status, map[string]any{"error": map[string]any{"message": e.msg, "type": e.typ, "param": param, "code": nil}})
}

// prepared is a parsed, validated request.
type prepared struct {
	prompt    []int
	req       backend.Request // sampling settings
	n         int
	ignoreEOS bool
	logprobs  bool // of the generated tokens
	top       int  // alternatives per position
	echo      bool // completions: the prompt precedes the text (and its logprobs, with logprobs)
	// promptText is the prompt as echoed: the string sent, or the ids decoded.
	promptText *string
}

// parse reads and validates a request body.
func (s *Server) parse(r *http.Request, chat bool) (*request, *prepared, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 64<<20))
	if err != nil {
		return nil, nil, badRequest("", "reading the body: %v", err)
	}
	var q request
	if err := json.Unmarshal(body, &q); err != nil {
		return nil, nil, badRequest("", "invalid JSON body: %v", err)
	}
	if q.Model != "" && q.Model != s.opts.ModelName {
		return nil, nil, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", param: "model",
			msg: fmt.Sprintf("the model %q does not exist (this server has %q)", q.Model, s.opts.ModelName)}
	}
	if present(q.Tools) || present(q.Functions) {
		return nil, nil, badRequest("tools", "tools (function calling) are not supported by this server")
	}
	if present(q.ResponseFormat) {
		var rf struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(q.ResponseFormat, &rf) != nil || rf.Type != "text" {
			return nil, nil, badRequest("response_format", "response_format %s is not supported (only {\"type\": \"text\"})", q.ResponseFormat)
		}
	}
	p := &prepared{n: 1, ignoreEOS: q.IgnoreEOS}
	if aerr := p.parseLogprobs(&q, chat); aerr != nil {
		return nil, nil, aerr
	}
	br := &p.req
	br.Temperature = 1 // OpenAI's default
	if q.Temperature != nil {
		br.Temperature = *q.Temperature
	}
	if q.TopP != nil {
		br.TopP = *q.TopP
	}
	if q.TopK != nil {
		br.TopK = *q.TopK
	}
	if q.MinP != nil {
		br.MinP = *q.MinP
	}
	if q.RepetitionPenalty != nil {
		br.RepetitionPenalty = *q.RepetitionPenalty
	}
	if q.MaxCompletionTokens != nil {
		q.MaxTokens = q.MaxCompletionTokens
	}
	if q.MaxTokens != nil {
		switch {
		case *q.MaxTokens == 0 && p.echo:
			br.MaxTokens = -1 // score the prompt only
		case *q.MaxTokens < 1:
			return nil, nil, badRequest("max_tokens", "max_tokens must be at least 1 (0 with echo), got %d", *q.MaxTokens)
		default:
			br.MaxTokens = *q.MaxTokens
		}
	}
	if q.Seed != nil {
		br.Seed, br.HasSeed = *q.Seed, true
	}
	if q.N != nil {
		if *q.N < 1 || *q.N > s.opts.MaxN {
			return nil, nil, badRequest("n", "n must be between 1 and %d, got %d", s.opts.MaxN, *q.N)
		}
		p.n = *q.N
	}
	if len(q.Stop) > 0 && string(q.Stop) != "null" {
		var one string
		if err := json.Unmarshal(q.Stop, &one); err == nil {
			br.Stop = []string{one}
		} else if err := json.Unmarshal(q.Stop, &br.Stop); err != nil {
			return nil, nil, badRequest("stop", "stop must be a string or a list of strings")
		}
	}
	sp := engine.SamplingParams{Temperature: br.Temperature, TopP: br.TopP, TopK: br.TopK, MinP: br.MinP, RepetitionPenalty: br.RepetitionPenalty}
	if err := sp.Validate(); err != nil {
		return nil, nil, badRequest("", "%v", err)
	}
	if chat {
		if len(q.Messages) == 0 {
			return nil, nil, badRequest("messages", "messages must be a non-empty list")
		}
		for i, m := range q.Messages {
			text, err := contentText(m.Content)
			if err != nil {
				return nil, nil, badRequest(fmt.Sprintf("messages[%d].content", i), "%v", err)
			}
			if m.Role == "" {
				return nil, nil, badRequest(fmt.Sprintf("messages[%d].role", i), "missing role")
			}
			br.Messages = append(br.Messages, backend.Message{Role: m.Role, Content: text})
		}
		ids, err := s.b.Prompt(br)
		if err != nil {
			return nil, nil, badRequest("messages", "%v", err)
		}
		p.prompt = ids
	} else {
		ids, aerr := s.promptIDs(q.Prompt)
		if aerr != nil {
			return nil, nil, aerr
		}
		p.prompt = ids
		if p.echo {
			p.promptText = echoText(q.Prompt)
			if p.promptText == nil {
				t := s.b.Tokenizer().Decode(ids, false)
				p.promptText = &t
			}
		}
	}
	if len(p.prompt) == 0 {
		return nil, nil, badRequest("prompt", "the prompt is empty")
	}
	vocab := s.b.Model().Config().VocabSize
	for _, id := range p.prompt {
		if id < 0 || id >= vocab {
			return nil, nil, badRequest("prompt", "token id %d outside the vocabulary of %d", id, vocab)
		}
	}
	return &q, p, nil
}

// parseLogprobs reads logprobs, top_logprobs and echo: chat takes
// logprobs as a boolean with top_logprobs alternatives, completions take
// logprobs as the number of alternatives and may echo the prompt.
func (p *prepared) parseLogprobs(q *request, chat bool) *apiError {
	if chat {
		if q.Echo {
			return badRequest("echo", "echo is a /v1/completions parameter")
		}
		if present(q.Logprobs) && json.Unmarshal(q.Logprobs, &p.logprobs) != nil {
			return badRequest("logprobs", "logprobs must be a boolean")
		}
		if q.TopLogprobs != nil {
			if *q.TopLogprobs < 0 || *q.TopLogprobs > engine.MaxTopLogprobs {
				return badRequest("top_logprobs", "top_logprobs must be between 0 and %d, got %d", engine.MaxTopLogprobs, *q.TopLogprobs)
			}
			if *q.TopLogprobs > 0 && !p.logprobs {
				return badRequest("top_logprobs", "top_logprobs needs logprobs: true")
			}
			p.top = *q.TopLogprobs
		}
	} else {
		if q.TopLogprobs != nil {
			return badRequest("top_logprobs", "top_logprobs is a chat parameter; /v1/completions takes logprobs: N")
		}
		if present(q.Logprobs) {
			var n int
			if json.Unmarshal(q.Logprobs, &n) != nil || n < 0 || n > engine.MaxTopLogprobs {
				return badRequest("logprobs", "logprobs must be an integer between 0 and %d", engine.MaxTopLogprobs)
			}
			p.logprobs, p.top = true, n
		}
		p.echo = q.Echo
	}
	if q.Stream && (p.logprobs || p.echo) {
		return badRequest("stream", "logprobs and echo are answered without streaming: send stream: false")
	}
	return nil
}

// promptIDs reads a completion prompt: a string, a list of token ids, or a
// one-element list of either.
func (s *Server) promptIDs(raw json.RawMessage) ([]int, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badRequest("prompt", "missing prompt")
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return s.b.Tokenizer().Encode(str, true), nil
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return ids, nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil && len(list) == 1 {
		return s.promptIDs(list[0])
	}
	if len(list) > 1 {
		return nil, badRequest("prompt", "one prompt per request (send several requests, or use n for samples)")
	}
	return nil, badRequest("prompt", "prompt must be a string or a list of token ids")
}

// contentText flattens a chat message's content.
func contentText(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("content must be a string or a list of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part of type %q is not supported", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// sample is the outcome of one of a request's n samples.
type sample struct {
	resp *local.Result
	err  error
}

// run starts the n samples of p; onText (may be nil) gets each sample's
// text pieces with its index. done receives every sample's outcome.
func (s *Server) run(ctx context.Context, p *prepared, onText func(i int, delta string)) []sample {
	out := make([]sample, p.n)
	var wg sync.WaitGroup
	for i := 0; i < p.n; i++ {
		req := p.req
		if req.HasSeed {
			req.Seed += int64(i)
		}
		opts := local.RunOptions{IgnoreEOS: p.ignoreEOS, Logprobs: p.logprobs, TopLogprobs: p.top,
			PromptLogprobs: p.echo}
		if onText != nil {
			opts.OnText = func(d string) { onText(i, d) }
		}
		wg.Add(1)
		s.m.pending.Add(1)
		go func() {
			defer wg.Done()
			defer s.m.pending.Add(-1)
			out[i].resp, out[i].err = s.b.Run(ctx, p.prompt, &req, opts)
		}()
	}
	wg.Wait()
	return out
}

// failure maps a generation error to an API error.
func failure(err error) *apiError {
	switch {
	case errors.Is(err, backend.ErrBadRequest):
		return badRequest("", "%v", err)
	case errors.Is(err, engine.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, typ: "server_error", msg: "the server is shutting down"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: 499, typ: "server_error", msg: "request canceled"}
	}
	return &apiError{status: http.StatusInternalServerError, typ: "server_error", msg: err.Error()}
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) int {
	return s.generate(w, r, false)
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) int {
	return s.generate(w, r, true)
}

// generate answers a completion or chat request and returns the status.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, chat bool) int {
	q, p, aerr := s.parse(r, chat)
	if aerr != nil {
		writeAPIError(w, aerr)
		return aerr.status
	}
	id := fmt.Sprintf("%s-%x", map[bool]string{false: "cmpl", true: "chatcmpl"}[chat], time.Now().UnixNano())
	if q.Stream {
		return s.stream(w, r, p, chat, id, q.StreamOptions != nil && q.StreamOptions.IncludeUsage)
	}
	samples := s.run(r.Context(), p, nil)
	choices := make([]map[string]any, len(samples))
	completion := 0
	for i, sm := range samples {
		if sm.err != nil {
			e := failure(sm.err)
			if e.status == 499 {
				return e.status // the client is gone
			}
			s.opts.Logger.Warn("generation failed", "err", sm.err)
			writeAPIError(w, e)
			return e.status
		}
		completion += sm.resp.CompletionTokens
		c := map[string]any{"index": i, "finish_reason": sm.resp.FinishReason, "logprobs": nil}
		if sm.resp.StopString != "" {
			c["stop_reason"] = sm.resp.StopString
		}
		if chat {
			msg := map[string]any{"role": "assistant", "content": sm.resp.Text}
			if reasoning, answer := s.b.SplitReasoning(p.prompt, sm.resp.Text); reasoning != "" {
				// vLLM's field names: reasoning_content (older) and reasoning.
				msg["reasoning_content"], msg["reasoning"], msg["content"] = reasoning, reasoning, answer
				if answer == "" {
					msg["content"] = nil // stopped inside the reasoning: no answer, not an empty one
				}
			}
			c["message"] = msg
			if p.logprobs {
				c["logprobs"] = map[string]any{"content": s.chatLogprobs(sm.resp.Logprobs)}
			}
		} else {
			c["text"] = sm.resp.Text
			if p.echo {
				c["text"] = *p.promptText + sm.resp.Text
			}
			if p.logprobs {
				c["logprobs"] = s.completionLogprobs(p, sm.resp)
			}
		}
		choices[i] = c
	}
	obj := "text_completion"
	if chat {
		obj = "chat.completion"
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": obj, "created": time.Now().Unix(), "model": s.opts.ModelName,
		"choices": choices, "usage": usage(len(p.prompt), completion)})
	return http.StatusOK
}

func usage(prompt, completion int) map[string]int {
	return map[string]int{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
}

// event is a streamed text piece of one sample.
type event struct {
	i     int
	delta string
}

// stream answers with server-sent events: text pieces as they become
// final, one closing chunk per sample with its finish reason, an optional
// usage chunk, and [DONE].
func (s *Server) stream(w http.ResponseWriter, r *http.Request, p *prepared, chat bool, id string, includeUsage bool) int {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "server_error", "streaming is not supported by this connection")
		return http.StatusInternalServerError
	}
	var mu sync.Mutex
	var queue []event
	wake := make(chan struct{}, 1)
	done := make(chan []sample, 1)
	go func() {
		done <- s.run(r.Context(), p, func(i int, d string) {
			mu.Lock()
			queue = append(queue, event{i, d})
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}()
	obj := "text_completion"
	if chat {
		obj = "chat.completion.chunk"
	}
	created := time.Now().Unix()
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("Connection", "keep-alive")
		w.WriteHeader(http.StatusOK)
		if chat { // the role first, as OpenAI does
			for i := 0; i < p.n; i++ {
				writeEvent(w, map[string]any{"id": id, "object": obj, "created": created, "model": s.opts.ModelName,
					"choices": []map[string]any{{"index": i, "delta": map[string]any{"role": "assistant", "content": ""}, "finish_reason": nil}}})
			}
		}
	}
	splits := make([]reasoningSplit, p.n)
	for i := range splits {
		splits[i] = reasoningSplit{split: func(text string) (string, string) { return s.b.SplitReasoning(p.prompt, text) }}
	}
	chunk := func(i int, delta string, finish any) map[string]any {
		c := map[string]any{"index": i, "finish_reason": finish}
		if chat {
			d := map[string]any{}
			reasoning, answer := splits[i].add(delta, finish != nil)
			if answer != "" {
				d["content"] = answer
			}
			if reasoning != "" {
				d["reasoning_content"], d["reasoning"] = reasoning, reasoning
			}
			c["delta"] = d
		} else {
			c["text"] = delta
			c["logprobs"] = nil
		}
		return map[string]any{"id": id, "object": obj, "created": created, "model": s.opts.ModelName, "choices": []map[string]any{c}}
	}
	flush := func() {
		mu.Lock()
		evs := queue
		queue = nil
		mu.Unlock()
		if len(evs) == 0 {
			return
		}
		start()
		for _, e := range evs {
			writeEvent(w, chunk(e.i, e.delta, nil))
		}
		fl.Flush()
	}
	var samples []sample
	for samples == nil {
		select {
		case <-wake:
			flush()
		case samples = <-done:
			flush()
		}
	}
	completion := 0
	for _, sm := range samples {
		if sm.err != nil {
			e := failure(sm.err)
			if e.status == 499 {
				return e.status
			}
			if !started {
				writeAPIError(w, e)
				return e.status
			}
			writeEvent(w, map[string]any{"error": map[string]any{"message": e.msg, "type": e.typ, "param": nil, "code": nil}})
			fl.Flush()
			return e.status
		}
		completion += sm.resp.CompletionTokens
	}
	start()
	for i, sm := range samples {
		writeEvent(w, chunk(i, "", sm.resp.FinishReason))
	}
	if includeUsage {
		writeEvent(w, map[string]any{"id": id, "object": obj, "created": created, "model": s.opts.ModelName,
			"choices": []any{}, "usage": usage(len(p.prompt), completion)})
	}
	io.WriteString(w, "data: [DONE]\n\n")
	fl.Flush()
	return http.StatusOK
}

func writeEvent(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "data: %s\n\n", b)
}
