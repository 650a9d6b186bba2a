package serve

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
)

// TestLogprobsEchoEmbeddings: chat logprobs with top_logprobs, completion
// logprobs with echo (prompt scoring, max_tokens 0 included) and
// embeddings in both encodings, in OpenAI's shapes.
func TestLogprobsEchoEmbeddings(t *testing.T) {
	base, b, _ := testServer(t, Options{ModelName: "tiny"})

	// Chat: one entry per generated token, top_logprobs sorted, the chosen
	// token's logprob no more than the best alternative's.
	resp, body := post(t, base+"/v1/chat/completions", "", map[string]any{"messages": []map[string]string{{"role": "user", "content": "2+3?"}},
		"max_tokens": 6, "temperature": 0, "logprobs": true, "top_logprobs": 3})
	var chat struct {
		Choices []struct {
			Logprobs struct {
				Content []struct {
					Token       string  `json:"token"`
					Logprob     float64 `json:"logprob"`
					Bytes       []int   `json:"bytes"`
					TopLogprobs []struct {
						Token   string  `json:"token"`
						Logprob float64 `json:"logprob"`
					} `json:"top_logprobs"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if resp == nil || resp.StatusCode != 200 || json.Unmarshal(body, &chat) != nil {
		t.Fatalf("chat logprobs: %v %s", resp, body)
	}
	content := chat.Choices[0].Logprobs.Content
	if len(content) != chat.Usage.CompletionTokens || len(content) == 0 {
		t.Fatalf("%d logprob entries for %d tokens", len(content), chat.Usage.CompletionTokens)
	}
	for i, c := range content {
		if len(c.TopLogprobs) != 3 || c.Logprob > 0 || len(c.Bytes) == 0 {
			t.Fatalf("entry %d: %+v", i, c)
		}
		// Greedy: the chosen token is the most likely one.
		if c.TopLogprobs[0].Logprob < c.TopLogprobs[1].Logprob || math.Abs(c.Logprob-c.TopLogprobs[0].Logprob) > 1e-6 {
			t.Errorf("entry %d: chosen %g, alternatives %+v", i, c.Logprob, c.TopLogprobs)
		}
	}

	// Completions with echo and max_tokens 0: the prompt comes back with
	// one logprob per token, null for the first.
	prompt := "If Tom has 3 apples"
	ids := b.Tokenizer().Encode(prompt, true)
	resp, body = post(t, base+"/v1/completions", "", map[string]any{"prompt": prompt, "max_tokens": 0, "echo": true, "logprobs": 1})
	var cmpl struct {
		Choices []struct {
			Text     string `json:"text"`
			Logprobs struct {
				Tokens        []string             `json:"tokens"`
				TokenLogprobs []*float64           `json:"token_logprobs"`
				TopLogprobs   []map[string]float64 `json:"top_logprobs"`
				TextOffset    []int                `json:"text_offset"`
			} `json:"logprobs"`
		} `json:"choices"`
	}
	if resp == nil || resp.StatusCode != 200 || json.Unmarshal(body, &cmpl) != nil {
		t.Fatalf("echo: %v %s", resp, body)
	}
	lp := cmpl.Choices[0].Logprobs
	if cmpl.Choices[0].Text != prompt || len(lp.Tokens) != len(ids) || len(lp.TokenLogprobs) != len(ids) || len(lp.TextOffset) != len(ids) {
		t.Fatalf("echo of %d prompt tokens: %s", len(ids), body)
	}
	if lp.TokenLogprobs[0] != nil || lp.TopLogprobs[0] != nil {
		t.Errorf("the first prompt token has a logprob: %v", *lp.TokenLogprobs[0])
	}
	var sum float64
	for i := 1; i < len(ids); i++ {
		if lp.TokenLogprobs[i] == nil || *lp.TokenLogprobs[i] > 0 || len(lp.TopLogprobs[i]) < 1 || len(lp.TopLogprobs[i]) > 2 {
			t.Fatalf("prompt token %d: %v %v", i, lp.TokenLogprobs[i], lp.TopLogprobs[i])
		}
		sum += *lp.TokenLogprobs[i]
	}
	if strings.Join(lp.Tokens, "") != prompt {
		t.Errorf("tokens %q do not spell the prompt", lp.Tokens)
	}

	// The same prompt scored again, with 4 tokens generated after it: the
	// prompt's logprobs do not depend on what follows.
	resp, body = post(t, base+"/v1/completions", "", map[string]any{"prompt": prompt, "max_tokens": 4, "echo": true, "logprobs": 0, "temperature": 0})
	if resp == nil || resp.StatusCode != 200 || json.Unmarshal(body, &cmpl) != nil {
		t.Fatalf("echo + generation: %v %s", resp, body)
	}
	lp = cmpl.Choices[0].Logprobs
	var sum2 float64
	for i := 1; i < len(ids); i++ {
		sum2 += *lp.TokenLogprobs[i]
	}
	if math.Abs(sum-sum2) > 1e-4 || len(lp.Tokens) <= len(ids) || !strings.HasPrefix(cmpl.Choices[0].Text, prompt) {
		t.Errorf("prompt log-likelihood %g then %g; %d tokens; text %q", sum, sum2, len(lp.Tokens), cmpl.Choices[0].Text)
	}

	// Embeddings: floats and base64 agree, unit length, one per input.
	d := b.Model().Config().HiddenSize
	var floats struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	resp, body = post(t, base+"/v1/embeddings", "", map[string]any{"input": []string{"one apple", "two pears"}, "model": "tiny"})
	if resp == nil || resp.StatusCode != 200 || json.Unmarshal(body, &floats) != nil || len(floats.Data) != 2 || len(floats.Data[1].Embedding) != d {
		t.Fatalf("embeddings: %v %.300s", resp, body)
	}
	var n2 float64
	for _, v := range floats.Data[0].Embedding {
		n2 += float64(v) * float64(v)
	}
	if math.Abs(n2-1) > 1e-4 || floats.Usage.PromptTokens == 0 {
		t.Errorf("|e|² = %g, usage %d", n2, floats.Usage.PromptTokens)
	}
	var b64 struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	resp, body = post(t, base+"/v1/embeddings", "", map[string]any{"input": "one apple", "encoding_format": "base64"})
	if resp == nil || resp.StatusCode != 200 || json.Unmarshal(body, &b64) != nil || len(b64.Data) != 1 {
		t.Fatalf("base64 embeddings: %v %.300s", resp, body)
	}
	raw, err := base64.StdEncoding.DecodeString(b64.Data[0].Embedding)
	if err != nil || len(raw) != 4*d {
		t.Fatalf("base64: %v, %d bytes", err, len(raw))
	}
	for i := 0; i < d; i++ {
		if math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])) != floats.Data[0].Embedding[i] {
			t.Fatalf("base64 and float embeddings differ at %d", i)
		}
	}
}

// TestRefusedParameters: what the server does not do is a 400 naming the
// parameter, never silently ignored.
func TestRefusedParameters(t *testing.T) {
	base, _, _ := testServer(t, Options{ModelName: "tiny"})
	msgs := []map[string]string{{"role": "user", "content": "hi"}}
	for _, c := range []struct {
		path  string
		body  map[string]any
		param string
	}{
		{"/v1/chat/completions", map[string]any{"messages": msgs, "tools": []map[string]any{{"type": "function", "function": map[string]any{"name": "f"}}}}, "tools"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "response_format": map[string]any{"type": "json_object"}}, "response_format"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "top_logprobs": 2}, "top_logprobs"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "logprobs": true, "stream": true}, "stream"},
		{"/v1/chat/completions", map[string]any{"messages": msgs, "echo": true}, "echo"},
		{"/v1/completions", map[string]any{"prompt": "a", "logprobs": 21}, "logprobs"},
		{"/v1/completions", map[string]any{"prompt": "a", "max_tokens": 0}, "max_tokens"},
		{"/v1/embeddings", map[string]any{"input": []string{}}, "input"},
		{"/v1/embeddings", map[string]any{"input": "a", "encoding_format": "int8"}, "encoding_format"},
	} {
		resp, body := post(t, base+c.path, "", c.body)
		var e struct {
			Error struct {
				Param string `json:"param"`
			} `json:"error"`
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error.Param != c.param {
			t.Errorf("%s %v: %v %s, want a 400 on %s", c.path, c.body, resp.StatusCode, body, c.param)
		}
	}
	// response_format text is what the server does anyway.
	if resp, body := post(t, base+"/v1/chat/completions", "", map[string]any{"messages": msgs, "max_tokens": 2, "response_format": map[string]any{"type": "text"}}); resp == nil || resp.StatusCode != 200 {
		t.Errorf("response_format text: %s", body)
	}
}
