package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/solve"
)

// BackendResult is the result of Backend.
type BackendResult struct {
	Requests        int     `json:"requests"`
	Concurrency     int     `json:"concurrency"`
	GOMAXPROCS      int     `json:"gomaxprocs"`
	BareRPS         float64 `json:"bare_http_requests_per_s"`
	FullRPS         float64 `json:"generate_requests_per_s"`
	Ratio           float64 `json:"ratio"`
	BareSeconds     float64 `json:"bare_http_seconds"`
	GenerateSeconds float64 `json:"generate_seconds"`
}

// Backend measures the whole generate path (read rows, render the
// prompt, HTTP through the OpenAI client, write rows) against an in-process
// server that answers at once, next to a bare HTTP loop sending the same
// number of requests to the same server.
func Backend(ctx context.Context, requests, concurrency int, tmpDir string) (*BackendResult, error) {
	resp := []byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"The answer is \\boxed{42}."},"finish_reason":"stop"}],"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(resp)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/v1"
	res := &BackendResult{Requests: requests, Concurrency: concurrency, GOMAXPROCS: runtime.GOMAXPROCS(0)}

	// The bare loop: the same pool settings as the client, a fixed body.
	p, err := prompt.Load("math/cot")
	if err != nil {
		return nil, err
	}
	msgs, _ := p.Messages(mapRow{"problem": "What is 6 times 7?"})
	body, _, _ := openai.EncodeRequest("bench", &backend.Request{Messages: msgs, MaxTokens: 512, Temperature: 0.7, TopP: 0.95, Seed: 1, HasSeed: true})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: concurrency + 1, MaxIdleConnsPerHost: concurrency + 1, DisableCompression: true}}
	var left atomic.Int64
	left.Store(int64(requests))
	var wg sync.WaitGroup
	var bareErr atomic.Value
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat/completions", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				r, err := hc.Do(req)
				if err != nil {
					bareErr.Store(err)
					return
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
		}()
	}
	wg.Wait()
	res.BareSeconds = time.Since(start).Seconds()
	if err, ok := bareErr.Load().(error); ok {
		return nil, fmt.Errorf("bare loop: %w", err)
	}
	hc.CloseIdleConnections()

	// The full path.
	in := filepath.Join(tmpDir, "bench-in.jsonl")
	out := filepath.Join(tmpDir, "bench-out.jsonl")
	os.Remove(out)
	f, err := os.Create(in)
	if err != nil {
		return nil, err
	}
	for i := range requests {
		fmt.Fprintf(f, `{"id":"b%d","problem":"What is %d times 7?","expected_answer":"%d","level":"Level 1"}`+"\n", i, i, 7*i)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	be, err := openai.New(openai.Options{BaseURLs: []string{base}, Model: "bench", Concurrency: concurrency})
	if err != nil {
		return nil, err
	}
	defer be.Close()
	start = time.Now()
	st, err := solve.Run(ctx, solve.Options{
		Input: in, Output: out, Prompt: p, Backend: be, Concurrency: concurrency, Samples: 1, Label: "bench generate",
		Params: backend.Request{MaxTokens: 512, Temperature: 0.7, TopP: 0.95},
	})
	res.GenerateSeconds = time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}
	if st.Written != requests || st.Errors != 0 {
		return nil, fmt.Errorf("generate wrote %d rows with %d errors, want %d", st.Written, st.Errors, requests)
	}
	res.BareRPS = float64(requests) / res.BareSeconds
	res.FullRPS = float64(requests) / res.GenerateSeconds
	res.Ratio = res.FullRPS / res.BareRPS
	return res, nil
}

type mapRow map[string]string

func (m mapRow) Text(k string) (string, bool) { v, ok := m[k]; return v, ok }
