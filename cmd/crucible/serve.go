package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/backend/local"
	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/engine"
	"github.com/crucible-ml/crucible/serve"
)

func init() { commands = append(commands, newServeCmd) }

func newServeCmd() *cobra.Command {
	var model, addr, apiKey, apiKeyEnv, name string
	var e engineFlags
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a model with the built-in engine as an OpenAI-compatible HTTP server",
		Long: `Loads a model folder (or org/name from the Hugging Face hub) into the built-in CPU engine and
answers /v1/completions and /v1/chat/completions (streaming or not; logprobs, and echo with the
prompt's logprobs for likelihood-based evaluation), /v1/embeddings (the mean of the model's final
hidden states, after its final norm, scaled to unit length: usable for retrieval and
decontamination, not a trained embedding model), /v1/models, /health and Prometheus /metrics.
Reasoning models' chains of thought (between <think> and </think>) come back in
message.reasoning_content, apart from the answer. Tools and JSON response formats are refused
with a 400. Requests from all clients decode together (continuous batching); n samples
of one prompt prefill it once. SIGINT/SIGTERM stop accepting connections and let in-flight
requests finish (--shutdown-grace).`,
		Example: `  crucible serve --model Qwen/Qwen2.5-0.5B-Instruct --addr 127.0.0.1:8000
  crucible generate --input problems.jsonl --output out.jsonl --base-url http://127.0.0.1:8000/v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if model == "" {
				return fmt.Errorf("--model is required (a model folder or org/name)")
			}
			if apiKey == "" && apiKeyEnv != "" {
				key, err := openai.KeyFromEnv(apiKeyEnv)
				if err != nil {
					return err
				}
				apiKey = key
			}
			if err := e.check(); err != nil {
				return err
			}
			b, err := local.Open(cmd.Context(), e.localOptions(model, 0))
			if err != nil {
				return err
			}
			defer b.Close()
			if name == "" {
				name = model
				if fi, err := os.Stat(model); err == nil && fi.IsDir() {
					name = filepath.Base(strings.TrimRight(model, "/"))
				}
			}
			srv := serve.New(b, serve.Options{ModelName: name, APIKey: apiKey, ShutdownGrace: grace})
			mm, _ := engine.ResolveMatmul(e.matmulMode()) // resolved at load: the same answer
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			slog.Info("serving", "model", name, "addr", ln.Addr().String(), "auth", apiKey != "", "max_batch", e.maxBatch, "matmul", mm.String())
			return srv.Serve(cmd.Context(), ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "model folder or Hugging Face org/name")
	f.StringVar(&addr, "addr", "127.0.0.1:8000", "listen address (port 0: any free port, logged at startup)")
	f.StringVar(&name, "model-name", "", "model id to serve under (default: the folder's name, or org/name)")
	f.StringVar(&apiKey, "api-key", "", "require this Bearer token on /v1/")
	f.StringVar(&apiKeyEnv, "api-key-env", "", "read the API key from this environment variable")
	e.register(f, true)
	f.DurationVar(&grace, "shutdown-grace", 30*time.Second, "how long in-flight requests may finish after SIGINT/SIGTERM")
	return cmd
}
