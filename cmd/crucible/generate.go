package main

import (
	"fmt"
	"log/slog"
	"sort"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/solve"
)

type pflagFlag = pflag.Flag

func init() { commands = append(commands, newGenerateCmd) }

// genFlags are the sampling and selection flags shared by generate and eval.
type genFlags struct {
	prompt        string
	completion    bool
	samples       int
	temperature   float64
	topP          float64
	topK          int
	minP          float64
	repPenalty    float64
	maxTokens     int
	seed          int64
	stop          []string
	limit         int
	shard         string
	retryErrors   bool
	joinReasoning bool
	messages      string
}

func (g *genFlags) register(cmd *cobra.Command, defaultPrompt string) {
	fl := cmd.Flags()
	fl.StringVar(&g.prompt, "prompt", defaultPrompt, "built-in prompt name or prompt YAML file (see crucible prompt list)")
	fl.BoolVar(&g.completion, "completion", false, "send the prompt as one string to /v1/completions instead of chat messages")
	fl.IntVar(&g.samples, "samples", 1, "solutions per row")
	fl.Float64Var(&g.temperature, "temperature", 0, "sampling temperature (0: greedy)")
	fl.Float64Var(&g.topP, "top-p", 0.95, "nucleus sampling probability mass")
	fl.IntVar(&g.topK, "top-k", -1, "keep the k most likely tokens (-1: off)")
	fl.Float64Var(&g.minP, "min-p", 0, "min-p sampling threshold (0: off)")
	fl.Float64Var(&g.repPenalty, "repetition-penalty", 1, "repetition penalty (1: off)")
	fl.IntVar(&g.maxTokens, "max-tokens", 2048, "tokens to generate at most")
	fl.Int64Var(&g.seed, "seed", 0, "base seed; each request's seed derives from (row id, sample, seed)")
	fl.StringArrayVar(&g.stop, "stop", nil, "stop string (repeatable)")
	fl.IntVar(&g.limit, "limit", 0, "take only the first N rows (after --shard)")
	fl.StringVar(&g.shard, "shard", "", "process shard i/n of the rows (by a hash of the row id)")
	fl.StringVar(&g.messages, "messages-field", "", "take each row's chat messages from this field (a list of {role, content}, e.g. messages) instead of rendering --prompt")
	fl.BoolVar(&g.joinReasoning, "join-reasoning", false, "put a reasoning model's chain of thought (kept in the reasoning field) before the answer in the generation, as <think>...</think>answer")
	fl.BoolVar(&g.retryErrors, "retry-errors", false, "on resume, generate again the rows whose request failed (rows with an error field)")
}

func (g *genFlags) options() (solve.Options, error) {
	var p *prompt.Prompt
	if g.messages == "" {
		var err error
		if p, err = prompt.Load(g.prompt); err != nil {
			return solve.Options{}, err
		}
	}
	shard, err := record.ParseShard(g.shard)
	if err != nil {
		return solve.Options{}, fmt.Errorf("--shard: %w", err)
	}
	params, err := g.params()
	if err != nil {
		return solve.Options{}, err
	}
	return solve.Options{
		Prompt: p, MessagesField: g.messages, Completion: g.completion, RetryErrors: g.retryErrors, Samples: g.samples,
		Seed: g.seed, Limit: g.limit, Shard: shard, Params: params, JoinReasoning: g.joinReasoning,
	}, nil
}

// params checks --samples and returns the sampling parameters of a request.
func (g *genFlags) params() (backend.Request, error) {
	if g.samples < 1 {
		return backend.Request{}, fmt.Errorf("--samples %d: want at least 1", g.samples)
	}
	if g.temperature == 0 && g.samples > 1 {
		slog.Warn("--samples > 1 with --temperature 0: every sample is greedy")
	}
	return backend.Request{
		MaxTokens: g.maxTokens, Temperature: g.temperature, TopP: g.topP, TopK: g.topK,
		MinP: g.minP, RepetitionPenalty: g.repPenalty, Stop: g.stop,
	}, nil
}

func newGenerateCmd() *cobra.Command {
	var g genFlags
	var b backendFlags
	var ce codeExecFlags
	var input, output string
	cmd := &cobra.Command{
		Use:   "generate --input FILE --output FILE",
		Short: "Sample model solutions for every row of a file",
		Long: `Generate renders each input row through a prompt, asks the model for --samples
solutions, and writes one output row per (row, sample): the input row plus
generation, sample, finish_reason and num_generated_tokens (and error when a
request failed after its retries). A rerun resumes: it skips the (id, sample)
pairs the output already holds and sends byte-identical requests for the rest.`,
		Example: `  crucible generate --input problems.jsonl --output solutions.jsonl \
    --base-url http://127.0.0.1:8000/v1 --prompt math/cot --samples 8 --temperature 0.7
  # code-interpreter solutions (OpenMathInstruct-1): blocks run in a sandbox, output fed back
  crucible generate --input problems.jsonl --output code.jsonl --prompt math/code --code-execution \
    --max-code-executions 3 --stop-on-code-error --base-url http://127.0.0.1:8000/v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" || output == "" {
				return fmt.Errorf("--input and --output are required")
			}
			if err := checkInput(input); err != nil { // before a backend loads or downloads a model
				return err
			}
			o, release, err := generation(cmd, &g, &b, &ce)
			if err != nil {
				return err
			}
			defer release()
			o.Input, o.Output = input, output
			st, err := solve.Run(cmd.Context(), o)
			logStats(st)
			logFaults(o.Backend)
			if err != nil {
				return err
			}
			return allFailed(st)
		},
	}
	cmd.Flags().StringVar(&input, "input", "", "input rows (JSONL or Parquet; a file, glob, comma list or -)")
	cmd.Flags().StringVar(&output, "output", "", "output JSONL (resumed if it exists)")
	g.register(cmd, "math/cot")
	b.register(cmd)
	ce.register(cmd)
	return cmd
}

// generation builds the solve.Options of a generating command from its
// flags: prompt and sampling, the backend (opened), and the code-interpreter
// loop when asked for. release closes what it opened.
func generation(cmd *cobra.Command, g *genFlags, b *backendFlags, ce *codeExecFlags) (o solve.Options, release func(), err error) {
	if o, err = g.options(); err != nil {
		return o, nil, err
	}
	be, err := b.openContext(cmd.Context())
	if err != nil {
		return o, nil, err
	}
	o.Backend, o.Concurrency = be, b.concurrency
	o.Command, o.Version, o.Config = cmd.Name(), version, flagConfig(cmd)
	stop, err := ce.apply(cmd.Context(), &o)
	if err != nil {
		be.Close()
		return o, nil, err
	}
	return o, func() { stop(); be.Close() }, nil
}

// checkInput fails when the input spec names no readable file.
func checkInput(spec string) error {
	if spec == "-" {
		return nil
	}
	r, err := record.Open(spec)
	if err != nil {
		return err
	}
	return r.Close()
}

// allFailed turns a run in which every request failed into an error: the
// rows are written (with their `error`), but the exit status says something
// is wrong with the backend, not with some rows.
func allFailed(st solve.Stats) error {
	if st.Written > 0 && st.Errors == st.Written {
		return fmt.Errorf("all %d requests failed (rerun with --retry-errors once the backend works); first error: %s", st.Errors, st.FirstError)
	}
	return nil
}

// logFaults reports what the backend retried, by fault class.
func logFaults(be backend.Backend) {
	fr, ok := be.(backend.FaultReporter)
	if !ok {
		return
	}
	f := fr.Faults()
	if f.Retries == 0 && f.GaveUp == 0 {
		return
	}
	args := []any{"attempts", f.Attempts, "retries", f.Retries, "gave_up", f.GaveUp}
	classes := make([]string, 0, len(f.ByClass))
	for k := range f.ByClass {
		classes = append(classes, k)
	}
	sort.Strings(classes)
	for _, k := range classes {
		args = append(args, k, f.ByClass[k])
	}
	slog.Info("backend faults", args...)
}

func logStats(st solve.Stats) {
	slog.Info("generate finished", "rows", st.Rows, "written", st.Written, "skipped_existing", st.Skipped,
		"errors", st.Errors, "wall_s", st.Wall.Seconds())
	if st.Errors > 0 {
		slog.Warn("some requests failed after their retries; their rows carry an `error` field", "errors", st.Errors)
	}
}
