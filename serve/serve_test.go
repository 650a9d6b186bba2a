package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/local"
	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/engine"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

// modelDir assembles a servable model folder from the engine's fixtures:
// the tiny Qwen2 weights (vocabulary 512) and the Qwen2 fixture tokenizer.
func modelDir(t testing.TB) string {
	dir := t.TempDir()
	for _, src := range []string{"../engine/testdata/models/qwen2_tiny_bf16", "../engine/tokenizer/testdata/bpe_qwen2"} {
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() == "cases.json" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// testServer serves the fixture model on a local port until the test ends.
func testServer(t testing.TB, opts Options) (base string, b *local.Backend, stop func()) {
	dir := modelDir(t)
	b, err := local.Open(context.Background(), local.Options{Model: dir, MaxBatch: 16})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(b, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("serve: %v", err)
			}
			b.Close()
		})
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), b, stop
}

// reference returns the fixture's greedy reference: prompt ids and the
// text of the generated ids, decoded as the engine streams it.
func reference(t testing.TB, b *local.Backend) ([]int, string, int) {
	f, err := safetensors.Open("../engine/testdata/models/qwen2_tiny_bf16/reference.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := func(name string) []int {
		tt, _ := f.Tensor(name)
		v, err := engine.Int64s(tt)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int, len(v))
		for i, x := range v {
			out[i] = int(x)
		}
		return out
	}
	prompt, gen := ids("prompt_ids"), ids("gen_ids")
	st := b.Tokenizer().NewStream(true)
	var sb strings.Builder
	for _, id := range gen {
		sb.WriteString(st.Add(id))
	}
	sb.WriteString(st.Flush())
	return prompt, sb.String(), len(gen)
}

func post(t testing.TB, url, key string, body any) (*http.Response, []byte) {
	js, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// streamText reads an SSE response and returns each choice's text and
// finish reason.
func streamText(body []byte, chat bool) (map[int]string, map[int]string, error) {
	text, finish := map[int]string{}, map[int]string{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			return nil, nil, fmt.Errorf("not an event line: %q", line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var ev struct {
			Choices []struct {
				Index int    `json:"index"`
				Text  string `json:"text"`
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Error any `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return nil, nil, err
		}
		if ev.Error != nil {
			return nil, nil, fmt.Errorf("error event: %v", ev.Error)
		}
		for _, c := range ev.Choices {
			if chat {
				text[c.Index] += c.Delta.Content
			} else {
				text[c.Index] += c.Text
			}
			if c.FinishReason != nil {
				finish[c.Index] = *c.FinishReason
			}
		}
	}
	if !done {
		return nil, nil, fmt.Errorf("no [DONE]")
	}
	return text, finish, nil
}

// TestLoad: 64 concurrent clients, streaming and not, completions (the
// reference prompt's ids, greedy) and chat; every request is answered and
// agrees with the greedy reference of `model check`.
func TestLoad(t *testing.T) {
	base, b, _ := testServer(t, Options{ModelName: "tiny", APIKey: "k"})
	prompt, want, n := reference(t, b)
	// The chat answer, once, to compare the concurrent ones with.
	chatBody := map[string]any{"model": "tiny", "messages": []map[string]string{{"role": "user", "content": "What is 2+3?"}},
		"max_tokens": 12, "temperature": 0}
	_, cb := post(t, base+"/v1/chat/completions", "k", chatBody)
	var cr struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(cb, &cr); err != nil || len(cr.Choices) != 1 {
		t.Fatalf("chat: %s", cb)
	}
	wantChat := cr.Choices[0].Message.Content

	const clients = 64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := c%2 == 1
			chat := c%4 >= 2
			body := map[string]any{"prompt": prompt, "max_tokens": n, "temperature": 0, "ignore_eos": true, "stream": stream}
			url, expect := base+"/v1/completions", want
			if chat {
				body, url, expect = map[string]any{}, base+"/v1/chat/completions", wantChat
				for k, v := range chatBody {
					body[k] = v
				}
				body["stream"] = stream
			}
			if c%8 == 0 {
				body["n"] = 3
			}
			resp, rb := post(t, url, "k", body)
			if resp == nil {
				errs <- fmt.Errorf("client %d: no response", c)
				return
			}
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("client %d: %d %s", c, resp.StatusCode, rb)
				return
			}
			var texts map[int]string
			if stream {
				var err error
				if texts, _, err = streamText(rb, chat); err != nil {
					errs <- fmt.Errorf("client %d: %v", c, err)
					return
				}
			} else {
				var r struct {
					Choices []struct {
						Index   int                      `json:"index"`
						Text    string                   `json:"text"`
						Message struct{ Content string } `json:"message"`
					} `json:"choices"`
				}
				if err := json.Unmarshal(rb, &r); err != nil {
					errs <- fmt.Errorf("client %d: %v", c, err)
					return
				}
				texts = map[int]string{}
				for _, ch := range r.Choices {
					texts[ch.Index] = ch.Text + ch.Message.Content
				}
			}
			wantN := 1
			if c%8 == 0 {
				wantN = 3
			}
			if len(texts) != wantN {
				errs <- fmt.Errorf("client %d: %d choices, want %d", c, len(texts), wantN)
				return
			}
			for i, got := range texts {
				if got != expect {
					errs <- fmt.Errorf("client %d (stream %v, chat %v) choice %d: %q, want %q", c, stream, chat, i, got, expect)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The metrics saw them.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"crucible_batch_size ", "crucible_queue_length ", "crucible_generation_tokens_per_second ",
		`crucible_requests_total{endpoint="completions",code="200"} 32`, `crucible_requests_total{endpoint="chat",code="200"} 33`} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("metrics lack %q:\n%s", want, mb)
		}
	}
}

// TestErrorsAndAuth: OpenAI-style error JSON for bad requests, 401 without
// the key, /health and /v1/models.
func TestErrorsAndAuth(t *testing.T) {
	base, _, _ := testServer(t, Options{ModelName: "tiny", APIKey: "secret"})
	for _, c := range []struct {
		path, key string
		body      any
		status    int
		param     string
	}{
		{"/v1/completions", "", map[string]any{"prompt": "hi"}, 401, ""},
		{"/v1/completions", "wrong", map[string]any{"prompt": "hi"}, 401, ""},
		{"/v1/completions", "secret", "not an object", 400, ""},
		{"/v1/completions", "secret", map[string]any{"prompt": "hi", "max_tokens": 0}, 400, "max_tokens"},
		{"/v1/completions", "secret", map[string]any{"prompt": "hi", "temperature": -1}, 400, ""},
		{"/v1/completions", "secret", map[string]any{"prompt": []int{1, 99999}}, 400, "prompt"},
		{"/v1/completions", "secret", map[string]any{"model": "other", "prompt": "hi"}, 404, "model"},
		{"/v1/completions", "secret", map[string]any{}, 400, "prompt"},
		{"/v1/chat/completions", "secret", map[string]any{"messages": []any{}}, 400, "messages"},
		{"/v1/completions", "secret", map[string]any{"prompt": "hi", "n": 0}, 400, "n"},
		{"/v1/completions", "secret", map[string]any{"prompt": "hi", "stop": 5}, 400, "stop"},
	} {
		resp, b := post(t, base+c.path, c.key, c.body)
		if resp == nil {
			continue
		}
		var e struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
				Param   any    `json:"param"`
			} `json:"error"`
		}
		if resp.StatusCode != c.status || json.Unmarshal(b, &e) != nil || e.Error.Message == "" || e.Error.Type == "" {
			t.Errorf("%s %v: %d %s, want %d with an error object", c.path, c.body, resp.StatusCode, b, c.status)
			continue
		}
		if c.param != "" && e.Error.Param != c.param {
			t.Errorf("%s %v: param %v, want %q", c.path, c.body, e.Error.Param, c.param)
		}
	}
	for _, p := range []string{"/health"} {
		resp, err := http.Get(base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", p, resp, err)
		}
	}
	req, _ := http.NewRequest("GET", base+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(mb), `"id":"tiny"`) {
		t.Errorf("/v1/models: %s", mb)
	}
}

// TestOpenAIClient: Crucible's own client (what `crucible generate
// --base-url` uses) works against the server, chat and completion.
func TestOpenAIClient(t *testing.T) {
	base, b, _ := testServer(t, Options{ModelName: "tiny"})
	c, err := openai.New(openai.Options{BaseURLs: []string{base + "/v1"}, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	req := &backend.Request{Messages: []backend.Message{{Role: "user", Content: "What is 2+3?"}}, MaxTokens: 10}
	got, err := c.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := b.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != want.Text || got.FinishReason != want.FinishReason || got.CompletionTokens != want.CompletionTokens {
		t.Errorf("through the server %+v, in process %+v", got, want)
	}
	if _, err := c.Generate(ctx, &backend.Request{Prompt: "If Tom has", MaxTokens: 5, Temperature: 0.7, Seed: 3, HasSeed: true}); err != nil {
		t.Error(err)
	}
}

// TestGracefulShutdown: a stream in flight when shutdown begins finishes.
func TestGracefulShutdown(t *testing.T) {
	base, _, stop := testServer(t, Options{ModelName: "tiny"})
	js, _ := json.Marshal(map[string]any{"prompt": "If Tom has", "max_tokens": 200, "ignore_eos": true, "stream": true, "temperature": 0})
	resp, err := http.Post(base+"/v1/completions", "application/json", bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	// The first event has arrived: the request is in flight. Shut down.
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "data: ") {
		t.Fatalf("first event %q: %v", first, err)
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("in-flight stream cut: %v", err)
	}
	if _, finish, err := streamText(append([]byte(first), rest...), false); err != nil || finish[0] != "length" {
		t.Errorf("in-flight stream: %v, finish %v", err, finish)
	}
	<-stopped
	if _, err := http.Get(base + "/health"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

// canned is a Backend that answers every request with the same text, over
// the fixture's model and tokenizer: the server works over any Backend.
type canned struct {
	*local.Backend
	mu      sync.Mutex
	prompts [][]int
}

func (c *canned) Run(ctx context.Context, prompt []int, req *backend.Request, opts local.RunOptions) (*local.Result, error) {
	c.mu.Lock()
	c.prompts = append(c.prompts, prompt)
	c.mu.Unlock()
	if opts.OnText != nil {
		opts.OnText("canned")
	}
	return &local.Result{Response: backend.Response{Text: "canned", FinishReason: backend.FinishStop, PromptTokens: len(prompt), CompletionTokens: 1}}, nil
}

func TestServerOverAnyBackend(t *testing.T) {
	b, err := local.Open(context.Background(), local.Options{Model: modelDir(t), MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := &canned{Backend: b}
	srv := New(c, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	resp, body := post(t, "http://"+ln.Addr().String()+"/v1/completions", "", map[string]any{"prompt": []int{1, 2, 3}, "max_tokens": 4})
	var cr struct {
		Choices []struct {
			Text         string `json:"text"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if resp == nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &cr) != nil || len(cr.Choices) != 1 {
		t.Fatalf("completion: %v %s", resp, body)
	}
	if cr.Choices[0].Text != "canned" || cr.Choices[0].FinishReason != "stop" {
		t.Errorf("choice %+v, want the backend's canned stop", cr.Choices[0])
	}
	if len(c.prompts) != 1 || fmt.Sprint(c.prompts[0]) != "[1 2 3]" {
		t.Errorf("backend ran %v, want one run of [1 2 3]", c.prompts)
	}
}
