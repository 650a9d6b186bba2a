package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/local"
	"github.com/crucible-ml/crucible/backend/openai"
)

// backendFlags are the flags that choose and configure a backend; every
// command that talks to a model shares them.
type backendFlags struct {
	kind        string
	baseURLs    []string
	apiKeyEnv   string
	model       string
	concurrency int
	timeout     time.Duration
	maxRetries  int
	backoff     time.Duration
	engine      engineFlags
}

func (f *backendFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kind, "backend", "", "backend: openai (an OpenAI-compatible server; the default when --base-url is given) or local (the built-in CPU engine)")
	fl.StringArrayVar(&f.baseURLs, "base-url", nil, "OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (repeat to spread requests over servers)")
	fl.StringVar(&f.apiKeyEnv, "api-key-env", "", "name of the environment variable holding the API key (default OPENAI_API_KEY when set)")
	fl.StringVar(&f.model, "model", "", "model name sent to the server (default: the first listed by /v1/models), or a model folder / org/name for --backend local")
	fl.IntVar(&f.concurrency, "concurrency", 256, "requests in flight")
	fl.DurationVar(&f.timeout, "request-timeout", 10*time.Minute, "time limit of one attempt of one request")
	fl.IntVar(&f.maxRetries, "max-retries", 6, "retries of a request after 429, 5xx, connection errors, timeouts or malformed replies")
	fl.DurationVar(&f.backoff, "retry-backoff", 500*time.Millisecond, "wait before the first retry; it doubles each attempt (at most 30s, with jitter) unless the server sends Retry-After")
	f.engine.register(fl, true)
	fl.Lookup("max-batch").Usage += " (capped by --concurrency)"
}

func (f *backendFlags) open() (backend.Backend, error) { return f.openContext(context.Background()) }

// openContext is open that stops when ctx ends (a model download or load).
func (f *backendFlags) openContext(ctx context.Context) (backend.Backend, error) {
	kind := f.kind
	if kind == "" {
		kind = "openai"
		if len(f.baseURLs) == 0 {
			kind = "local"
		}
	}
	switch kind {
	case "openai":
		if len(f.baseURLs) == 0 {
			return nil, errors.New("--backend openai needs --base-url")
		}
		key, err := f.apiKey()
		if err != nil {
			return nil, err
		}
		return openai.New(openai.Options{
			BaseURLs: f.baseURLs, APIKey: key, Model: f.model,
			Concurrency: f.concurrency, Timeout: f.timeout, MaxRetries: f.retries(), BackoffBase: f.backoff,
		})
	case "local":
		return openLocalBackend(ctx, f)
	default:
		return nil, fmt.Errorf("--backend %q: want openai or local", kind)
	}
}

// retries is --max-retries for a client's options, where 0 means the
// default and a negative count none.
func (f *backendFlags) retries() int {
	if f.maxRetries == 0 {
		return -1
	}
	return f.maxRetries
}

// apiKey is the key of --api-key-env, else of OPENAI_API_KEY.
func (f *backendFlags) apiKey() (string, error) { return openai.KeyFromEnv(f.apiKeyEnv) }

// openLocalBackend loads --model (a folder, or org/name from the Hugging
// Face hub) into the built-in engine.
func openLocalBackend(ctx context.Context, f *backendFlags) (backend.Backend, error) {
	if f.model == "" {
		return nil, errors.New("no --base-url and no --model: give --base-url for an OpenAI-compatible server, or --model DIR|org/name for the built-in engine")
	}
	if err := f.engine.check(); err != nil {
		return nil, err
	}
	o := f.engine.localOptions(f.model, f.concurrency)
	ho := hubOptions()
	o.Hub = &ho
	return local.Open(ctx, o)
}

// flagConfig records every flag's value, for manifests.
func flagConfig(cmd *cobra.Command) map[string]string {
	m := map[string]string{}
	cmd.Flags().VisitAll(func(fl *pflagFlag) { m[fl.Name] = fl.Value.String() })
	return m
}
