package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/synth"
)

// synthRecipes are the synth commands that run a recipe of package synth;
// newSynthRecipeCmd gives each the shared flags and prelude.
var synthRecipes = []synthRecipe{
	{
		use:   "augment --input SEEDS --output NEW",
		short: "New math problems from seed problems (OpenMathInstruct-2)",
		long: `Augment asks for --samples new problems per seed problem: for MATH seeds (--source math)
a new problem inspired by the seed that needs another approach, for GSM8K seeds
(--source gsm8k) a similar problem. Each output row has id (SEED-augK), problem,
problem_source (augmented_math or augmented_gsm8k), seed_id, seed_problem and the
seed's other fields (its answer and solution as seed_*). Near-copies of the seed
(character 5-gram Jaccard >= --max-similarity; digits masked for MATH), repeats,
refusals and truncated answers go to --dropped with dropped_reason.`,
		example: `  crucible synth augment --input math-train.jsonl --output new-problems.jsonl --source math \
    --samples 8 --temperature 0.7 --base-url http://127.0.0.1:8000/v1`,
		temperature: "0.7", samples: "new problems per seed problem", samplesDefault: "4",
		prompt: "prompt YAML replacing the built-in augment/math or augment/gsm8k (field problem)",
		flags: func(fl *pflag.FlagSet, f *synthFlags) synthAction {
			var source, dropped string
			var maxSim float64
			fl.StringVar(&source, "source", "math", "seed style: math (inspired, another approach) or gsm8k (similar)")
			fl.StringVar(&dropped, "dropped", "", "where dropped problems go (default OUTPUT without .jsonl + .dropped.jsonl)")
			fl.Float64Var(&maxSim, "max-similarity", 0.7, "drop a new problem this similar to its seed (character 5-gram Jaccard)")
			return synthAction{run: func(ctx context.Context, c synth.Common, p *prompt.Prompt) (*synth.Report, error) {
				return synth.Augment(ctx, synth.AugmentOptions{Common: c, Input: f.input, Output: f.output,
					Dropped: dropped, Source: source, N: f.g.samples, MaxSimilarity: maxSim, Prompt: p})
			}}
		},
	},
	{
		use:   "masked-solutions --input PROBLEMS --output MASKED",
		short: "Reference solutions with computed values masked (OpenMathInstruct-1)",
		long: `Masked-solutions asks for --samples rewrites of each reference solution in which the
values the solution computes become symbols, and keeps per problem the candidate with
the fewest digits within ±50% of the reference length, dropping candidates that still
reveal the answer (fallbacks: the candidate closest to the length window, then the
original solution). Output rows are the input rows plus reference_masked_solution,
masked_solution_source (masked, masked-any-length, original), masked_sample and
masked_candidates. The built-in masked/hint prompt shows them to generate as hints.`,
		example: `  crucible synth masked-solutions --input gsm8k-train.jsonl --output gsm8k-masked.jsonl \
    --samples 4 --base-url http://127.0.0.1:8000/v1
  crucible synth list-prompts masked/hint > hint.yaml
  crucible generate --prompt hint.yaml --input gsm8k-masked.jsonl --output solutions.jsonl \
    --samples 8 --temperature 0.7 --base-url http://127.0.0.1:8000/v1`,
		temperature: "0.7", samples: "masked candidates per problem", samplesDefault: "4",
		prompt: "prompt YAML replacing the built-in masked/solution (fields problem, solution)",
		flags: func(fl *pflag.FlagSet, f *synthFlags) synthAction {
			var field string
			fl.StringVar(&field, "solution-field", "solution", "field of the reference solution")
			return synthAction{run: func(ctx context.Context, c synth.Common, p *prompt.Prompt) (*synth.Report, error) {
				return synth.MaskedSolutions(ctx, synth.MaskedOptions{Common: c, Input: f.input,
					Output: f.output, N: f.g.samples, SolutionField: field, Prompt: p})
			}}
		},
	},
	{
		use:   "topics --output TOPICS",
		short: "Macro topics, then subtopics of each (Nemotron-4)",
		long: `Topics asks for --n-macro macro topics (or reads them from --input: rows with topic or
macro_topic), then for --n-sub subtopics of each, and writes one row per distinct topic:
id, topic, macro_topic, topic_level (macro or sub), domain, and
subtopics_count_mismatch when the model listed another number than asked. Lists are
read locally (numbered, bulleted, YAML, JSON); only when that fails is the model asked
to convert its answer.`,
		example: `  crucible synth topics --output topics.jsonl --n-macro 20 --n-sub 5 \
    --base-url https://integrate.api.nvidia.com/v1 --api-key-env NVIDIA_API_KEY \
    --model mistralai/mixtral-8x7b-instruct-v0.1`,
		inputOptional: true, temperature: "0.7",
		prompt: "prompt YAML replacing the built-in macro-topic prompt (fields n_macro_topics, school_level)",
		flags: func(fl *pflag.FlagSet, f *synthFlags) synthAction {
			var domain, level, subPrompt, convPrompt string
			var nMacro, nSub int
			var noMacro bool
			fl.StringVar(&domain, "domain", "general", "topic domain: general, math or python")
			fl.StringVar(&level, "school-level", "high school", "school level of math topics")
			fl.IntVar(&nMacro, "n-macro", 20, "macro topics to ask for")
			fl.IntVar(&nSub, "n-sub", 5, "subtopics to ask for per macro topic")
			fl.BoolVar(&noMacro, "no-macro-rows", false, "leave the macro topics themselves out of the output")
			fl.StringVar(&subPrompt, "subtopic-prompt", "", "prompt YAML replacing the built-in subtopic prompt (fields macro_topic, n_subtopics)")
			fl.StringVar(&convPrompt, "convert-prompt", "", "prompt YAML replacing the built-in list/convert (field llm_response)")
			return synthAction{run: func(ctx context.Context, c synth.Common, p *prompt.Prompt) (*synth.Report, error) {
				o := synth.TopicsOptions{Common: c, Input: f.input, Output: f.output, Domain: domain, SchoolLevel: level,
					MacroTopics: nMacro, Subtopics: nSub, NoMacroRows: noMacro, MacroPrompt: p}
				var err error
				if o.SubPrompt, err = loadPrompt("subtopic-prompt", subPrompt); err != nil {
					return nil, err
				}
				if o.ConvertPrompt, err = loadPrompt("convert-prompt", convPrompt); err != nil {
					return nil, err
				}
				return synth.Topics(ctx, o)
			}}
		},
	},
	{
		use:   "prompts --kind KIND --input TOPICS --output PROMPTS",
		short: "Synthetic prompts: open-qa, writing, closed-qa, math, coding (Nemotron-4)",
		long: `Prompts asks for --n prompts per topic (rows with topic, e.g. from synth topics) or, for
closed-qa, per document (rows with document or text). open-qa and writing prompts go
through the revise-for-detail step when --revisions > 0 (only the revisions are kept).
writing pairs every topic with every --doc-type. closed-qa prompts join the document
and the instruction with --join. --constraints K adds K IFEval-style verifiable
instructions to each prompt (instruction_id_list, kwargs, base_prompt); check
responses with ` + "`crucible synth judge --mode instructions`" + `. Output rows: id, prompt, kind,
openline, the topic or document fields, *_count_mismatch when a list had another
length than asked.`,
		example: `  crucible synth prompts --kind open-qa --input topics.jsonl --output open-qa.jsonl \
    --n 10 --revisions 2 --base-url http://127.0.0.1:8000/v1
  crucible synth prompts --kind writing --input topics.jsonl --output writing.jsonl \
    --doc-type Essay --doc-type Poem --n 5 --revisions 1 --constraints 1 --base-url http://127.0.0.1:8000/v1`,
		temperature: "0.7", prompt: "prompt YAML replacing the built-in prompts/KIND",
		flags: func(fl *pflag.FlagSet, f *synthFlags) synthAction {
			var kind, level, language, docField, join, revPrompt, convPrompt, cstyle string
			var n, revisions, constraints int
			var docTypes []string
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
			return synthAction{run: func(ctx context.Context, c synth.Common, p *prompt.Prompt) (*synth.Report, error) {
				o := synth.PromptsOptions{Common: c, Input: f.input, Output: f.output, Kind: kind, N: n, Revisions: revisions,
					DocTypes: docTypes, Level: level, Language: language, DocumentField: docField, Join: join,
					Constraints: constraints, ConstraintStyle: cstyle, Prompt: p}
				var err error
				if o.RevisePrompt, err = loadPrompt("revise-prompt", revPrompt); err != nil {
					return nil, err
				}
				if o.ConvertPrompt, err = loadPrompt("convert-prompt", convPrompt); err != nil {
					return nil, err
				}
				return synth.GeneratePrompts(ctx, o)
			}}
		},
	},
	{
		use:   "dialogue --input PROMPTS --output DIALOGUES",
		short: "Multi-turn dialogues in which the model plays user and assistant (Nemotron-4)",
		long: `Dialogue answers each row's opening message (prompt, problem or question) as the
assistant, then has the model write the user's next message from the conversation so
far in the --user-style (normal, complex, concise, or mixed), for --turns user turns.
Output rows are the input rows plus messages ([{role, content}]), generation (the last
assistant message), user_style, and dialogue_stopped when the simulated user gave up.`,
		example: `  crucible synth dialogue --input open-qa.jsonl --output dialogues.jsonl --turns 3 \
    --user-style mixed --base-url http://127.0.0.1:8000/v1`,
		samples: "dialogues per input row", samplesDefault: "1",
		prompt: "prompt YAML replacing the built-in user simulator dialogue/user-STYLE (field conversation_history)",
		flags: func(fl *pflag.FlagSet, f *synthFlags) synthAction {
			var turns int
			var style, system, field string
			fl.IntVar(&turns, "turns", 3, "user turns, the opening one included")
			fl.StringVar(&style, "user-style", "normal", "simulated user: normal, complex, concise or mixed")
			fl.StringVar(&system, "system", "", "system message of the assistant turns")
			fl.StringVar(&field, "prompt-field", "", "field of the opening message (default prompt, problem or question)")
			return synthAction{run: func(ctx context.Context, c synth.Common, p *prompt.Prompt) (*synth.Report, error) {
				return synth.Dialogue(ctx, synth.DialogueOptions{Common: c, Input: f.input, Output: f.output,
					PromptField: field, Turns: turns, Samples: f.g.samples, UserStyle: style, System: system, UserPrompt: p})
			}}
		},
	},
	{
		use:   "judge --mode math|pairwise|instructions --input ROWS --output JUDGED",
		short: "LLM judges: math answers, pairwise preference; IFEval instruction checks",
		long: `Judge adds a verdict to each row (rows are keyed by id and sample, so generate's
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
		example: `  crucible synth judge --mode math --input graded.jsonl --output judged.jsonl \
    --base-url http://127.0.0.1:8000/v1
  crucible synth judge --mode instructions --input responses.jsonl --output checked.jsonl`,
		prompt: "prompt YAML replacing the built-in judge/math or judge/pairwise",
		flags: func(fl *pflag.FlagSet, f *synthFlags) synthAction {
			var mode, respField string
			var maxPairs int
			fl.StringVar(&mode, "mode", synth.JudgeMath, "math, pairwise or instructions")
			fl.StringVar(&respField, "response-field", "generation", "field of the judged response")
			fl.IntVar(&maxPairs, "max-pairs", 0, "pairs judged per prompt when the input holds k responses per prompt (0: all)")
			return synthAction{
				noModel: func() bool { return mode == synth.JudgeInstructions },
				run: func(ctx context.Context, c synth.Common, p *prompt.Prompt) (*synth.Report, error) {
					return synth.Judge(ctx, synth.JudgeOptions{Common: c, Input: f.input, Output: f.output,
						Mode: mode, ResponseField: respField, Prompt: p, MaxPairs: maxPairs})
				},
			}
		},
	},
	{
		use:   "reward --input RESPONSES --output SCORED --base-url URL",
		short: "Reward-model scores (Nemotron-4-340B-Reward attributes, or a scalar endpoint)",
		long: `Reward scores each row (keyed by id and sample) with a reward model. The conversation
is the row's messages (plus the response as the assistant turn), else its prompt,
problem or question and the response. --reward-api nemotron posts a chat completion
ending with the assistant turn and reads the attribute scores from
choices[0].logprobs.content[] (helpfulness, correctness, coherence, complexity,
verbosity); --reward-api scalar posts {"model","messages"} to --reward-path (vLLM's
/pooling by default) and reads one number. Fields: reward (attributes combined with
--weights) and reward_attributes.`,
		example: `  export NVIDIA_API_KEY=...
  crucible synth reward --input responses.jsonl --output scored.jsonl \
    --base-url https://integrate.api.nvidia.com/v1 --api-key-env NVIDIA_API_KEY \
    --model nvidia/nemotron-4-340b-reward`,
		ownClient: true,
		flags: func(fl *pflag.FlagSet, f *synthFlags) synthAction {
			var api, path, weights, respField string
			fl.StringVar(&api, "reward-api", synth.RewardNemotron, "reward API: nemotron (attribute scores in logprobs) or scalar")
			fl.StringVar(&path, "reward-path", "", "endpoint below --base-url (default /chat/completions for nemotron, /pooling for scalar)")
			fl.StringVar(&weights, "weights", "helpfulness=0.3,correctness=0.74,coherence=0.46,complexity=0.47,verbosity=-0.33",
				"attribute weights of the combined reward")
			fl.StringVar(&respField, "response-field", "generation", "field of the scored response")
			return synthAction{noModel: func() bool { return true }, run: func(ctx context.Context, c synth.Common, _ *prompt.Prompt) (*synth.Report, error) {
				if len(f.b.baseURLs) != 1 {
					return nil, fmt.Errorf("--base-url: give the reward server once")
				}
				w, err := parseWeights(weights)
				if err != nil {
					return nil, err
				}
				key, err := f.b.apiKey()
				if err != nil {
					return nil, err
				}
				base := strings.TrimRight(f.b.baseURLs[0], "/")
				if !strings.HasSuffix(base, "/v1") {
					base += "/v1"
				}
				client := &synth.RewardClient{BaseURL: base, APIKey: key, Model: f.b.model, API: api, Path: path,
					MaxRetries: f.b.retries(), Timeout: f.b.timeout, BackoffBase: f.b.backoff}
				return synth.Reward(ctx, synth.RewardOptions{Common: c, Input: f.input, Output: f.output,
					Client: client, Weights: w, ResponseField: respField})
			}}
		},
	},
}
