package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/backend"
)

func newClient(t *testing.T, urls ...string) *Client {
	t.Helper()
	c, err := New(Options{BaseURLs: urls, Model: "m", BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxRetries: 3})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChatAndCompletionRequests(t *testing.T) {
	var got []map[string]any
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		got = append(got, m)
		paths = append(paths, r.URL.Path)
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(401)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"stop","stop_reason":"</x>"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`)
			return
		}
		io.WriteString(w, `{"choices":[{"text":"yo","finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":5}}`)
	}))
	defer srv.Close()
	c, _ := New(Options{BaseURLs: []string{srv.URL}, Model: "m", APIKey: "k"})
	r, err := c.Generate(context.Background(), &backend.Request{Messages: []backend.Message{{Role: "user", Content: "q"}}, MaxTokens: 9, Temperature: 0.7, TopP: 0.95, TopK: 20, Seed: 5, HasSeed: true, Stop: []string{"</x>"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != "hi" || r.FinishReason != "stop" || r.CompletionTokens != 1 || r.StopString != "</x>" {
		t.Fatalf("resp %+v", r)
	}
	r, err = c.Generate(context.Background(), &backend.Request{Prompt: "p", MaxTokens: 5})
	if err != nil || r.Text != "yo" || r.FinishReason != "length" {
		t.Fatalf("resp %+v %v", r, err)
	}
	if paths[0] != "/v1/chat/completions" || paths[1] != "/v1/completions" {
		t.Fatalf("paths %v", paths)
	}
	if got[0]["seed"] != 5.0 || got[0]["top_k"] != 20.0 || got[0]["top_p"] != 0.95 || got[0]["max_tokens"] != 9.0 || got[0]["model"] != "m" {
		t.Fatalf("chat body %v", got[0])
	}
	if _, ok := got[1]["seed"]; ok {
		t.Fatalf("seed sent without HasSeed: %v", got[1])
	}
	if got[1]["temperature"] != 0.0 || got[1]["prompt"] != "p" {
		t.Fatalf("completion body %v", got[1])
	}
}

func TestRetriesHonourRetryAfterAndSpreadServers(t *testing.T) {
	var calls atomic.Int32
	var hits [2]atomic.Int32
	mk := func(i int) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			switch calls.Add(1) {
			case 1:
				w.Header().Set("Retry-After", "0.05")
				w.WriteHeader(429)
			case 2:
				w.WriteHeader(503)
			default:
				io.WriteString(w, `{"choices":[{"text":"ok","finish_reason":"stop"}]}`)
			}
		}))
	}
	a, b := mk(0), mk(1)
	defer a.Close()
	defer b.Close()
	c := newClient(t, a.URL, b.URL+"/v1")
	start := time.Now()
	r, err := c.Generate(context.Background(), &backend.Request{Prompt: "x"})
	if err != nil || r.Text != "ok" {
		t.Fatalf("%+v %v", r, err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("Retry-After not honoured")
	}
	if hits[0].Load() == 0 || hits[1].Load() == 0 {
		t.Fatalf("retries did not move across servers: %d %d", hits[0].Load(), hits[1].Load())
	}
}

func TestFailures(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(400)
		io.WriteString(w, `{"error":{"message":"max_tokens too large"}}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	_, err := c.Generate(context.Background(), &backend.Request{Prompt: "x"})
	if !errors.Is(err, backend.ErrBadRequest) || !strings.Contains(err.Error(), "max_tokens too large") || calls.Load() != 1 {
		t.Fatalf("400: err %v after %d calls", err, calls.Load())
	}

	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<html>oops</html>`)
	}))
	defer garbage.Close()
	_, err = newClient(t, garbage.URL).Generate(context.Background(), &backend.Request{Prompt: "x"})
	if err == nil || !strings.Contains(err.Error(), "invalid JSON") || !strings.Contains(err.Error(), "oops") {
		t.Fatalf("garbage: %v", err)
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	_, err = newClient(t, url).Generate(context.Background(), &backend.Request{Prompt: "x"})
	if err == nil || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestModelDiscovery(t *testing.T) {
	var model string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			io.WriteString(w, `{"object":"list","data":[{"id":"qwen","object":"model"}]}`)
			return
		}
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		model, _ = m["model"].(string)
		io.WriteString(w, `{"choices":[{"text":"ok","finish_reason":"stop"}]}`)
	}))
	defer srv.Close()
	c, _ := New(Options{BaseURLs: []string{srv.URL}})
	if _, err := c.Generate(context.Background(), &backend.Request{Prompt: "x"}); err != nil || model != "qwen" {
		t.Fatalf("model %q err %v", model, err)
	}
}

func TestEmbed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Input []string `json:"input"`
			Model string   `json:"model"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if r.URL.Path != "/v1/embeddings" || req.Model != "m" {
			w.WriteHeader(400)
			return
		}
		// Out of order on purpose: the index decides.
		io.WriteString(w, `{"data":[{"index":1,"embedding":[0,1]},{"index":0,"embedding":[1,0]}]}`)
	}))
	defer srv.Close()
	v, err := newClient(t, srv.URL).Embed(context.Background(), []string{"a", "b"})
	if err != nil || len(v) != 2 || v[0][0] != 1 || v[1][1] != 1 {
		t.Fatalf("%v %v", v, err)
	}
}

func TestKeyFromEnv(t *testing.T) {
	t.Setenv(DefaultKeyEnv, "default-key")
	t.Setenv("CRUCIBLE_TEST_KEY", "named-key")
	t.Setenv("CRUCIBLE_TEST_EMPTY", "")
	for _, tc := range []struct {
		name, want string
		err        bool
	}{
		{"", "default-key", false},
		{"CRUCIBLE_TEST_KEY", "named-key", false},
		{"CRUCIBLE_TEST_EMPTY", "", true},
		{"CRUCIBLE_TEST_UNSET", "", true},
	} {
		got, err := KeyFromEnv(tc.name)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("KeyFromEnv(%q) = %q, %v", tc.name, got, err)
		}
	}
}

// TestFaultClasses: each class of fault a real server produces is retried
// and counted under its class; the request then succeeds.
func TestFaultClasses(t *testing.T) {
	faults := []func(w http.ResponseWriter){
		func(w http.ResponseWriter) { w.WriteHeader(503) },
		func(w http.ResponseWriter) { w.Header().Set("Retry-After", "0"); w.WriteHeader(429) },
		func(w http.ResponseWriter) { io.WriteString(w, `<html><body>502 Bad Gateway</body></html>`) }, // a 200 with an HTML page
		func(w http.ResponseWriter) { io.WriteString(w, `{"choices":[]}`) },                            // no choices
		func(w http.ResponseWriter) { // a body cut mid-JSON: the connection closes early
			w.Header().Set("Content-Length", "400")
			io.WriteString(w, `{"choices":[{"message":{"content":"h`)
		},
		func(w http.ResponseWriter) { // a dropped connection
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		},
		func(w http.ResponseWriter) { time.Sleep(300 * time.Millisecond) }, // a stall past the attempt timeout
	}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if i := int(n.Add(1)) - 1; i < len(faults) {
			faults[i](w)
			return
		}
		io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
	}))
	defer srv.Close()
	c, _ := New(Options{BaseURLs: []string{srv.URL}, Model: "m", BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond,
		MaxRetries: len(faults), Timeout: 100 * time.Millisecond})
	r, err := c.Generate(context.Background(), &backend.Request{Messages: []backend.Message{{Role: "user", Content: "q"}}})
	if err != nil || r.Text != "ok" {
		t.Fatalf("after the faults: %+v %v", r, err)
	}
	f := c.Faults()
	want := map[string]int64{FaultServer: 1, FaultRateLimit: 1, FaultBadBody: 2, FaultConnection: 2, FaultTimeout: 1}
	for k, v := range want {
		if f.ByClass[k] != v {
			t.Errorf("%s: %d faults, want %d (all: %v)", k, f.ByClass[k], v, f.ByClass)
		}
	}
	if f.Retries != int64(len(faults)) || f.Attempts != int64(len(faults)+1) || f.GaveUp != 0 {
		t.Errorf("stats %+v", f)
	}
}

// TestModelDiscoveryRetries: /v1/models failing while a server warms up is
// retried, and a failure is not kept.
func TestModelDiscoveryRetries(t *testing.T) {
	var modelCalls atomic.Int32
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			if modelCalls.Add(1) <= 2 || down.Load() {
				w.WriteHeader(503)
				return
			}
			io.WriteString(w, `{"data":[{"id":"qwen"}]}`)
			return
		}
		io.WriteString(w, `{"choices":[{"text":"ok","finish_reason":"stop"}]}`)
	}))
	defer srv.Close()
	c, _ := New(Options{BaseURLs: []string{srv.URL}, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond, MaxRetries: 3})
	if m, err := c.Model(context.Background()); err != nil || m != "qwen" {
		t.Fatalf("model %q, %v", m, err)
	}
	// A client whose discovery failed for good asks again next time.
	down.Store(true)
	c2, _ := New(Options{BaseURLs: []string{srv.URL}, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond, MaxRetries: 1})
	if _, err := c2.Model(context.Background()); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("down: %v", err)
	}
	down.Store(false)
	if m, err := c2.Model(context.Background()); err != nil || m != "qwen" {
		t.Fatalf("after the server came up: %q, %v", m, err)
	}
}

// TestReasoning: the chain of thought in message.reasoning or
// reasoning_content is kept apart from the answer; null content is an
// empty answer, not a failure.
func TestReasoning(t *testing.T) {
	for _, tc := range []struct{ body, reasoning, text string }{
		{`{"choices":[{"message":{"role":"assistant","reasoning":"think a","content":"42"},"finish_reason":"stop"}]}`, "think a", "42"},
		{`{"choices":[{"message":{"role":"assistant","reasoning_content":"think b","content":"7"},"finish_reason":"stop"}]}`, "think b", "7"},
		{`{"choices":[{"message":{"role":"assistant","reasoning_content":"cut off","content":null},"finish_reason":"length"}]}`, "cut off", ""},
	} {
		r, err := parseResponse([]byte(tc.body))
		if err != nil || r.Reasoning != tc.reasoning || r.Text != tc.text {
			t.Errorf("%s: %+v %v", tc.body, r, err)
		}
	}
}
