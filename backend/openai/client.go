// Package openai is a Backend that talks to OpenAI-compatible servers (vLLM,
// SGLang, TensorRT-LLM, NVIDIA NIM, llama.cpp, OpenAI itself, crucible
// serve) over /v1/completions and /v1/chat/completions.
//
// One Client spreads requests over several servers, keeps a keep-alive
// connection pool sized for the requests in flight, and retries what real
// servers do to requests — 429 (honouring Retry-After), 5xx, refused, reset
// or cut connections, attempts past Options.Timeout, and a 200 whose body is
// not the API's JSON or has no choices — with exponential backoff and
// jitter, on the next server. Model discovery (/v1/models, while a server
// warms up) goes through the same loop and never caches a failure. A request
// that still fails is returned as an error for the caller to record on its
// row; Faults counts the faulty attempts by class.
//
// Retrying is safe: Crucible's requests carry their seed, derived from the
// row and sample, so a retried request asks for the same text, and a stage
// writes a row only once its response has arrived.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crucible-ml/crucible/backend"
)

// Options configure a Client.
type Options struct {
	// BaseURLs are the servers, e.g. "http://127.0.0.1:8000/v1" ("/v1" is
	// added when missing). Requests go round-robin; a retry goes to the next.
	BaseURLs []string
	// APIKey is sent as a Bearer token when set.
	APIKey string
	// Model is the model name sent with each request; when empty the first
	// model listed by the first server's /v1/models is used.
	Model string
	// Concurrency is the number of requests the caller keeps in flight; the
	// connection pool is sized for it. Default 256.
	Concurrency int
	// Timeout bounds one attempt of one request. Default 10 minutes.
	Timeout time.Duration
	// MaxRetries is how many times a failed attempt is retried. Default 6.
	MaxRetries int
	// BackoffBase and BackoffMax shape the exponential backoff (defaults
	// 500 ms and 30 s); each wait is drawn uniformly from [0, min(max,
	// base*2^attempt)] ("full jitter"), or is the server's Retry-After.
	BackoffBase, BackoffMax time.Duration
	// HTTPClient replaces the default client (tests).
	HTTPClient *http.Client
}

// Client is an OpenAI-compatible backend.Backend. It is safe for concurrent
// use.
type Client struct {
	opts  Options
	bases []string
	http  *http.Client
	next  atomic.Uint64

	modelMu sync.Mutex
	model   string

	attempts, retries, gaveUp atomic.Int64
	faultMu                   sync.Mutex
	faults                    map[string]int64
}

// Fault classes counted by Faults.
const (
	FaultConnection = "connection"   // refused, reset or cut connection
	FaultTimeout    = "timeout"      // an attempt ran past Options.Timeout
	FaultRateLimit  = "rate_limit"   // HTTP 429
	FaultServer     = "server_error" // HTTP 5xx
	FaultBadBody    = "bad_body"     // a 200 that is not the API's JSON, or has no choices
)

// Faults returns the faulty attempts by class, and how many were retried.
func (c *Client) Faults() backend.FaultStats {
	c.faultMu.Lock()
	defer c.faultMu.Unlock()
	by := make(map[string]int64, len(c.faults))
	for k, v := range c.faults {
		by[k] = v
	}
	return backend.FaultStats{Attempts: c.attempts.Load(), Retries: c.retries.Load(), GaveUp: c.gaveUp.Load(), ByClass: by}
}

func (c *Client) fault(class string) {
	c.faultMu.Lock()
	if c.faults == nil {
		c.faults = map[string]int64{}
	}
	c.faults[class]++
	c.faultMu.Unlock()
}

// badBody marks a 200 response whose body is not what the API returns; the
// attempt is retried like a 5xx.
type badBody struct{ err error }

func (e badBody) Error() string { return e.err.Error() }
func (e badBody) Unwrap() error { return e.err }

// BadBody wraps err so that a parse function given to Post marks the
// response as malformed (retried) rather than final.
func BadBody(err error) error { return badBody{err} }

// New returns a Client. It does not contact the servers.
func New(opts Options) (*Client, error) {
	if len(opts.BaseURLs) == 0 {
		return nil, errors.New("openai backend: no --base-url given")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 256
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Minute
	}
	if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	} else if opts.MaxRetries == 0 {
		opts.MaxRetries = 6
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 500 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	c := &Client{opts: opts, model: opts.Model}
	for _, u := range opts.BaseURLs {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("openai backend: base URL %q must start with http:// or https://", u)
		}
		if !strings.HasSuffix(u, "/v1") {
			u += "/v1"
		}
		c.bases = append(c.bases, u)
	}
	c.http = opts.HTTPClient
	if c.http == nil {
		perHost := opts.Concurrency/len(c.bases) + 1
		c.http = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        opts.Concurrency + len(c.bases),
			MaxIdleConnsPerHost: perHost,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		}}
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// Model returns the model name, asking the servers' /v1/models (with the
// request retries) when none was configured. A name found is kept; a
// failure is not, so the next call asks again.
func (c *Client) Model(ctx context.Context) (string, error) {
	c.modelMu.Lock()
	defer c.modelMu.Unlock()
	if c.model != "" {
		return c.model, nil
	}
	var id string
	err := c.send(ctx, http.MethodGet, "/models", nil, func(b []byte) error {
		var out struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return badBody{fmt.Errorf("invalid JSON (%v): %s", err, snippet(b))}
		}
		if len(out.Data) == 0 || out.Data[0].ID == "" {
			return errors.New("no models listed")
		}
		id = out.Data[0].ID
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("openai backend: cannot find the model name (pass --model): %w", err)
	}
	c.model = id
	return id, nil
}

type wireRequest struct {
	Model             string            `json:"model"`
	Prompt            *string           `json:"prompt,omitempty"`
	Messages          []backend.Message `json:"messages,omitempty"`
	MaxTokens         int               `json:"max_tokens,omitempty"`
	Temperature       float64           `json:"temperature"`
	TopP              float64           `json:"top_p,omitempty"`
	TopK              int               `json:"top_k,omitempty"`
	MinP              float64           `json:"min_p,omitempty"`
	RepetitionPenalty float64           `json:"repetition_penalty,omitempty"`
	Seed              *int64            `json:"seed,omitempty"`
	Stop              []string          `json:"stop,omitempty"`
}

type wireResponse struct {
	Choices []struct {
		Text    *string `json:"text"`
		Message *struct {
			Content          *string `json:"content"`
			Reasoning        *string `json:"reasoning"`         // vLLM --reasoning-parser
			ReasoningContent *string `json:"reasoning_content"` // older vLLM, SGLang, DeepSeek
		} `json:"message"`
		FinishReason string          `json:"finish_reason"`
		StopReason   json.RawMessage `json:"stop_reason"`  // vLLM
		MatchedStop  json.RawMessage `json:"matched_stop"` // SGLang
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// EncodeRequest returns the JSON body sent for req, and the endpoint path
// ("/completions" or "/chat/completions").
func EncodeRequest(model string, req *backend.Request) ([]byte, string, error) {
	w := wireRequest{
		Model:       model,
		MaxTokens:   req.MaxTokens,
		Temperature: req.Temperature,
		TopK:        req.TopK,
		MinP:        req.MinP,
		Stop:        req.Stop,
	}
	if req.TopP > 0 && req.TopP < 1 {
		w.TopP = req.TopP
	}
	if w.TopK < 0 {
		w.TopK = 0
	}
	if req.RepetitionPenalty != 0 && req.RepetitionPenalty != 1 {
		w.RepetitionPenalty = req.RepetitionPenalty
	}
	if req.HasSeed {
		s := req.Seed
		w.Seed = &s
	}
	path := "/completions"
	if req.IsChat() {
		w.Messages = req.Messages
		path = "/chat/completions"
	} else {
		p := req.Prompt
		w.Prompt = &p
	}
	b, err := json.Marshal(&w)
	return b, path, err
}

// Generate sends one request, retrying transient failures.
func (c *Client) Generate(ctx context.Context, req *backend.Request) (*backend.Response, error) {
	model, err := c.Model(ctx)
	if err != nil {
		return nil, err
	}
	body, path, err := EncodeRequest(model, req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	var resp *backend.Response
	err = c.post(ctx, path, body, func(b []byte) error {
		var perr error
		resp, perr = parseResponse(b)
		return perr
	})
	return resp, err
}

// Post sends a JSON body to path (e.g. "/chat/completions") on the servers
// with the client's retries, and hands a 200 response body to parse. A
// parse error is final unless parse wraps it with BadBody. It serves
// endpoints whose replies Generate does not read (reward models, poolers).
func (c *Client) Post(ctx context.Context, path string, body []byte, parse func([]byte) error) error {
	return c.send(ctx, http.MethodPost, path, body, parse)
}

func (c *Client) post(ctx context.Context, path string, body []byte, parse func([]byte) error) error {
	return c.send(ctx, http.MethodPost, path, body, parse)
}

// send makes one request with the retries: each attempt goes to the next
// server and is bounded by Options.Timeout; a 200 body goes to parse.
func (c *Client) send(ctx context.Context, method, path string, body []byte, parse func([]byte) error) error {
	start := c.next.Add(1)
	var lastErr error
	for attempt := 0; ; attempt++ {
		base := c.bases[(start+uint64(attempt))%uint64(len(c.bases))]
		url := base + path
		c.attempts.Add(1)
		actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		respBody, status, hdr, err := c.do(actx, method, url, body)
		timedOut := actx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var wait time.Duration
		switch {
		case err != nil && timedOut:
			c.fault(FaultTimeout)
			lastErr = fmt.Errorf("%s %s: no answer within %v (--request-timeout)", method, url, c.opts.Timeout)
		case err != nil:
			c.fault(FaultConnection)
			lastErr = fmt.Errorf("%s %s: %w", method, url, err)
		case status == http.StatusOK:
			perr := parse(respBody)
			if perr == nil {
				return nil
			}
			var bb badBody
			if !errors.As(perr, &bb) {
				return fmt.Errorf("%s %s: %w", method, url, perr)
			}
			c.fault(FaultBadBody)
			lastErr = fmt.Errorf("%s %s: %w", method, url, perr)
		case status == http.StatusTooManyRequests:
			c.fault(FaultRateLimit)
			lastErr = fmt.Errorf("%s %s: HTTP %d: %s", method, url, status, errorText(respBody))
			wait = retryAfter(hdr)
		case status >= 500:
			c.fault(FaultServer)
			lastErr = fmt.Errorf("%s %s: HTTP %d: %s", method, url, status, errorText(respBody))
			wait = retryAfter(hdr)
		default:
			return fmt.Errorf("%w: %s %s: HTTP %d: %s", backend.ErrBadRequest, method, url, status, errorText(respBody))
		}
		if attempt >= c.opts.MaxRetries {
			c.gaveUp.Add(1)
			return fmt.Errorf("%w (gave up after %d attempts)", lastErr, attempt+1)
		}
		c.retries.Add(1)
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.BackoffBase << min(attempt, 20)
	if d > c.opts.BackoffMax || d <= 0 {
		d = c.opts.BackoffMax
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped at
// ten minutes.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		d = time.Duration(s * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), 10*time.Minute)
}

func (c *Client) do(ctx context.Context, method, url string, body []byte) ([]byte, int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, 0, nil, err
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if c.opts.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.opts.APIKey)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, 0, nil, fmt.Errorf("read response: %w", err)
	}
	return b, resp.StatusCode, resp.Header, nil
}

func parseResponse(b []byte) (*backend.Response, error) {
	var w wireResponse
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, badBody{fmt.Errorf("server returned invalid JSON (%v): %s", err, snippet(b))}
	}
	if len(w.Choices) == 0 {
		return nil, badBody{fmt.Errorf("server returned no choices: %s", snippet(b))}
	}
	ch := w.Choices[0]
	r := &backend.Response{
		FinishReason:     ch.FinishReason,
		PromptTokens:     w.Usage.PromptTokens,
		CompletionTokens: w.Usage.CompletionTokens,
	}
	switch {
	case ch.Message != nil && ch.Message.Content != nil:
		r.Text = *ch.Message.Content
	case ch.Text != nil:
		r.Text = *ch.Text
	case ch.Message != nil:
		r.Text = "" // a chat message with null content
	default:
		return nil, badBody{fmt.Errorf("server returned a choice without text or message: %s", snippet(b))}
	}
	if m := ch.Message; m != nil {
		switch {
		case m.Reasoning != nil:
			r.Reasoning = *m.Reasoning
		case m.ReasoningContent != nil:
			r.Reasoning = *m.ReasoningContent
		}
	}
	for _, raw := range []json.RawMessage{ch.StopReason, ch.MatchedStop} {
		var s string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
			r.StopString = s
			break
		}
	}
	return r, nil
}

// errorText extracts the message of an OpenAI-style error body.
func errorText(b []byte) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  any             `json:"detail"`
	}
	if json.Unmarshal(b, &e) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		if len(e.Error) > 0 {
			if json.Unmarshal(e.Error, &inner) == nil && inner.Message != "" {
				return inner.Message
			}
			var s string
			if json.Unmarshal(e.Error, &s) == nil && s != "" {
				return s
			}
		}
		if e.Message != "" {
			return e.Message
		}
		if e.Detail != nil {
			return fmt.Sprint(e.Detail)
		}
	}
	return snippet(b)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}

// Embed returns embeddings of texts from the servers' /v1/embeddings, in
// order, with the same retries as Generate.
func (c *Client) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	model, err := c.Model(ctx)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"model": model, "input": texts})
	if err != nil {
		return nil, err
	}
	var out [][]float32
	err = c.post(ctx, "/embeddings", body, func(b []byte) error {
		var w struct {
			Data []struct {
				Index     int       `json:"index"`
				Embedding []float32 `json:"embedding"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			return badBody{fmt.Errorf("server returned invalid JSON (%v): %s", err, snippet(b))}
		}
		if len(w.Data) != len(texts) {
			return fmt.Errorf("server returned %d embeddings for %d texts", len(w.Data), len(texts))
		}
		out = make([][]float32, len(texts))
		for i, d := range w.Data {
			idx := d.Index
			if idx < 0 || idx >= len(texts) || out[idx] != nil {
				idx = i
			}
			out[idx] = d.Embedding
		}
		return nil
	})
	return out, err
}
