// Package local is the in-process CPU engine as a backend.Backend: it loads
// a Hugging Face model folder (weights, tokenizer, chat template, generation
// config), applies the chat template to chat requests, and runs all
// requests through one continuous-batching engine.Batcher.
//
//	b, err := local.Open(ctx, local.Options{Model: "models/Qwen2.5-0.5B-Instruct"})
//	resp, err := b.Generate(ctx, &backend.Request{Messages: msgs, MaxTokens: 512})
package local

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/engine"
	"github.com/crucible-ml/crucible/engine/chat"
	"github.com/crucible-ml/crucible/engine/hub"
	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// Options configure a local backend.
type Options struct {
	// Model is a model folder (config.json, *.safetensors, tokenizer.json)
	// or an "org/name" Hugging Face repository, fetched into the hub cache
	// (see engine/hub: HF_HOME, HF_TOKEN, HF_HUB_OFFLINE).
	Model string
	// Hub configures downloads (default: hub.OptionsFromEnv()).
	Hub *hub.Options
	// MaxBatch is the number of sequences decoded together (default 16).
	MaxBatch int
	// DefaultMaxTokens applies when a request sets none (default: the
	// model's generation_config max_new_tokens, else 1024).
	DefaultMaxTokens int
	// Threads share each forward pass (0: GOMAXPROCS).
	Threads int
	// Quantize "int8" stores the matrices as int8 at load (see
	// engine.Options.Quantize); "" keeps their dtype.
	Quantize string
	// Matmul "bf16" multiplies with bf16 inputs (see engine.Options.Matmul).
	Matmul string
	// KVCache "bf16" keeps keys and values in bf16 (see engine.Options.KVCache).
	KVCache string
}

// Backend runs requests on the built-in engine.
type Backend struct {
	m         engine.Model
	tok       *tokenizer.Tokenizer
	tmpl      *chat.Template // nil when the model has no chat template
	eos       []int
	maxTokens int
	batcher   *engine.Batcher

	mu  sync.Mutex
	rng *rand.Rand // seeds for requests that bring none
}

var _ backend.Backend = (*Backend)(nil)

// Open loads the model folder in opts.Model (downloading an org/name from
// the hub first). When ctx ends first (Ctrl-C), Open returns ctx's error
// at once: a download stops and stays resumable, and a model half-loaded
// is closed as soon as its load returns.
func Open(ctx context.Context, opts Options) (*Backend, error) {
	if opts.Model == "" {
		return nil, fmt.Errorf("local backend: no model folder given")
	}
	ho := hub.OptionsFromEnv()
	if opts.Hub != nil {
		ho = *opts.Hub
	}
	dir, err := hub.Resolve(ctx, opts.Model, ho)
	if err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	type loaded struct {
		m   engine.Model
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		m, err := engine.LoadWith(dir, engine.Options{Threads: opts.Threads, Quantize: opts.Quantize, Matmul: opts.Matmul, KVCache: opts.KVCache})
		done <- loaded{m, err}
	}()
	var m engine.Model
	select {
	case l := <-done:
		m, err = l.m, l.err
	case <-ctx.Done():
		go func() { // the load cannot be cut short; free it when it ends
			if l := <-done; l.err == nil {
				l.m.Close()
			}
		}()
		return nil, fmt.Errorf("local backend: loading %s: %w", dir, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("local backend: %w", err)
	}
	gen, err := engine.LoadGenerationConfig(dir)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("local backend: %w", err)
	}
	b, err := New(m, tok, gen, opts)
	if err != nil {
		m.Close()
		return nil, err
	}
	return b, nil
}

// New wraps a loaded model and tokenizer. gen may be nil. The Backend owns
// m and closes it.
func New(m engine.Model, tok *tokenizer.Tokenizer, gen *engine.GenerationConfig, opts Options) (*Backend, error) {
	b := &Backend{m: m, tok: tok, maxTokens: opts.DefaultMaxTokens, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	if tok.Config != nil && tok.Config.ChatTemplate != "" {
		t, err := chat.Compile(tok.Config.ChatTemplate)
		if err != nil {
			return nil, fmt.Errorf("local backend: %w", err)
		}
		b.tmpl = t
	}
	// End-of-sequence ids: generation_config, config.json and the
	// tokenizer's eos_token, together.
	seen := map[int]bool{}
	addEOS := func(ids ...int) {
		for _, id := range ids {
			if id >= 0 && id < m.Config().VocabSize && !seen[id] {
				seen[id] = true
				b.eos = append(b.eos, id)
			}
		}
	}
	if gen != nil {
		addEOS(gen.EOSTokenIDs...)
		if b.maxTokens == 0 && gen.MaxNewTokens != nil {
			b.maxTokens = *gen.MaxNewTokens
		}
	}
	addEOS(m.Config().EOSTokenID...)
	if tok.Config != nil && tok.Config.EOSToken != "" {
		if id, ok := tok.TokenID(tok.Config.EOSToken); ok {
			addEOS(id)
		}
	}
	if b.maxTokens <= 0 {
		b.maxTokens = 1024
	}
	maxBatch := opts.MaxBatch
	if maxBatch <= 0 {
		maxBatch = 16
	}
	b.batcher = engine.NewBatcher(m, tok, maxBatch)
	return b, nil
}

// Prompt turns a request into prompt token ids: chat messages through the
// chat template (whose text carries its own special tokens), a plain prompt
// with the tokenizer's special-token template (e.g. BOS).
func (b *Backend) Prompt(req *backend.Request) ([]int, error) {
	if !req.IsChat() {
		return b.tok.Encode(req.Prompt, true), nil
	}
	if b.tmpl == nil {
		return nil, fmt.Errorf("%w: chat request, but %w", backend.ErrBadRequest, chat.ErrNoTemplate)
	}
	msgs := make([]chat.Message, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	var bos, eos string
	if c := b.tok.Config; c != nil {
		bos, eos = c.BOSToken, c.EOSToken
	}
	text, err := b.tmpl.Render(msgs, chat.Options{AddGenerationPrompt: true, BOSToken: bos, EOSToken: eos})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", backend.ErrBadRequest, err)
	}
	return b.tok.Encode(text, false), nil
}

// Generate runs one request.
func (b *Backend) Generate(ctx context.Context, req *backend.Request) (*backend.Response, error) {
	prompt, err := b.Prompt(req)
	if err != nil {
		return nil, err
	}
	res, err := b.Run(ctx, prompt, req, RunOptions{})
	if err != nil {
		return nil, err
	}
	if req.IsChat() {
		res.Reasoning, res.Text = b.SplitReasoning(prompt, res.Text)
	}
	return &res.Response, nil
}

// RunOptions add to a request what the backend.Request has no room for.
type RunOptions struct {
	// OnText receives the text as it becomes final (see
	// engine.GenRequest.OnText); it must not block.
	OnText func(delta string)
	// IgnoreEOS generates past end-of-sequence tokens, up to MaxTokens.
	IgnoreEOS bool
	// Logprobs, TopLogprobs and PromptLogprobs ask for log-probabilities
	// (see engine.GenRequest); with PromptLogprobs, a MaxTokens of -1
	// scores the prompt and generates nothing.
	Logprobs       bool
	TopLogprobs    int
	PromptLogprobs bool
}

// Result is a Run's outcome: the response and what RunOptions asked for.
type Result struct {
	backend.Response
	Tokens         []int // generated token ids
	Logprobs       []engine.TokenLogprob
	PromptLogprobs []engine.TokenLogprob // of the prompt's tokens after the first
}

// Run generates from prompt token ids with req's sampling settings (its
// Prompt and Messages are ignored).
func (b *Backend) Run(ctx context.Context, prompt []int, req *backend.Request, opts RunOptions) (*Result, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("%w: empty prompt", backend.ErrBadRequest)
	}
	for _, id := range prompt {
		if id < 0 || id >= b.m.Config().VocabSize {
			return nil, fmt.Errorf("%w: token id %d outside the vocabulary of %d", backend.ErrBadRequest, id, b.m.Config().VocabSize)
		}
	}
	maxTokens := req.MaxTokens
	switch {
	case maxTokens < 0 && opts.PromptLogprobs:
		maxTokens = 0 // score the prompt only
	case maxTokens <= 0:
		maxTokens = b.maxTokens
	}
	seed := uint64(req.Seed)
	if !req.HasSeed {
		b.mu.Lock()
		seed = b.rng.Uint64()
		b.mu.Unlock()
	}
	sp := engine.SamplingParams{Temperature: req.Temperature, TopP: req.TopP, TopK: req.TopK, MinP: req.MinP,
		RepetitionPenalty: req.RepetitionPenalty, Seed: seed}
	if err := sp.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", backend.ErrBadRequest, err)
	}
	eos := b.eos
	if opts.IgnoreEOS {
		eos = nil
	}
	if opts.TopLogprobs < 0 || opts.TopLogprobs > engine.MaxTopLogprobs {
		return nil, fmt.Errorf("%w: top logprobs %d (0 to %d)", backend.ErrBadRequest, opts.TopLogprobs, engine.MaxTopLogprobs)
	}
	res, err := b.batcher.Generate(ctx, engine.GenRequest{Prompt: prompt, MaxTokens: maxTokens, Sampling: sp,
		EOS: eos, Stop: req.Stop, OnText: opts.OnText,
		Logprobs: opts.Logprobs, TopLogprobs: opts.TopLogprobs, PromptLogprobs: opts.PromptLogprobs})
	if err != nil {
		return nil, err
	}
	reason := backend.FinishLength
	if res.FinishReason == engine.FinishStop {
		reason = backend.FinishStop
	}
	return &Result{Response: backend.Response{Text: res.Text, FinishReason: reason, PromptTokens: res.PromptTokens,
		CompletionTokens: len(res.Tokens), StopString: res.StopString},
		Tokens: res.Tokens, Logprobs: res.Logprobs, PromptLogprobs: res.PromptLogprobs}, nil
}

// Embed is the embedding of a token sequence (see engine.Embed):
// mean-pooled final hidden states, unit length.
func (b *Backend) Embed(ctx context.Context, ids []int) ([]float32, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: empty input", backend.ErrBadRequest)
	}
	for _, id := range ids {
		if id < 0 || id >= b.m.Config().VocabSize {
			return nil, fmt.Errorf("%w: token id %d outside the vocabulary of %d", backend.ErrBadRequest, id, b.m.Config().VocabSize)
		}
	}
	return engine.Embed(ctx, b.m, ids)
}

// Model is the loaded model.
func (b *Backend) Model() engine.Model { return b.m }

// Tokenizer is the model's tokenizer.
func (b *Backend) Tokenizer() *tokenizer.Tokenizer { return b.tok }

// Stats are the batcher's counters (steps, running sequences, tokens).
func (b *Backend) Stats() *engine.BatcherStats { return b.batcher.Stats() }

// Close stops the batcher and unmaps the model.
func (b *Backend) Close() error {
	b.batcher.Close()
	return b.m.Close()
}
