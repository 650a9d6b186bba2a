package sandbox

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ExecuteRequest is the body of POST /execute, as NeMo-Skills clients send it.
type ExecuteRequest struct {
	GeneratedCode       string  `json:"generated_code"`
	Timeout             float64 `json:"timeout,omitempty"` // seconds
	Language            string  `json:"language,omitempty"`
	StdInput            string  `json:"std_input,omitempty"`
	MaxOutputCharacters int     `json:"max_output_characters,omitempty"`
}

// ExecuteResponse is the reply to POST /execute. ProcessStatus is
// completed, error or timeout; "failed" marks a request the sandbox could not
// run (the HTTP status then says why).
type ExecuteResponse struct {
	ProcessStatus     string `json:"process_status"`
	Stdout            string `json:"stdout"`
	Stderr            string `json:"stderr"`
	NewSessionCreated bool   `json:"new_session_created"`
	// OutOfMemory: the session was killed for passing its memory limit
	// (an addition to NeMo-Skills' reply).
	OutOfMemory bool `json:"out_of_memory,omitempty"`
}

// SessionHeader names the HTTP header that carries the session id.
const SessionHeader = "X-Session-ID"

// ServerOptions configure the HTTP API of a pool.
type ServerOptions struct {
	// APIKey, when set, is required as "Authorization: Bearer KEY" on every
	// endpoint but GET /health.
	APIKey string
	// Logger receives Serve's log lines; default slog.Default().
	Logger *slog.Logger
}

// NewServer returns the HTTP API of a pool, compatible with NeMo-Skills'
// sandbox: POST /execute, GET /health, GET /sessions, DELETE /sessions/{id}.
// When the pool has no room for a new session (every session is running a
// block), /execute answers 503 with a Retry-After header.
func NewServer(p *Pool, opts ServerOptions) http.Handler {
	mux := http.NewServeMux()
	auth := authorize(opts.APIKey)
	mux.HandleFunc("POST /execute", auth(func(w http.ResponseWriter, r *http.Request) {
		var req ExecuteRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 10<<20))
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, ExecuteResponse{ProcessStatus: "failed", Stderr: "bad request body: " + err.Error()})
			return
		}
		opts := ExecOptions{
			Timeout:        time.Duration(req.Timeout * float64(time.Second)),
			Stdin:          req.StdInput,
			MaxOutputChars: req.MaxOutputCharacters,
			Language:       req.Language,
		}
		res, err := p.Execute(r.Context(), r.Header.Get(SessionHeader), req.GeneratedCode, opts)
		if err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, ErrUnsupportedLanguage):
				code = http.StatusBadRequest
			case errors.Is(err, ErrTooManySessions):
				code = http.StatusServiceUnavailable
				ra := max(RetryAfter(err), time.Second)
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ra.Seconds()))))
			case errors.Is(err, ErrClosed):
				code = http.StatusServiceUnavailable
			}
			writeJSON(w, code, ExecuteResponse{ProcessStatus: "failed", Stderr: err.Error(), NewSessionCreated: res.NewSession})
			return
		}
		writeJSON(w, http.StatusOK, ExecuteResponse{ProcessStatus: string(res.Status), Stdout: res.Stdout,
			Stderr: res.Stderr, NewSessionCreated: res.NewSession, OutOfMemory: res.OutOfMemory})
	}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "healthy", "sessions": len(p.Sessions()),
			"warm_workers": p.WarmWorkers(), "isolated": p.Isolated(), "cgroups": p.cg != nil,
			"max_sessions": p.cfg.MaxSessions, "evicted": p.Evicted()})
	})
	mux.HandleFunc("GET /sessions", auth(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"sessions": p.Sessions()})
	}))
	mux.HandleFunc("DELETE /sessions/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !p.CloseSession(id) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no session " + id})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "deleted", "id": id})
	}))
	return mux
}

// authorize wraps handlers to require "Authorization: Bearer key" (nothing
// when key is empty).
func authorize(key string) func(http.HandlerFunc) http.HandlerFunc {
	if key == "" {
		return func(h http.HandlerFunc) http.HandlerFunc { return h }
	}
	want := []byte("Bearer " + key)
	return func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			got := []byte(strings.TrimSpace(r.Header.Get("Authorization")))
			if subtle.ConstantTimeCompare(got, want) != 1 {
				writeJSON(w, http.StatusUnauthorized, ExecuteResponse{ProcessStatus: "failed",
					Stderr: "invalid or missing API key (Authorization: Bearer KEY)"})
				return
			}
			h(w, r)
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Serve serves the pool's HTTP API on ln until ctx ends, then shuts the
// server down (running requests get a few seconds to finish).
func Serve(ctx context.Context, ln net.Listener, p *Pool, opts ServerOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{Handler: NewServer(p, opts), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("sandbox: serving", "addr", ln.Addr().String(), "isolated", p.Isolated(), "auth", opts.APIKey != "",
		"max_sessions", p.cfg.MaxSessions, "cgroups", p.cg != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("sandbox: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("sandbox: shutdown: %w", err)
	}
	return nil
}

// Client talks to a sandbox server (this package's or NeMo-Skills'). Its
// Execute has the same meaning as Pool.Execute; a server with no room for
// another session gives a *BusyError carrying its Retry-After.
type Client struct {
	BaseURL string       // e.g. http://127.0.0.1:6000
	HTTP    *http.Client // default: http.DefaultClient
	APIKey  string       // sent as "Authorization: Bearer KEY" when set
}

// Execute runs code in a session of the server; see Pool.Execute.
func (c *Client) Execute(ctx context.Context, sessionID, code string, opts ExecOptions) (Result, error) {
	body, _ := json.Marshal(ExecuteRequest{GeneratedCode: code, Timeout: opts.Timeout.Seconds(),
		Language: opts.Language, StdInput: opts.Stdin, MaxOutputCharacters: opts.MaxOutputChars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/execute", bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("sandbox client: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sessionID != "" {
		req.Header.Set(SessionHeader, sessionID)
	}
	c.authorize(req)
	start := time.Now()
	resp, err := c.http().Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("sandbox client: execute: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return Result{}, fmt.Errorf("sandbox client: read reply: %w", err)
	}
	var er ExecuteResponse
	jerr := json.Unmarshal(data, &er)
	if resp.StatusCode == http.StatusServiceUnavailable && (resp.Header.Get("Retry-After") != "" ||
		strings.Contains(er.Stderr, ErrTooManySessions.Error())) {
		msg := strings.TrimSpace(er.Stderr)
		if msg == "" {
			msg = "HTTP 503"
		}
		return Result{}, &BusyError{RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After")), Msg: "sandbox client: " + msg}
	}
	if jerr != nil {
		return Result{}, fmt.Errorf("sandbox client: HTTP %d: bad reply %.200q: %w", resp.StatusCode, data, jerr)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return Result{}, fmt.Errorf("sandbox client: HTTP 401: %s (the server wants an API key)", er.Stderr)
	}
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("sandbox client: HTTP %d: %s", resp.StatusCode, er.Stderr)
	}
	return Result{Status: Status(er.ProcessStatus), Stdout: er.Stdout, Stderr: er.Stderr,
		NewSession: er.NewSessionCreated, OutOfMemory: er.OutOfMemory, Duration: time.Since(start)}, nil
}

// parseRetryAfter reads a Retry-After header in seconds (0: none or an
// HTTP date, which this server never sends).
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || n < 0 || n > 3600 {
		return 0
	}
	return time.Duration(n * float64(time.Second))
}

func (c *Client) authorize(req *http.Request) {
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
}

// EndSession ends a session on the server; a session the server does not
// know is not an error.
func (c *Client) EndSession(ctx context.Context, sessionID string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete,
		strings.TrimRight(c.BaseURL, "/")+"/sessions/"+url.PathEscape(sessionID), nil)
	if err != nil {
		return fmt.Errorf("sandbox client: %w", err)
	}
	c.authorize(req)
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("sandbox client: delete session: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("sandbox client: delete session: HTTP %d", resp.StatusCode)
	}
	return nil
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}
