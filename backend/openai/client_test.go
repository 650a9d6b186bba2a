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
