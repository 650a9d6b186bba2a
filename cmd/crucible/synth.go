package main

import (
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/backend"
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
	cmd.AddCommand(newSynthAugmentCmd(), newSynthMaskedCmd(), newSynthTopicsCmd(), newSynthPromptsCmd(),
		newSynthDialogueCmd(), newSynthJudgeCmd(), newSynthRewardCmd(), newSynthPairsCmd(), newSynthPromptListCmd())
	return cmd
}

// synthFlags are the flags every model-calling synth command shares: the
// generate sampling flags, the backend flags, --input/--output and
// --work-dir.
type synthFlags struct {
	g       genFlags
	b       backendFlags
	input   string
	output  string
	workDir string
}

func (f *synthFlags) register(cmd *cobra.Command, promptUsage string, temperature string, needInput bool) {
	fl := cmd.Flags()
	inUsage := "input rows (JSONL or Parquet; a file, glob, comma list or -)"
	if !needInput {
		inUsage += "; optional"
	}
	fl.StringVar(&f.input, "input", "", inUsage)
	fl.StringVar(&f.output, "output", "", "output JSONL (resumed if it exists)")
	fl.StringVar(&f.workDir, "work-dir", "", "folder of the intermediate step files (default OUTPUT.work)")
	f.g.register(cmd, "")
	f.b.register(cmd)
	fl.Lookup("prompt").Usage = promptUsage
	if temperature != "" {
		fl.Set("temperature", temperature)
		fl.Lookup("temperature").DefValue = temperature
	}
	fl.Set("concurrency", "64")
	fl.Lookup("concurrency").DefValue = "64"
}

// common checks the shared flags and opens the backend.
func (f *synthFlags) common(cmd *cobra.Command, needInput bool) (synth.Common, error) {
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
	if f.g.samples < 1 {
		return synth.Common{}, fmt.Errorf("--samples %d: want at least 1", f.g.samples)
	}
	if f.g.temperature == 0 && f.g.samples > 1 {
		slog.Warn("--samples > 1 with --temperature 0: every sample is greedy")
	}
	be, err := f.b.open()
	if err != nil {
		return synth.Common{}, err
	}
	return synth.Common{
		Backend: be, Completion: f.g.completion, Seed: f.g.seed, Limit: f.g.limit, Shard: shard,
		Concurrency: f.b.concurrency, RetryErrors: f.g.retryErrors, WorkDir: f.workDir,
		Params: backend.Request{
			MaxTokens: f.g.maxTokens, Temperature: f.g.temperature, TopP: f.g.topP, TopK: f.g.topK,
			MinP: f.g.minP, RepetitionPenalty: f.g.repPenalty, Stop: f.g.stop,
		},
		Command: cmd.CommandPath(), Version: version, Config: flagConfig(cmd),
	}, nil
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

func newSynthAugmentCmd() *cobra.Command {
	var f synthFlags
	var source, dropped string
	var maxSim float64
	cmd := &cobra.Command{
		Use:   "augment --input SEEDS --output NEW",
		Short: "New math problems from seed problems (OpenMathInstruct-2)",
		Long: `Augment asks for --samples new problems per seed problem: for MATH seeds (--source math)
a new problem inspired by the seed that needs another approach, for GSM8K seeds
(--source gsm8k) a similar problem. Each output row has id (SEED-augK), problem,
problem_source (augmented_math or augmented_gsm8k), seed_id, seed_problem and the
seed's other fields (its answer and solution as seed_*). Near-copies of the seed
(character 5-gram Jaccard >= --max-similarity; digits masked for MATH), repeats,
refusals and truncated answers go to --dropped with dropped_reason.`,
		Example: `  crucible synth augment --input math-train.jsonl --output new-problems.jsonl --source math \
    --samples 8 --temperature 0.7 --base-url http://127.0.0.1:8000/v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.common(cmd, true)
			if err != nil {
				return err
			}
			defer c.Backend.Close()
			p, err := loadPrompt("prompt", f.g.prompt)
			if err != nil {
				return err
			}
			return finishSynth(synth.Augment(cmd.Context(), synth.AugmentOptions{Common: c, Input: f.input, Output: f.output,
				Dropped: dropped, Source: source, N: f.g.samples, MaxSimilarity: maxSim, Prompt: p}))
		},
	}
	f.register(cmd, "prompt YAML replacing the built-in augment/math or augment/gsm8k (field problem)", "0.7", true)
	cmd.Flags().Lookup("samples").Usage = "new problems per seed problem"
	cmd.Flags().Set("samples", "4")
	cmd.Flags().Lookup("samples").DefValue = "4"
	cmd.Flags().StringVar(&source, "source", "math", "seed style: math (inspired, another approach) or gsm8k (similar)")
	cmd.Flags().StringVar(&dropped, "dropped", "", "where dropped problems go (default OUTPUT without .jsonl + .dropped.jsonl)")
	cmd.Flags().Float64Var(&maxSim, "max-similarity", 0.7, "drop a new problem this similar to its seed (character 5-gram Jaccard)")
	return cmd
}

func newSynthMaskedCmd() *cobra.Command {
	var f synthFlags
	var field string
	cmd := &cobra.Command{
		Use:   "masked-solutions --input PROBLEMS --output MASKED",
		Short: "Reference solutions with computed values masked (OpenMathInstruct-1)",
		Long: `Masked-solutions asks for --samples rewrites of each reference solution in which the
values the solution computes become symbols, and keeps per problem the candidate with
the fewest digits within ±50% of the reference length, dropping candidates that still
reveal the answer (fallbacks: the candidate closest to the length window, then the
original solution). Output rows are the input rows plus reference_masked_solution,
masked_solution_source (masked, masked-any-length, original), masked_sample and
masked_candidates. The built-in masked/hint prompt shows them to generate as hints.`,
		Example: `  crucible synth masked-solutions --input gsm8k-train.jsonl --output gsm8k-masked.jsonl \
    --samples 4 --base-url http://127.0.0.1:8000/v1
  crucible synth list-prompts masked/hint > hint.yaml
  crucible generate --prompt hint.yaml --input gsm8k-masked.jsonl --output solutions.jsonl \
    --samples 8 --temperature 0.7 --base-url http://127.0.0.1:8000/v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.common(cmd, true)
			if err != nil {
				return err
			}
			defer c.Backend.Close()
			p, err := loadPrompt("prompt", f.g.prompt)
			if err != nil {
				return err
			}
			return finishSynth(synth.MaskedSolutions(cmd.Context(), synth.MaskedOptions{Common: c, Input: f.input,
				Output: f.output, N: f.g.samples, SolutionField: field, Prompt: p}))
		},
	}
	f.register(cmd, "prompt YAML replacing the built-in masked/solution (fields problem, solution)", "0.7", true)
	cmd.Flags().Lookup("samples").Usage = "masked candidates per problem"
	cmd.Flags().Set("samples", "4")
	cmd.Flags().Lookup("samples").DefValue = "4"
	cmd.Flags().StringVar(&field, "solution-field", "solution", "field of the reference solution")
	return cmd
}

func newSynthTopicsCmd() *cobra.Command {
	var f synthFlags
	var domain, level, subPrompt, convPrompt string
	var nMacro, nSub int
	var noMacro bool
	cmd := &cobra.Command{
		Annotations: map[string]string{inputOptional: "true"},
		Use:         "topics --output TOPICS",
		Short:       "Macro topics, then subtopics of each (Nemotron-4)",
		Long: `Topics asks for --n-macro macro topics (or reads them from --input: rows with topic or
macro_topic), then for --n-sub subtopics of each, and writes one row per distinct topic:
id, topic, macro_topic, topic_level (macro or sub), domain, and
subtopics_count_mismatch when the model listed another number than asked. Lists are
read locally (numbered, bulleted, YAML, JSON); only when that fails is the model asked
to convert its answer.`,
		Example: `  crucible synth topics --output topics.jsonl --n-macro 20 --n-sub 5 \
    --base-url https://integrate.api.nvidia.com/v1 --api-key-env NVIDIA_API_KEY \
    --model mistralai/mixtral-8x7b-instruct-v0.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.common(cmd, false)
			if err != nil {
				return err
			}
			defer c.Backend.Close()
			o := synth.TopicsOptions{Common: c, Input: f.input, Output: f.output, Domain: domain, SchoolLevel: level,
				MacroTopics: nMacro, Subtopics: nSub, NoMacroRows: noMacro}
			if o.MacroPrompt, err = loadPrompt("prompt", f.g.prompt); err != nil {
				return err
			}
			if o.SubPrompt, err = loadPrompt("subtopic-prompt", subPrompt); err != nil {
				return err
			}
			if o.ConvertPrompt, err = loadPrompt("convert-prompt", convPrompt); err != nil {
				return err
			}
			return finishSynth(synth.Topics(cmd.Context(), o))
		},
	}
	f.register(cmd, "prompt YAML replacing the built-in macro-topic prompt (fields n_macro_topics, school_level)", "0.7", false)
	cmd.Flags().MarkHidden("samples")
	cmd.Flags().StringVar(&domain, "domain", "general", "topic domain: general, math or python")
	cmd.Flags().StringVar(&level, "school-level", "high school", "school level of math topics")
	cmd.Flags().IntVar(&nMacro, "n-macro", 20, "macro topics to ask for")
	cmd.Flags().IntVar(&nSub, "n-sub", 5, "subtopics to ask for per macro topic")
	cmd.Flags().BoolVar(&noMacro, "no-macro-rows", false, "leave the macro topics themselves out of the output")
	cmd.Flags().StringVar(&subPrompt, "subtopic-prompt", "", "prompt YAML replacing the built-in subtopic prompt (fields macro_topic, n_subtopics)")
	cmd.Flags().StringVar(&convPrompt, "convert-prompt", "", "prompt YAML replacing the built-in list/convert (field llm_response)")
	return cmd
}

func newSynthPromptsCmd() *cobra.Command {
	var f synthFlags
	var kind, level, language, docField, join, revPrompt, convPrompt, cstyle string
	var n, revisions, constraints int
	var docTypes []string
	cmd := &cobra.Command{
		Use:   "prompts --kind KIND --input TOPICS --output PROMPTS",
		Short: "Synthetic prompts: open-qa, writing, closed-qa, math, coding (Nemotron-4)",
		Long: `Prompts asks for --n prompts per topic (rows with topic, e.g. from synth topics) or, for
closed-qa, per document (rows with document or text). open-qa and writing prompts go
through the revise-for-detail step when --revisions > 0 (only the revisions are kept).
writing pairs every topic with every --doc-type. closed-qa prompts join the document
and the instruction with --join. --constraints K adds K IFEval-style verifiable
instructions to each prompt (instruction_id_list, kwargs, base_prompt); check
responses with ` + "`crucible synth judge --mode instructions`" + `. Output rows: id, prompt, kind,
openline, the topic or document fields, *_count_mismatch when a list had another
length than asked.`,
		Example: `  crucible synth prompts --kind open-qa --input topics.jsonl --output open-qa.jsonl \
    --n 10 --revisions 2 --base-url http://127.0.0.1:8000/v1
  crucible synth prompts --kind writing --input topics.jsonl --output writing.jsonl \
    --doc-type Essay --doc-type Poem --n 5 --revisions 1 --constraints 1 --base-url http://127.0.0.1:8000/v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.common(cmd, true)
			if err != nil {
				return err
			}
			defer c.Backend.Close()
			o := synth.PromptsOptions{Common: c, Input: f.input, Output: f.output, Kind: kind, N: n, Revisions: revisions,
				DocTypes: docTypes, Level: level, Language: language, DocumentField: docField, Join: join, Constraints: constraints, ConstraintStyle: cstyle}
			if o.Prompt, err = loadPrompt("prompt", f.g.prompt); err != nil {
				return err
			}
			if o.RevisePrompt, err = loadPrompt("revise-prompt", revPrompt); err != nil {
				return err
			}
			if o.ConvertPrompt, err = loadPrompt("convert-prompt", convPrompt); err != nil {
				return err
			}
			return finishSynth(synth.GeneratePrompts(cmd.Context(), o))
		},
	}
	f.register(cmd, "prompt YAML replacing the built-in prompts/KIND", "0.7", true)
	cmd.Flags().MarkHidden("samples")
	fl := cmd.Flags()
	fl.StringVar(&kind, "kind", "open-qa", "prompt kind: "+strings.Join(synth.PromptKinds, ", "))
	fl.IntVar(&n, "n", 5, "prompts to ask for per topic or document")
	fl.IntVar(&revisions, "revisions", 0, "detailed rewrites per prompt (open-qa, writing; 0: no revise step)")
	fl.StringArrayVar(&docTypes, "doc-type", nil, "kind of text of writing tasks (repeatable; default Essay, Poem, Blog post, Newsletter)")
	fl.StringVar(&level, "level", "", "who math and coding problems are for (default: beginners who have just learnt the topic)")
	fl.StringVar(&language, "language", "Python", "programming language of coding problems")
	fl.StringVar(&docField, "document-field", "", "document field of closed-qa rows (default document, else text)")
	fl.StringVar(&join, "join", "", `closed-qa prompt from {document} and {instruction} (default "{document}\n\n{instruction}")`)
	fl.IntVar(&constraints, "constraints", 0, "IFEval-style verifiable instructions added to each prompt")
	fl.StringVar(&cstyle, "constraint-style", "append", "append (after the prompt) or all-turns (before it, for every turn of a dialogue)")
	fl.StringVar(&revPrompt, "revise-prompt", "", "prompt YAML replacing the built-in prompts/KIND-revise (fields openline, n_revisions)")
	fl.StringVar(&convPrompt, "convert-prompt", "", "prompt YAML replacing the built-in list/convert (field llm_response)")
	return cmd
}

func newSynthDialogueCmd() *cobra.Command {
	var f synthFlags
	var turns int
	var style, system, field string
	cmd := &cobra.Command{
		Use:   "dialogue --input PROMPTS --output DIALOGUES",
		Short: "Multi-turn dialogues in which the model plays user and assistant (Nemotron-4)",
		Long: `Dialogue answers each row's opening message (prompt, problem or question) as the
assistant, then has the model write the user's next message from the conversation so
far in the --user-style (normal, complex, concise, or mixed), for --turns user turns.
Output rows are the input rows plus messages ([{role, content}]), generation (the last
assistant message), user_style, and dialogue_stopped when the simulated user gave up.`,
		Example: `  crucible synth dialogue --input open-qa.jsonl --output dialogues.jsonl --turns 3 \
    --user-style mixed --base-url http://127.0.0.1:8000/v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.common(cmd, true)
			if err != nil {
				return err
			}
			defer c.Backend.Close()
			p, err := loadPrompt("prompt", f.g.prompt)
			if err != nil {
				return err
			}
			return finishSynth(synth.Dialogue(cmd.Context(), synth.DialogueOptions{Common: c, Input: f.input, Output: f.output,
				PromptField: field, Turns: turns, Samples: f.g.samples, UserStyle: style, System: system, UserPrompt: p}))
		},
	}
	f.register(cmd, "prompt YAML replacing the built-in user simulator dialogue/user-STYLE (field conversation_history)", "", true)
	cmd.Flags().Lookup("samples").Usage = "dialogues per input row"
	cmd.Flags().IntVar(&turns, "turns", 3, "user turns, the opening one included")
	cmd.Flags().StringVar(&style, "user-style", "normal", "simulated user: normal, complex, concise or mixed")
	cmd.Flags().StringVar(&system, "system", "", "system message of the assistant turns")
	cmd.Flags().StringVar(&field, "prompt-field", "", "field of the opening message (default prompt, problem or question)")
	return cmd
}

func newSynthJudgeCmd() *cobra.Command {
	var f synthFlags
	var mode, respField string
	var maxPairs int
	cmd := &cobra.Command{
		Use:   "judge --mode math|pairwise|instructions --input ROWS --output JUDGED",
		Short: "LLM judges: math answers, pairwise preference; IFEval instruction checks",
		Long: `Judge adds a verdict to each row (rows are keyed by id and sample, so generate's
output can be judged directly).
  math:         judgement ("...Judgement: Yes/No"), judge_correct, judged_by. No model call
                when there is no answer (No) or the grader decides (equal answers, or two
                different plain numbers).
  pairwise:     rows with prompt, response_a, response_b are judged in both orders;
                preferred is a, b, tie, or inconsistent when the orders disagree. Given k
                responses per prompt instead (generate's output), every pair of them is
                judged (at most --max-pairs); synth pairs --by judge then picks one per prompt.
  instructions: rows with instruction_id_list and kwargs (IFEval) get
                follow_instruction_list, follow_all_instructions and is_correct; no model.`,
		Example: `  crucible synth judge --mode math --input graded.jsonl --output judged.jsonl \
    --base-url http://127.0.0.1:8000/v1
  crucible synth judge --mode instructions --input responses.jsonl --output checked.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var c synth.Common
			var err error
			if mode == synth.JudgeInstructions {
				if f.input == "" || f.output == "" {
					return fmt.Errorf("--input and --output are required")
				}
				shard, err := record.ParseShard(f.g.shard)
				if err != nil {
					return fmt.Errorf("--shard: %w", err)
				}
				c = synth.Common{Limit: f.g.limit, Shard: shard, RetryErrors: f.g.retryErrors, Concurrency: f.b.concurrency,
					Command: cmd.CommandPath(), Version: version, Config: flagConfig(cmd)}
			} else {
				if c, err = f.common(cmd, true); err != nil {
					return err
				}
				defer c.Backend.Close()
			}
			p, err := loadPrompt("prompt", f.g.prompt)
			if err != nil {
				return err
			}
			return finishSynth(synth.Judge(cmd.Context(), synth.JudgeOptions{Common: c, Input: f.input, Output: f.output,
				Mode: mode, ResponseField: respField, Prompt: p, MaxPairs: maxPairs}))
		},
	}
	f.register(cmd, "prompt YAML replacing the built-in judge/math or judge/pairwise", "", true)
	cmd.Flags().MarkHidden("samples")
	cmd.Flags().StringVar(&mode, "mode", synth.JudgeMath, "math, pairwise or instructions")
	cmd.Flags().StringVar(&respField, "response-field", "generation", "field of the judged response")
	cmd.Flags().IntVar(&maxPairs, "max-pairs", 0, "pairs judged per prompt when the input holds k responses per prompt (0: all)")
	return cmd
}

func newSynthRewardCmd() *cobra.Command {
	var f synthFlags
	var api, path, weights, respField string
	cmd := &cobra.Command{
		Use:   "reward --input RESPONSES --output SCORED --base-url URL",
		Short: "Reward-model scores (Nemotron-4-340B-Reward attributes, or a scalar endpoint)",
		Long: `Reward scores each row (keyed by id and sample) with a reward model. The conversation
is the row's messages (plus the response as the assistant turn), else its prompt,
problem or question and the response. --reward-api nemotron posts a chat completion
ending with the assistant turn and reads the attribute scores from
choices[0].logprobs.content[] (helpfulness, correctness, coherence, complexity,
verbosity); --reward-api scalar posts {"model","messages"} to --reward-path (vLLM's
/pooling by default) and reads one number. Fields: reward (attributes combined with
--weights) and reward_attributes.`,
		Example: `  export NVIDIA_API_KEY=...
  crucible synth reward --input responses.jsonl --output scored.jsonl \
    --base-url https://integrate.api.nvidia.com/v1 --api-key-env NVIDIA_API_KEY \
    --model nvidia/nemotron-4-340b-reward`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.input == "" || f.output == "" {
				return fmt.Errorf("--input and --output are required")
			}
			if len(f.b.baseURLs) != 1 {
				return fmt.Errorf("--base-url: give the reward server once")
			}
			shard, err := record.ParseShard(f.g.shard)
			if err != nil {
				return fmt.Errorf("--shard: %w", err)
			}
			w, err := parseWeights(weights)
			if err != nil {
				return err
			}
			key, err := f.b.apiKey()
			if err != nil {
				return err
			}
			base := strings.TrimRight(f.b.baseURLs[0], "/")
			if !strings.HasSuffix(base, "/v1") {
				base += "/v1"
			}
			retries := f.b.maxRetries
			if retries == 0 {
				retries = -1
			}
			client := &synth.RewardClient{BaseURL: base, APIKey: key, Model: f.b.model, API: api, Path: path,
				MaxRetries: retries, Timeout: f.b.timeout}
			c := synth.Common{Limit: f.g.limit, Shard: shard, RetryErrors: f.g.retryErrors, Concurrency: f.b.concurrency,
				Command: cmd.CommandPath(), Version: version, Config: flagConfig(cmd)}
			return finishSynth(synth.Reward(cmd.Context(), synth.RewardOptions{Common: c, Input: f.input, Output: f.output,
				Client: client, Weights: w, ResponseField: respField}))
		},
	}
	f.register(cmd, "unused", "", true)
	for _, name := range []string{"samples", "prompt", "completion", "temperature", "top-p", "top-k", "min-p",
		"repetition-penalty", "max-tokens", "seed", "stop", "backend", "work-dir"} {
		cmd.Flags().MarkHidden(name)
	}
	cmd.Flags().StringVar(&api, "reward-api", synth.RewardNemotron, "reward API: nemotron (attribute scores in logprobs) or scalar")
	cmd.Flags().StringVar(&path, "reward-path", "", "endpoint below --base-url (default /chat/completions for nemotron, /pooling for scalar)")
	cmd.Flags().StringVar(&weights, "weights", "helpfulness=0.3,correctness=0.74,coherence=0.46,complexity=0.47,verbosity=-0.33",
		"attribute weights of the combined reward")
	cmd.Flags().StringVar(&respField, "response-field", "generation", "field of the scored response")
	return cmd
}

// parseWeights reads "name=w,name=w".
func parseWeights(s string) (map[string]float64, error) {
	w := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--weights: %q: want name=number", part)
		}
		w[strings.TrimSpace(k)] = x
	}
	if len(w) == 0 {
		return nil, fmt.Errorf("--weights: no weights given")
	}
	return w, nil
}

func newSynthPairsCmd() *cobra.Command {
	var input, output, by, respField, shardSpec string
	var margin, minChosen float64
	var limit int
	cmd := &cobra.Command{
		Use:   "pairs --input RESPONSES --output PAIRS --by reward|correctness|judge",
		Short: "Preference pairs (chosen/rejected) from k responses per prompt",
		Long: `Pairs groups responses by prompt (rows sharing an id, one per sample) and writes one
pair per prompt: the prompt's fields, prompt, chosen, rejected, chosen_reward,
rejected_reward, chosen_sample, rejected_sample, pair_rule.
  reward:      best vs worst by reward (from synth reward), kept when the gap >= --margin
               and chosen_reward >= --min-chosen.
  correctness: a correct response (is_correct, else judge_correct) vs an incorrect one;
               rewards break ties.
  judge:       rows judged by synth judge --mode pairwise; ties and inconsistent verdicts
               make no pair.
The manifest counts prompts without a pair by reason.`,
		Example: `  crucible synth pairs --input scored.jsonl --output pairs.jsonl --by reward --margin 0.5`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" || output == "" {
				return fmt.Errorf("--input and --output are required")
			}
			shard, err := record.ParseShard(shardSpec)
			if err != nil {
				return fmt.Errorf("--shard: %w", err)
			}
			o := synth.PairsOptions{Common: synth.Common{Limit: limit, Shard: shard, Command: cmd.CommandPath(),
				Version: version, Config: flagConfig(cmd)}, Input: input, Output: output, By: by, Margin: margin,
				ResponseField: respField}
			if cmd.Flags().Changed("min-chosen") {
				o.MinChosen = &minChosen
			}
			return finishSynth(synth.Pairs(cmd.Context(), o))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&input, "input", "", "responses (JSONL or Parquet; a file, glob, comma list or -)")
	fl.StringVar(&output, "output", "", "output JSONL (resumed if it exists)")
	fl.StringVar(&by, "by", synth.PairsByReward, "rule: reward, correctness or judge")
	fl.Float64Var(&margin, "margin", 0, "least chosen_reward - rejected_reward of a pair")
	fl.Float64Var(&minChosen, "min-chosen", 0, "least reward of a chosen response (off unless given)")
	fl.StringVar(&respField, "response-field", "generation", "field of the response")
	fl.IntVar(&limit, "limit", 0, "take only the first N prompts (after --shard)")
	fl.StringVar(&shardSpec, "shard", "", "process shard i/n of the prompts (by a hash of the id)")
	return cmd
}

func newSynthPromptListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list-prompts [NAME]",
		Short:   "List the built-in synthesis prompts, or print one as YAML-ready text",
		Example: "  crucible synth list-prompts\n  crucible synth list-prompts judge/math > my-judge.yaml",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if len(args) == 0 {
				for _, n := range synth.BuiltinPrompts() {
					p, err := synth.Prompt(n)
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "%-24s %s\n", n, strings.Join(strings.Fields(p.Config.Description), " "))
				}
				return nil
			}
			b, err := synth.PromptSource(args[0])
			if err != nil {
				return err
			}
			_, err = w.Write(b)
			return err
		},
	}
}
