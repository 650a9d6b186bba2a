package synth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/backend"
)

var qualityRE = regexp.MustCompile(`q=(-?[0-9.]+)`)

// rewardServer answers like nvidia/nemotron-4-340b-reward on NIM: the
// attribute scores in choices[0].logprobs.content[] and again as text in
// message.content. The helpfulness score is the response's "q=" value. A
// response with "flaky" fails once with 503; "broken" gets 400; "textonly"
// has null logprobs (scores only in the content).
type rewardServer struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	flaky map[string]bool
	calls int
}

func newRewardServer(t *testing.T) *rewardServer {
	rs := &rewardServer{t: t, flaky: map[string]bool{}}
	rs.srv = httptest.NewServer(http.HandlerFunc(rs.handle))
	t.Cleanup(rs.srv.Close)
	return rs
}

func (rs *rewardServer) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Model    string            `json:"model"`
		Messages []backend.Message `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) < 2 || req.Messages[len(req.Messages)-1].Role != "assistant" {
		http.Error(w, `{"error":"the last message must be from the assistant"}`, http.StatusBadRequest)
		return
	}
	resp := req.Messages[len(req.Messages)-1].Content
	rs.mu.Lock()
	rs.calls++
	flakyOnce := regexp.MustCompile(`flaky`).MatchString(resp) && !rs.flaky[resp]
	rs.flaky[resp] = true
	rs.mu.Unlock()
	if flakyOnce {
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
		return
	}
	if regexp.MustCompile(`broken`).MatchString(resp) {
		http.Error(w, `{"error":{"message":"input too long"}}`, http.StatusBadRequest)
		return
	}
	h := 2.0
	if m := qualityRE.FindStringSubmatch(resp); m != nil {
		h, _ = strconv.ParseFloat(m[1], 64)
	}
	scores := [][2]any{{"helpfulness", h}, {"correctness", h / 2}, {"coherence", 3.3125}, {"complexity", 0.546875}, {"verbosity", 0.515625}}
	var content []map[string]any
	text := ""
	for i, s := range scores {
		content = append(content, map[string]any{"token": s[0], "logprob": s[1], "top_logprobs": []any{}})
		if i > 0 {
			text += ","
		}
		text += fmt.Sprintf("%s:%v", s[0], s[1])
	}
	var logprobs any = map[string]any{"content": content}
	if regexp.MustCompile(`textonly`).MatchString(resp) {
		logprobs = nil
	}
	out, _ := json.Marshal(map[string]any{
		"id": "chat-1", "object": "chat.completion", "created": 1718000000, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "logprobs": logprobs, "finish_reason": "length",
			"message": map[string]any{"role": "assistant", "content": text}}},
		"usage": map[string]any{"completion_tokens": 1, "prompt_tokens": 52, "total_tokens": 53},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func (rs *rewardServer) client() *RewardClient {
	return &RewardClient{BaseURL: rs.srv.URL + "/v1", Model: "nvidia/nemotron-4-340b-reward", MaxRetries: 2, BackoffBase: time.Millisecond}
}

func wantReward(h float64) float64 {
	return CombineReward(map[string]float64{"helpfulness": h, "correctness": h / 2, "coherence": 3.3125,
		"complexity": 0.546875, "verbosity": 0.515625}, DefaultRewardWeights)
}

func TestRewardNemotron(t *testing.T) {
	in := writeJSONL(t,
		`{"id":"p1","prompt":"Q1","generation":"answer q=3.5","sample":0}`,
		`{"id":"p1","prompt":"Q1","generation":"answer q=1.0 flaky","sample":1}`,
		`{"id":"p1","prompt":"Q1","generation":"answer q=2.0 textonly","sample":2}`,
		`{"id":"p2","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello q=4"},{"role":"user","content":"More?"}],"generation":"Sure q=0.5","sample":0}`,
		`{"id":"p2","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello q=4"},{"role":"user","content":"More?"},{"role":"assistant","content":"q=3"}],"sample":1}`,
		`{"id":"p3","prompt":"Q3","generation":"broken","sample":0}`,
	)
	rs := newRewardServer(t)
	out := filepath.Join(t.TempDir(), "scored.jsonl")
	run := func() (*Report, error) {
		return Reward(context.Background(), RewardOptions{Input: in, Output: out, Client: rs.client()})
	}
	rep, err := run()
	if err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	for key, h := range map[string]float64{"p1#0": 3.5, "p1#1": 1.0, "p1#2": 2.0, "p2#0": 0.5, "p2#1": 3} {
		got, ok := parseFloat(rows[key], "reward")
		if !ok || math.Abs(got-wantReward(h)) > 1e-12 {
			t.Errorf("%s: reward %v, want %v", key, got, wantReward(h))
		}
		var attrs map[string]float64
		if err := rows[key].Decode("reward_attributes", &attrs); err != nil || len(attrs) != 5 || attrs["helpfulness"] != h {
			t.Errorf("%s: attributes %v", key, attrs)
		}
	}
	// 0.3*3.5 + 0.74*1.75 + 0.46*3.3125 + 0.47*0.546875 - 0.33*0.515625
	if w := 0.3*3.5 + 0.74*1.75 + 0.46*3.3125 + 0.47*0.546875 - 0.33*0.515625; math.Abs(wantReward(3.5)-w) > 1e-12 {
		t.Errorf("combined reward %v, want %v", wantReward(3.5), w)
	}
	if !rows["p3#0"].Has("error") || rep.Errors != 1 {
		t.Errorf("a refused request should be recorded: %s", rows["p3#0"].AppendJSON(nil))
	}
	calls := rs.calls
	before := calls
	rep, err = run()
	if err != nil || rep.Stages[0].Written != 0 || rs.calls != before {
		t.Errorf("rerun wrote %d rows and sent %d requests (%v)", rep.Stages[0].Written, rs.calls-before, err)
	}

	// Pairs by reward from the scored rows.
	pairs := filepath.Join(t.TempDir(), "pairs.jsonl")
	prep, err := Pairs(context.Background(), PairsOptions{Input: out, Output: pairs, Margin: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	pr := readRows(t, pairs)
	p1 := pr["p1#0"]
	if p1 == nil || str(t, p1, "chosen") != "answer q=3.5" || str(t, p1, "rejected") != "answer q=1.0 flaky" ||
		str(t, p1, "prompt") != "Q1" || p1.Has("reward") || p1.Has("generation") {
		t.Fatalf("p1 pair: %v", pr)
	}
	cr, _ := parseFloat(p1, "chosen_reward")
	rr, _ := parseFloat(p1, "rejected_reward")
	if cr != wantReward(3.5) || rr != wantReward(1.0) {
		t.Errorf("pair rewards %v %v", cr, rr)
	}
	var prompt []backend.Message
	if err := pr["p2#0"].Decode("prompt", &prompt); err != nil || len(prompt) != 3 || str(t, pr["p2#0"], "chosen") != "q=3" {
		t.Errorf("p2's prompt should be its messages: %s", pr["p2#0"].AppendJSON(nil))
	}
	if prep.Counts["no_pair_too_few_responses"] != 1 {
		t.Errorf("counts %v", prep.Counts)
	}
	// A margin above every gap leaves no pair.
	pairs2 := filepath.Join(t.TempDir(), "pairs2.jsonl")
	prep, err = Pairs(context.Background(), PairsOptions{Input: out, Output: pairs2, Margin: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(readRows(t, pairs2)) != 0 || prep.Counts["no_pair_below_margin"] != 2 {
		t.Errorf("margin 10: counts %v", prep.Counts)
	}
}

func TestRewardScalar(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			fmt.Fprint(w, `{"object":"list","data":[{"id":"my-rm","object":"model"}]}`)
			return
		}
		if r.URL.Path != "/v1/pooling" {
			http.NotFound(w, r)
			return
		}
		var req struct {
			Model    string            `json:"model"`
			Messages []backend.Message `json:"messages"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if req.Model != "my-rm" {
			http.Error(w, `{"error":"unknown model"}`, http.StatusNotFound)
			return
		}
		m := qualityRE.FindStringSubmatch(req.Messages[len(req.Messages)-1].Content)
		fmt.Fprintf(w, `{"id":"pool-1","data":[{"index":0,"object":"pooling","data":[%s]}]}`, m[1])
	}))
	t.Cleanup(srv.Close)
	in := writeJSONL(t, `{"id":"p","problem":"Q","generation":"q=0.25","sample":0}`, `{"id":"p","problem":"Q","generation":"q=-1.5","sample":1}`)
	out := filepath.Join(t.TempDir(), "scored.jsonl")
	_, err := Reward(context.Background(), RewardOptions{Input: in, Output: out,
		Client: &RewardClient{BaseURL: srv.URL + "/v1", API: RewardScalar, MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	if r, _ := parseFloat(rows["p#0"], "reward"); r != 0.25 {
		t.Errorf("reward %v, want 0.25", r)
	}
	if r, _ := parseFloat(rows["p#1"], "reward"); r != -1.5 {
		t.Errorf("reward %v, want -1.5", r)
	}
}

func TestParseScalarReward(t *testing.T) {
	tests := []struct {
		body string
		want float64
		err  bool
	}{
		{`0.5`, 0.5, false},
		{`{"reward": 1.5}`, 1.5, false},
		{`{"score": [2.5]}`, 2.5, false},
		{`{"rewards": [[0.1, 0.9]]}`, 0.9, false},
		{`{"data": [{"data": 3}]}`, 3, false},
		{`{"data": [{"data": [[1, 4]]}]}`, 4, false},
		{`{"nothing": 1}`, 0, true},
		{`not json`, 0, true},
	}
	for _, tt := range tests {
		got, err := parseScalarReward([]byte(tt.body))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseScalarReward(%s) = %v, %v; want %v", tt.body, got, err, tt.want)
		}
	}
}

func TestPairsByCorrectness(t *testing.T) {
	in := writeJSONL(t,
		`{"id":"a","problem":"1+1?","expected_answer":"2","generation":"\\boxed{2}","is_correct":true,"sample":0}`,
		`{"id":"a","problem":"1+1?","expected_answer":"2","generation":"\\boxed{3}","is_correct":false,"sample":1}`,
		`{"id":"a","problem":"1+1?","expected_answer":"2","generation":"\\boxed{2} again","is_correct":true,"sample":2}`,
		`{"id":"b","problem":"2+2?","expected_answer":"4","generation":"\\boxed{4}","is_correct":true,"sample":0}`,
		`{"id":"b","problem":"2+2?","expected_answer":"4","generation":"\\boxed{4}!","is_correct":true,"sample":1}`,
		`{"id":"c","problem":"3+3?","expected_answer":"6","generation":"\\boxed{6}","is_correct":true,"sample":0,"reward":0.2}`,
		`{"id":"c","problem":"3+3?","expected_answer":"6","generation":"\\boxed{6} nicely","is_correct":true,"sample":1,"reward":0.9}`,
		`{"id":"c","problem":"3+3?","expected_answer":"6","generation":"\\boxed{5}","is_correct":false,"sample":2,"reward":0.5}`,
		`{"id":"c","problem":"3+3?","expected_answer":"6","generation":"oops","error":"timeout","sample":3}`,
		`{"id":"d","problem":"Colour?","expected_answer":"red","generation":"crimson","judge_correct":true,"sample":0}`,
		`{"id":"d","problem":"Colour?","expected_answer":"red","generation":"blue","judge_correct":false,"sample":1}`,
	)
	out := filepath.Join(t.TempDir(), "pairs.jsonl")
	rep, err := Pairs(context.Background(), PairsOptions{Input: in, Output: out, By: PairsByCorrectness})
	if err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	if len(rows) != 3 {
		t.Fatalf("got %d pairs, want 3: %v", len(rows), rows)
	}
	if d := rows["d#0"]; str(t, d, "chosen") != "crimson" || d.Has("judge_correct") {
		t.Errorf("pair d (by judge_correct): %s", d.AppendJSON(nil))
	}
	a := rows["a#0"]
	if str(t, a, "chosen") != `\boxed{2}` || str(t, a, "rejected") != `\boxed{3}` || str(t, a, "prompt") != "1+1?" ||
		str(t, a, "expected_answer") != "2" || a.Has("is_correct") {
		t.Errorf("pair a: %s", a.AppendJSON(nil))
	}
	if cr, _ := parseFloat(a, "chosen_reward"); cr != 1 {
		t.Errorf("default chosen reward %v, want 1", cr)
	}
	c := rows["c#0"]
	if str(t, c, "chosen") != `\boxed{6} nicely` {
		t.Errorf("pair c should choose the best-rewarded correct response: %s", c.AppendJSON(nil))
	}
	if rep.Counts["no_pair_no_correct_incorrect_split"] != 1 {
		t.Errorf("counts %v", rep.Counts)
	}
	// Rerun: nothing new.
	rep, err = Pairs(context.Background(), PairsOptions{Input: in, Output: out, By: PairsByCorrectness})
	if err != nil || rep.Written != 0 {
		t.Errorf("rerun wrote %d (%v)", rep.Written, err)
	}
}
