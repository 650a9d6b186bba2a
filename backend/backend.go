// Package backend defines how Crucible asks a language model for text: a
// Request (a completion prompt or chat messages, plus sampling settings) goes
// in, a Response (text, finish reason, token counts) comes out.
//
// Implementations are safe for concurrent use and are built for many requests
// in flight at once: callers simply call Generate from as many goroutines as
// they want requests outstanding. The OpenAI-compatible HTTP client lives in
// backend/openai; the in-process CPU engine adapter in backend/local.
package backend

import (
	"context"
	"errors"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is one generation request. Exactly one of Prompt and Messages is
// set: Prompt selects a plain completion, Messages a chat completion.
type Request struct {
	Prompt   string
	Messages []Message

	MaxTokens         int      // 0 means the backend's default
	Temperature       float64  // 0 means greedy
	TopP              float64  // 0 or 1 means no nucleus cut
	TopK              int      // 0 or -1 means no top-k cut
	MinP              float64  // 0 means off
	RepetitionPenalty float64  // 0 or 1 means off
	Seed              int64    // used when HasSeed
	HasSeed           bool     // whether Seed is sent
	Stop              []string // stop strings; the stop string is not part of Text
}

// IsChat reports whether r is a chat request.
func (r *Request) IsChat() bool { return r.Messages != nil }

// Finish reasons reported in Response.FinishReason.
const (
	FinishStop   = "stop"   // an end-of-sequence token or a stop string
	FinishLength = "length" // MaxTokens reached
)

// Response is the result of one request.
type Response struct {
	Text             string
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
	// StopString is the stop string that ended the text, when the backend
	// reports it (vLLM's stop_reason, SGLang's matched_stop); "" otherwise.
	StopString string
	// Reasoning is the chain of thought a reasoning model returned apart
	// from Text (vLLM's message.reasoning, reasoning_content elsewhere);
	// Text is then only the answer after it, and may be empty when the
	// generation stopped inside the reasoning.
	Reasoning string
}

// FaultStats count what a backend retried, by fault class (e.g.
// "server_error", "rate_limit", "connection", "timeout", "bad_body").
type FaultStats struct {
	Attempts int64            // requests sent, retries included
	Retries  int64            // attempts that were retried
	GaveUp   int64            // requests that failed after their retries
	ByClass  map[string]int64 // faulty attempts by class
}

// FaultReporter is a Backend that counts its faults and retries.
type FaultReporter interface {
	Faults() FaultStats
}

// Backend generates text. Generate blocks until the response is complete, the
// request fails for good (after the backend's own retries), or ctx ends.
type Backend interface {
	Generate(ctx context.Context, req *Request) (*Response, error)
	// Close releases connections, workers or model memory.
	Close() error
}

// ErrBadRequest marks a request the backend refused as invalid (HTTP 400 and
// the like); retrying it cannot help.
var ErrBadRequest = errors.New("backend: bad request")
