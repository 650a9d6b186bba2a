package synth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/record"
)

// RewardAttributes are the HelpSteer2 attributes that Nemotron-4-340B-Reward
// scores, in its order.
var RewardAttributes = []string{"helpfulness", "correctness", "coherence", "complexity", "verbosity"}

// DefaultRewardWeights combine the attributes into one reward, as the
// Nemotron-4-340B-Reward model card does.
var DefaultRewardWeights = map[string]float64{
	"helpfulness": 0.3, "correctness": 0.74, "coherence": 0.46, "complexity": 0.47, "verbosity": -0.33,
}

// Reward API shapes.
const (
	// RewardNemotron is a chat completion whose messages end with the
	// assistant turn; the scores come back as
	// choices[0].logprobs.content[].{token: attribute, logprob: score}
	// (and as "attr:score,..." in the message content).
	RewardNemotron = "nemotron"
	// RewardScalar posts {"model", "messages"} to a reward endpoint (vLLM's
	// /pooling by default) and reads one number: `reward`, `score`,
	// `rewards[0]`, `scores[0]`, or `data[0].data` (a number or the last of
	// a list).
	RewardScalar = "scalar"
)

// RewardClient asks a reward model for scores over HTTP. It is safe for
// concurrent use.
type RewardClient struct {
	// BaseURL is the server, e.g. https://integrate.api.nvidia.com/v1.
	BaseURL string
	APIKey  string
	// Model is the model name; when empty, the first one the server lists
	// at /models.
	Model string
	// API is RewardNemotron (default) or RewardScalar.
	API string
	// Path is the endpoint below BaseURL (default /chat/completions for
	// RewardNemotron, /pooling for RewardScalar).
	Path string
	// MaxRetries retries 429, 5xx and connection errors (default 6; -1:
	// none), with
	// full-jitter exponential backoff from 500 ms to 30 s, or Retry-After.
	MaxRetries int
	Timeout    time.Duration // per attempt (default 5 minutes)
	HTTP       *http.Client
	// BackoffBase is the first retry's wait (default 500 ms).
	BackoffBase time.Duration

	once   sync.Once
	client *openai.Client
	err    error
}

// transport returns the HTTP client that carries the requests (the
// OpenAI-compatible client: its retries, pool and model discovery).
func (c *RewardClient) transport() (*openai.Client, error) {
	c.once.Do(func() {
		retries := c.MaxRetries
		if retries == 0 {
			retries = 6
		}
		timeout := c.Timeout
		if timeout <= 0 {
			timeout = 5 * time.Minute
		}
		c.client, c.err = openai.New(openai.Options{
			BaseURLs: []string{c.BaseURL}, APIKey: c.APIKey, Model: c.Model,
			MaxRetries: retries, Timeout: timeout, BackoffBase: c.BackoffBase, HTTPClient: c.HTTP,
		})
		if c.err != nil {
			c.err = fmt.Errorf("reward: %w", c.err)
		}
	})
	return c.client, c.err
}

// Score returns the reward model's scores for a conversation that ends with
// an assistant turn: the attribute scores for RewardNemotron, or
// {"reward": x} for RewardScalar.
func (c *RewardClient) Score(ctx context.Context, msgs []backend.Message) (map[string]float64, error) {
	if len(msgs) == 0 || msgs[len(msgs)-1].Role != "assistant" {
		return nil, errors.New("reward: the conversation must end with an assistant turn")
	}
	tr, err := c.transport()
	if err != nil {
		return nil, err
	}
	model, err := tr.Model(ctx)
	if err != nil {
		return nil, fmt.Errorf("reward: %w", err)
	}
	body, err := json.Marshal(map[string]any{"model": model, "messages": msgs})
	if err != nil {
		return nil, err
	}
	path := c.Path
	if path == "" {
		path = "/chat/completions"
		if c.API == RewardScalar {
			path = "/pooling"
		}
	}
	url := strings.TrimRight(c.BaseURL, "/") + path
	var b []byte
	if err := tr.Post(ctx, path, body, func(r []byte) error { b = r; return nil }); err != nil {
		return nil, err
	}
	if c.API == RewardScalar {
		x, err := parseScalarReward(b)
		if err != nil {
			return nil, fmt.Errorf("POST %s: %w", url, err)
		}
		return map[string]float64{"reward": x}, nil
	}
	scores, err := ParseNemotronReward(b)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", url, err)
	}
	return scores, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// ParseNemotronReward reads the attribute scores of a Nemotron-4-340B-Reward
// chat completion: choices[0].logprobs.content[].token/logprob, else the
// "helpfulness:1.6,correctness:..." text of choices[0].message.content.
func ParseNemotronReward(b []byte) (map[string]float64, error) {
	var w struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
			Logprobs *struct {
				Content []struct {
					Token   string  `json:"token"`
					Logprob float64 `json:"logprob"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, openai.BadBody(fmt.Errorf("reward server returned invalid JSON (%v): %s", err, snippet(b)))
	}
	if len(w.Choices) == 0 {
		return nil, fmt.Errorf("reward server returned no choices: %s", snippet(b))
	}
	ch := w.Choices[0]
	scores := map[string]float64{}
	if ch.Logprobs != nil {
		for _, t := range ch.Logprobs.Content {
			scores[strings.TrimSpace(t.Token)] = t.Logprob
		}
	}
	if len(scores) == 0 && ch.Message.Content != nil {
		for _, part := range strings.Split(*ch.Message.Content, ",") {
			k, v, ok := strings.Cut(part, ":")
			if !ok {
				continue
			}
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				scores[strings.TrimSpace(k)] = f
			}
		}
	}
	if len(scores) == 0 {
		return nil, fmt.Errorf("no scores in the response (is this a reward model?): %s", snippet(b))
	}
	return scores, nil
}

func parseScalarReward(b []byte) (float64, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, openai.BadBody(fmt.Errorf("reward server returned invalid JSON (%v): %s", err, snippet(b)))
	}
	if x, ok := lastNumber(v, 0); ok {
		return x, nil
	}
	if m, ok := v.(map[string]any); ok {
		for _, k := range []string{"reward", "score", "rewards", "scores"} {
			if x, ok := lastNumber(m[k], 0); ok {
				return x, nil
			}
		}
		if data, ok := m["data"].([]any); ok && len(data) > 0 {
			if d, ok := data[0].(map[string]any); ok {
				if x, ok := lastNumber(d["data"], 0); ok {
					return x, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no reward in the response: %s", snippet(b))
}

// lastNumber returns v when it is a number, or the last number of a (nested)
// list.
func lastNumber(v any, depth int) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case []any:
		if len(x) > 0 && depth < 4 {
			return lastNumber(x[len(x)-1], depth+1)
		}
	}
	return 0, false
}

// CombineReward weighs attribute scores into one reward. Attributes missing
// from scores count as 0; a "reward" score (a scalar endpoint) is returned
// as it is.
func CombineReward(scores, weights map[string]float64) float64 {
	if r, ok := scores["reward"]; ok && len(scores) == 1 {
		return r
	}
	keys := make([]string, 0, len(weights))
	for k := range weights {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a fixed order makes the sum reproducible to the bit
	sum := 0.0
	for _, k := range keys {
		sum += weights[k] * scores[k]
	}
	return sum
}

// RewardOptions configure Reward.
type RewardOptions struct {
	Common
	Input, Output string
	Client        *RewardClient
	// Weights combine attribute scores (default DefaultRewardWeights).
	Weights map[string]float64
	// ResponseField names the response scored (default "generation").
	ResponseField string
}

// Reward scores every row (keyed by (id, sample)) with a reward model. The
// conversation is the row's `messages` (with the response appended as the
// assistant turn unless they already end with one), else its prompt
// (prompt, problem or question) as the user turn and the response as the
// assistant turn. Fields: reward (the weighted sum) and reward_attributes
// (the model's scores); a failed request is recorded as `error`.
func Reward(ctx context.Context, o RewardOptions) (*Report, error) {
	start := time.Now()
	if o.Client == nil {
		return nil, errors.New("reward: a reward client is required")
	}
	if o.Input == "" || o.Output == "" {
		return nil, fmt.Errorf("reward: input and output are required")
	}
	if o.Weights == nil {
		o.Weights = DefaultRewardWeights
	}
	if o.ResponseField == "" {
		o.ResponseField = "generation"
	}
	rep := newReport(o.Output)
	err := o.mapRows(ctx, rep, "reward", o.Input, o.Output, func(ctx context.Context, r *record.Row) error {
		msgs, err := conversation(r, o.ResponseField)
		if err != nil {
			return err
		}
		scores, err := o.Client.Score(ctx, msgs)
		if err != nil {
			return err
		}
		r.Set("reward", CombineReward(scores, o.Weights))
		r.Set("reward_attributes", scores)
		return nil
	})
	if err != nil {
		return rep, err
	}
	return rep, o.finish(rep, start, rep.lastStage())
}

// conversation builds the messages a reward model scores for a row.
func conversation(r *record.Row, responseField string) ([]backend.Message, error) {
	resp, hasResp := r.Text(responseField)
	if r.Has("messages") {
		var msgs []backend.Message
		if err := r.Decode("messages", &msgs); err != nil {
			return nil, fmt.Errorf("messages: %w", err)
		}
		if len(msgs) > 0 && msgs[len(msgs)-1].Role == "assistant" {
			return msgs, nil
		}
		if !hasResp {
			return nil, fmt.Errorf("messages do not end with an assistant turn and the row has no %s", responseField)
		}
		return append(msgs, backend.Message{Role: "assistant", Content: resp}), nil
	}
	if !hasResp {
		return nil, fmt.Errorf("row has no %s", responseField)
	}
	for _, k := range []string{"prompt", "problem", "question"} {
		if q, ok := r.Text(k); ok {
			return []backend.Message{{Role: "user", Content: q}, {Role: "assistant", Content: resp}}, nil
		}
	}
	return nil, errors.New("row has no prompt, problem, question or messages")
}
