// Package serve is Crucible's OpenAI-compatible HTTP server over the
// built-in engine: /v1/completions and /v1/chat/completions (streaming
// with server-sent events, or not; logprobs and top_logprobs; echo with
// prompt logprobs, as likelihood-based evaluation uses), /v1/embeddings
// (mean-pooled final hidden states, unit length), /v1/models, /health and
// Prometheus /metrics. Reasoning models' chains of thought come back
// apart from the answer, in message.reasoning_content (and reasoning), as
// vLLM's reasoning parsers return them. Tools and structured outputs
// (response_format) are refused with a 400, not ignored. It generates with any Backend; with backend/local's, requests
// from all clients share one continuous-batching engine.Batcher, so
// concurrent clients decode in the same forward passes, and n samples of
// one prompt prefill it once.
//
//	b, err := local.Open(ctx, local.Options{Model: "models/Qwen2.5-0.5B-Instruct"})
//	srv := serve.New(b, serve.Options{ModelName: "qwen", APIKey: key})
//	err = srv.ListenAndServe(ctx, "127.0.0.1:8000") // until ctx ends, then drains
package serve

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/local"
	"github.com/crucible-ml/crucible/engine"
	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// Backend is what a Server generates with: the methods it calls, so that
// it serves any implementation. *local.Backend is one.
type Backend interface {
	// Prompt renders a chat request's messages to prompt token ids.
	Prompt(req *backend.Request) ([]int, error)
	// Run generates from prompt token ids with req's sampling settings.
	Run(ctx context.Context, prompt []int, req *backend.Request, opts local.RunOptions) (*local.Result, error)
	// Embed is a token sequence's embedding.
	Embed(ctx context.Context, ids []int) ([]float32, error)
	// SplitReasoning separates a reasoning model's chain of thought from
	// the answer (all answer for other models).
	SplitReasoning(prompt []int, text string) (reasoning, answer string)
	// Model is the model generating (the server checks prompt ids
	// against its vocabulary).
	Model() engine.Model
	// Tokenizer encodes completion prompts given as text.
	Tokenizer() *tokenizer.Tokenizer
	// Stats are the generation counters /metrics reports.
	Stats() *engine.BatcherStats
}

var _ Backend = (*local.Backend)(nil)

// Options configure a Server.
type Options struct {
	// ModelName is the id /v1/models lists and responses carry; requests
	// naming another model are refused. Default: "crucible".
	ModelName string
	// APIKey, when set, is required as "Authorization: Bearer KEY" on /v1/.
	APIKey string
	// MaxN bounds a request's n (samples per prompt); default 128.
	MaxN int
	// ShutdownGrace is how long in-flight requests may run after shutdown
	// begins before they are failed; default 30s.
	ShutdownGrace time.Duration
	// Logger receives request errors (default slog.Default()).
	Logger *slog.Logger
}

// Server answers OpenAI-style requests with a Backend.
type Server struct {
	b       Backend
	opts    Options
	created int64
	mux     *http.ServeMux
	m       metrics

	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup
}

// New makes a server over b (which it does not close).
func New(b Backend, opts Options) *Server {
	if opts.ModelName == "" {
		opts.ModelName = "crucible"
	}
	if opts.MaxN <= 0 {
		opts.MaxN = 128
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{b: b, opts: opts, created: time.Now().Unix(), mux: http.NewServeMux()}
	s.m.start = time.Now()
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	s.mux.HandleFunc("GET /v1/models", s.auth(s.models))
	s.mux.HandleFunc("POST /v1/completions", s.auth(s.track("completions", s.completions)))
	s.mux.HandleFunc("POST /v1/chat/completions", s.auth(s.track("chat", s.chatCompletions)))
	s.mux.HandleFunc("POST /v1/embeddings", s.auth(s.track("embeddings", s.embeddings)))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return s
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// ListenAndServe serves on addr until ctx ends, then shuts down gracefully:
// it stops accepting connections, lets in-flight requests finish for up to
// ShutdownGrace, and returns. Requests still running after that are
// failed by closing their connections.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is ListenAndServe on a listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx) // waits for in-flight handlers (streams included)
	if errors.Is(err, context.DeadlineExceeded) {
		hs.Close()
		err = nil
	}
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{
		{"id": s.opts.ModelName, "object": "model", "created": s.created, "owned_by": "crucible"},
	}})
}

// auth checks the bearer token when an API key is set.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.opts.APIKey == "" {
		return h
	}
	want := []byte("Bearer " + s.opts.APIKey)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(strings.TrimSpace(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			s.m.requests.inc("unauthorized")
			writeError(w, http.StatusUnauthorized, "authentication_error", "invalid or missing API key (Authorization: Bearer KEY)")
			return
		}
		h(w, r)
	}
}

// track counts a generation request in the metrics and in the drain
// group.
func (s *Server) track(endpoint string, h func(http.ResponseWriter, *http.Request) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Done()
		s.m.inflight.Add(1)
		defer s.m.inflight.Add(-1)
		start := time.Now()
		code := h(w, r)
		s.m.requests.inc(fmt.Sprintf(`endpoint="%s",code="%d"`, endpoint, code))
		s.m.latency.observe(time.Since(start).Seconds())
	}
}

// metrics writes the Prometheus text format.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	st := s.b.Stats()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	inflight := s.m.inflight.Load()
	running := st.Running.Load()
	gen := st.GeneratedTokens.Load()
	fmt.Fprintf(w, "# HELP crucible_requests_in_flight Generation requests being answered (queued or running).\n# TYPE crucible_requests_in_flight gauge\ncrucible_requests_in_flight %d\n", inflight)
	fmt.Fprintf(w, "# HELP crucible_queue_length Requests waiting for a batch slot.\n# TYPE crucible_queue_length gauge\ncrucible_queue_length %d\n", max(0, s.m.pending.Load()-running))
	fmt.Fprintf(w, "# HELP crucible_batch_size Sequences in the running batch.\n# TYPE crucible_batch_size gauge\ncrucible_batch_size %d\n", running)
	fmt.Fprintf(w, "# HELP crucible_steps_total Forward steps of the batcher.\n# TYPE crucible_steps_total counter\ncrucible_steps_total %d\n", st.Steps.Load())
	fmt.Fprintf(w, "# HELP crucible_prompt_tokens_total Prompt tokens prefilled.\n# TYPE crucible_prompt_tokens_total counter\ncrucible_prompt_tokens_total %d\n", st.PromptTokens.Load())
	fmt.Fprintf(w, "# HELP crucible_cached_prompt_tokens_total Prompt tokens taken from the prefix cache or a fork.\n# TYPE crucible_cached_prompt_tokens_total counter\ncrucible_cached_prompt_tokens_total %d\n", st.CachedTokens.Load())
	fmt.Fprintf(w, "# HELP crucible_generation_tokens_total Tokens generated.\n# TYPE crucible_generation_tokens_total counter\ncrucible_generation_tokens_total %d\n", gen)
	fmt.Fprintf(w, "# HELP crucible_generation_tokens_per_second Tokens generated per second since the last scrape (or the start).\n# TYPE crucible_generation_tokens_per_second gauge\ncrucible_generation_tokens_per_second %g\n", s.m.rate(gen))
	fmt.Fprintf(w, "# HELP crucible_requests_total Requests answered, by endpoint and status code.\n# TYPE crucible_requests_total counter\n")
	s.m.requests.write(w, "crucible_requests_total")
	fmt.Fprintf(w, "# HELP crucible_request_seconds Request latency.\n# TYPE crucible_request_seconds histogram\n")
	s.m.latency.write(w, "crucible_request_seconds")
}

// metrics are the server's Prometheus counters.
type metrics struct {
	inflight atomic.Int64
	pending  atomic.Int64 // sequences submitted to the batcher and not done
	requests counterVec
	latency  histogram

	mu       sync.Mutex
	start    time.Time
	lastT    time.Time
	lastToks int64
}

// rate is the generated tokens per second since the previous call.
func (m *metrics) rate(total int64) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	t0 := m.lastT
	if t0.IsZero() {
		t0 = m.start
	}
	r := float64(total-m.lastToks) / max(now.Sub(t0).Seconds(), 1e-9)
	m.lastT, m.lastToks = now, total
	return r
}

type counterVec struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counterVec) inc(labels string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[labels]++
	c.mu.Unlock()
}

func (c *counterVec) write(w http.ResponseWriter, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for l, v := range c.m {
		if !strings.Contains(l, "=") {
			l = fmt.Sprintf(`reason="%s"`, l)
		}
		fmt.Fprintf(w, "%s{%s} %d\n", name, l, v)
	}
}

var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

type histogram struct {
	mu     sync.Mutex
	counts [13]int64
	sum    float64
	n      int64
}

func (h *histogram) observe(v float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := 0
	for i < len(latencyBuckets) && v > latencyBuckets[i] {
		i++
	}
	h.counts[i]++
	h.sum += v
	h.n++
}

func (h *histogram) write(w http.ResponseWriter, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var cum int64
	for i, b := range latencyBuckets {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, b, cum)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, h.n, name, h.sum, name, h.n)
}
