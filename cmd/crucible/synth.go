package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/synth"
)

func init() { commands = append(commands, newSynthCmd) }

func newSynthCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "synth",
		Short: "Make synthetic data: new problems, masked solutions, Nemotron-4 prompts and dialogues, judges, rewards, pairs",
		Long: `Synth runs the synthetic-data recipes of OpenMathInstruct-1/2 and Nemotron-4 340B.
Every sub-command reads and writes JSON rows and resumes like generate: a rerun
skips what its files hold and sends byte-identical requests for the rest.
Multi-step commands keep one file per step under OUTPUT.work. Built-in prompts
(` + "`crucible synth list-prompts`" + `) can be replaced with --prompt FILE.yaml.`,
		Example: `  # Nemotron-4: topics -> open Q&A prompts -> responses -> reward scores -> pairs
  crucible synth topics --output topics.jsonl --n-macro 20 --n-sub 5 --base-url $URL
  crucible synth prompts --kind open-qa --input topics.jsonl --output prompts.jsonl --n 10 --revisions 2 --base-url $URL
  echo 'user: "{prompt}"' > chat.yaml   # the prompt as it is
  crucible generate --prompt chat.yaml --input prompts.jsonl --output responses.jsonl --samples 4 --temperature 0.8 --base-url $URL
  crucible synth reward --input responses.jsonl --output scored.jsonl --base-url $RM_URL --model nvidia/nemotron-4-340b-reward
  crucible synth pairs --input scored.jsonl --output pairs.jsonl --by reward --margin 0.5`,
	}
	for _, r := range synthRecipes {
		cmd.AddCommand(newSynthRecipeCmd(r))
	}
	cmd.AddCommand(newSynthPairsCmd(), newSynthPromptListCmd())
	return cmd
}

// synthRecipe is one synth command that runs a recipe: its help, how it
// changes the shared flags, and its own flags.
type synthRecipe struct {
	use, short, long, example string
	inputOptional             bool   // --input may be left out
	temperature               string // default --temperature ("": generate's)
	// samples is the usage of --samples, with its default samplesDefault;
	// "" hides the flag.
	samples, samplesDefault string
	// prompt is the usage of --prompt; "" hides the flag.
	prompt string
	// ownClient marks a recipe that calls its server with its own client:
	// the generation and engine flags are hidden.
	ownClient bool
	// flags registers the recipe's own flags and returns what it runs.
	flags func(fl *pflag.FlagSet, f *synthFlags) synthAction
}

// synthAction is what a recipe runs, with the shared flags' Common and the
// --prompt override (nil: the built-in prompt).
type synthAction struct {
	run func(ctx context.Context, c synth.Common, p *prompt.Prompt) (*synth.Report, error)
	// noModel, when it returns true, runs the recipe without opening the
	// backend (Common.Backend is nil).
	noModel func() bool
}

// hiddenWithOwnClient are the shared flags a recipe with its own client
// ignores.
var hiddenWithOwnClient = []string{"samples", "prompt", "completion", "temperature", "top-p", "top-k", "min-p",
	"repetition-penalty", "max-tokens", "seed", "stop", "backend", "work-dir",
	"threads", "matmul", "kv-cache", "quantize", "max-batch"}

func newSynthRecipeCmd(r synthRecipe) *cobra.Command {
	var f synthFlags
	cmd := &cobra.Command{Use: r.use, Short: r.short, Long: r.long, Example: r.example, Args: cobra.NoArgs}
	if r.inputOptional {
		cmd.Annotations = map[string]string{inputOptional: "true"}
	}
	f.register(cmd, r)
	act := r.flags(cmd.Flags(), &f)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		model := act.noModel == nil || !act.noModel()
		c, err := f.common(cmd, !r.inputOptional, model)
		if err != nil {
			return err
		}
		if c.Backend != nil {
			defer c.Backend.Close()
		}
		p, err := loadPrompt("prompt", f.g.prompt)
		if err != nil {
			return err
		}
		rep, err := act.run(cmd.Context(), c, p)
		if c.Backend != nil {
			logFaults(c.Backend)
		}
		return finishSynth(rep, err)
	}
	return cmd
}

// synthFlags are the flags every recipe shares: the generate sampling
// flags, the backend flags, --input/--output and --work-dir.
type synthFlags struct {
	g       genFlags
	b       backendFlags
	input   string
	output  string
	workDir string
}

func (f *synthFlags) register(cmd *cobra.Command, r synthRecipe) {
	fl := cmd.Flags()
	inUsage := "input rows (JSONL or Parquet; a file, glob, comma list or -)"
	if r.inputOptional {
		inUsage += "; optional"
	}
	fl.StringVar(&f.input, "input", "", inUsage)
	fl.StringVar(&f.output, "output", "", "output JSONL (resumed if it exists)")
	fl.StringVar(&f.workDir, "work-dir", "", "folder of the intermediate step files (default OUTPUT.work)")
	f.g.register(cmd, "")
	f.b.register(cmd)
	fl.MarkHidden("messages-field") // recipes build their own messages
	fl.MarkHidden("join-reasoning")
	setDefault := func(name, value string) {
		fl.Set(name, value)
		fl.Lookup(name).DefValue = value
	}
	if r.temperature != "" {
		setDefault("temperature", r.temperature)
	}
	if r.samples != "" {
		fl.Lookup("samples").Usage = r.samples
		setDefault("samples", r.samplesDefault)
	} else {
		fl.MarkHidden("samples")
	}
	if r.prompt != "" {
		fl.Lookup("prompt").Usage = r.prompt
	} else {
		fl.MarkHidden("prompt")
	}
	if r.ownClient {
		for _, name := range hiddenWithOwnClient {
			fl.MarkHidden(name)
		}
	}
}

// common checks the shared flags and, when the recipe calls the model,
// opens the backend.
func (f *synthFlags) common(cmd *cobra.Command, needInput, model bool) (synth.Common, error) {
	if f.output == "" || needInput && f.input == "" {
		if needInput {
			return synth.Common{}, fmt.Errorf("--input and --output are required")
		}
		return synth.Common{}, fmt.Errorf("--output is required")
	}
	shard, err := record.ParseShard(f.g.shard)
	if err != nil {
		return synth.Common{}, fmt.Errorf("--shard: %w", err)
	}
	c := synth.Common{
		Limit: f.g.limit, Shard: shard, RetryErrors: f.g.retryErrors, Concurrency: f.b.concurrency,
		Command: cmd.CommandPath(), Version: version, Config: flagConfig(cmd),
	}
	if !model {
		return c, nil
	}
	if c.Params, err = f.g.params(); err != nil {
		return synth.Common{}, err
	}
	if c.Backend, err = f.b.openContext(cmd.Context()); err != nil {
		return synth.Common{}, err
	}
	c.Completion, c.Seed, c.WorkDir = f.g.completion, f.g.seed, f.workDir
	return c, nil
}

// loadPrompt loads an optional prompt override ("" keeps the built-in).
func loadPrompt(flag, name string) (*prompt.Prompt, error) {
	if name == "" {
		return nil, nil
	}
	p, err := synth.Prompt(name)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return p, nil
}

// finishSynth logs a report and turns an all-failed run into an error.
func finishSynth(rep *synth.Report, err error) error {
	if rep != nil {
		args := []any{"output", rep.Output, "rows", rep.Rows, "written", rep.Written, "request_errors", rep.Errors,
			"wall_s", rep.Wall.Seconds()}
		keys := make([]string, 0, len(rep.Counts))
		for k := range rep.Counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			args = append(args, k, rep.Counts[k])
		}
		if err != nil {
			slog.Info("synth stopped", args...)
		} else {
			slog.Info("synth finished", args...)
			if rep.Rows == 0 {
				slog.Warn("the output holds no rows; see the counts above and the step files under the work dir")
			}
		}
		for _, s := range rep.Stages {
			slog.Debug("synth step", "step", s.Name, "output", s.Output, "written", s.Written, "skipped", s.Skipped, "errors", s.Errors)
		}
		if rep.Errors > 0 {
			slog.Warn("some requests failed after their retries; their rows carry an `error` field (rerun with --retry-errors)",
				"errors", rep.Errors, "first_error", rep.FirstError)
		}
	}
	if err != nil {
		return err
	}
	if rep != nil && rep.Errors > 0 && rep.Written == 0 && rep.Rows == 0 {
		return fmt.Errorf("every request failed (rerun with --retry-errors once the backend works); first error: %s", rep.FirstError)
	}
	return nil
}
