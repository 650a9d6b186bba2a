package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// post sends a raw /execute request the way NeMo-Skills' client does.
func post(t *testing.T, url, session, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/execute", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if session != "" {
		req.Header.Set("X-Session-ID", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("reply %q: %v", data, err)
	}
	return resp.StatusCode, out
}

func TestServerAPI(t *testing.T) {
	p := sharedPool(t)
	srv := httptest.NewServer(NewServer(p, ServerOptions{}))
	defer srv.Close()

	code, out := post(t, srv.URL, "http-1", `{"generated_code": "x = 6\nprint(x * 7)", "timeout": 10, "language": "ipython", "max_output_characters": 1000}`)
	want := map[string]any{"process_status": "completed", "stdout": "42\n", "stderr": "", "new_session_created": true}
	if code != 200 || !equalJSON(out, want) {
		t.Fatalf("first call: %d %v, want %v", code, out, want)
	}
	code, out = post(t, srv.URL, "http-1", `{"generated_code": "x + 1"}`)
	want = map[string]any{"process_status": "completed", "stdout": "7\n", "stderr": "", "new_session_created": false}
	if code != 200 || !equalJSON(out, want) {
		t.Fatalf("second call: %d %v, want %v", code, out, want)
	}
	code, out = post(t, srv.URL, "http-1", `{"generated_code": "import time; time.sleep(5)", "timeout": 0.2}`)
	if code != 200 || out["process_status"] != "timeout" || !strings.Contains(out["stderr"].(string), "timed out") {
		t.Fatalf("timeout: %d %v", code, out)
	}
	code, out = post(t, srv.URL, "", `{"generated_code": "print(input())", "language": "python", "std_input": "in\n"}`)
	if code != 200 || out["stdout"] != "in\n" {
		t.Fatalf("no session, stdin: %d %v", code, out)
	}
	code, out = post(t, srv.URL, "", `{"generated_code": "print('a' * 20)", "max_output_characters": 5}`)
	if code != 200 || out["stdout"] != "aaaaa<output cut>" {
		t.Fatalf("output cap: %d %v", code, out)
	}
	if code, out = post(t, srv.URL, "", `{"generated_code": "1", "language": "lean4"}`); code != 400 || out["process_status"] != "failed" {
		t.Fatalf("lean4: %d %v", code, out)
	}
	if code, _ = post(t, srv.URL, "", `{"generated_code": `); code != 400 {
		t.Fatalf("bad body: %d", code)
	}

	var health map[string]any
	getJSON(t, srv.URL+"/health", &health)
	if health["status"] != "healthy" || health["isolated"] != true {
		t.Fatalf("health: %v", health)
	}
	var sessions struct{ Sessions []SessionInfo }
	getJSON(t, srv.URL+"/sessions", &sessions)
	found := false
	for _, s := range sessions.Sessions {
		found = found || s.ID == "http-1" && s.Executions == 3
	}
	if !found {
		t.Fatalf("sessions: %+v, want http-1 with 3 executions", sessions)
	}

	c := &Client{BaseURL: srv.URL}
	if err := c.EndSession(context.Background(), "http-1"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/sessions/http-1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second delete: HTTP %d, want 404", resp.StatusCode)
	}
	res, err := c.Execute(context.Background(), "http-1", "'x' in globals()", ExecOptions{})
	if err != nil || res.Stdout != "False\n" || !res.NewSession {
		t.Fatalf("after delete: %+v %v", res, err)
	}
	c.EndSession(context.Background(), "http-1")
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func equalJSON(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestServerAPIKey(t *testing.T) {
	p := sharedPool(t)
	srv := httptest.NewServer(NewServer(p, ServerOptions{APIKey: "s3cret"}))
	defer srv.Close()
	defer p.CloseSession("auth")
	for _, key := range []string{"", "wrong"} {
		c := &Client{BaseURL: srv.URL, APIKey: key}
		if _, err := c.Execute(context.Background(), "auth", "1", ExecOptions{}); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("key %q: err = %v, want HTTP 401", key, err)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/sessions", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("key %q: GET /sessions: HTTP %d, want 401", key, resp.StatusCode)
		}
	}
	c := &Client{BaseURL: srv.URL, APIKey: "s3cret"}
	res, err := c.Execute(context.Background(), "auth", "6 * 7", ExecOptions{})
	if err != nil || res.Stdout != "42\n" {
		t.Fatalf("with the key: %+v %v", res, err)
	}
	if err := c.EndSession(context.Background(), "auth"); err != nil {
		t.Fatal(err)
	}
	// Health checks need no key.
	var health map[string]any
	getJSON(t, srv.URL+"/health", &health)
	if health["status"] != "healthy" {
		t.Fatalf("health: %v", health)
	}
}

// TestServerBusy fills a pool of two sessions with running blocks: a third
// session gets 503 with Retry-After, which the client returns as a
// *BusyError.
func TestServerBusy(t *testing.T) {
	p := newTestPool(t, Config{MaxSessions: 2, IdleTimeout: -1, WarmWorkers: 1, Preload: []string{}})
	srv := httptest.NewServer(NewServer(p, ServerOptions{}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL}
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Execute(context.Background(), id, "import time; time.sleep(1.5)", ExecOptions{})
		}()
	}
	waitFor(t, 5*time.Second, "two busy sessions", func() bool {
		n := 0
		for _, s := range p.Sessions() {
			if s.Busy {
				n++
			}
		}
		return n == 2
	})
	code, out := post(t, srv.URL, "c", `{"generated_code": "1"}`)
	if code != http.StatusServiceUnavailable || out["process_status"] != "failed" {
		t.Errorf("raw: %d %v, want 503", code, out)
	}
	_, err := c.Execute(context.Background(), "c", "1", ExecOptions{})
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrTooManySessions) || busy.RetryAfter != time.Second || RetryAfter(err) != time.Second {
		t.Errorf("client: err = %#v, want a *BusyError with RetryAfter 1s", err)
	}
	wg.Wait()
	// Idle now: the new session evicts one.
	if res, err := c.Execute(context.Background(), "c", "1", ExecOptions{}); err != nil || res.Stdout != "1\n" {
		t.Errorf("after the blocks: %+v %v", res, err)
	}
}
