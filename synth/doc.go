// Package synth makes synthetic training data with language models: new
// math problems from seed problems (OpenMathInstruct-2), masked reference
// solutions (OpenMathInstruct-1), the Nemotron-4 prompt pipelines (topics,
// open Q&A, writing, closed Q&A, math and coding prompts with a
// revise-for-detail step, IFEval-style verifiable constraints, multi-turn
// dialogues), LLM judges, reward-model scores and preference pairs.
//
// Every pipeline reads and writes JSON rows (package record) and resumes
// like `crucible generate`: each model step runs through solve.Run (or, for
// rows already keyed by (id, sample), an equivalent loop), so a rerun after
// a crash skips what its files hold and sends byte-identical requests for
// the rest. Multi-step pipelines keep one file per step under OUTPUT.work;
// requests that fail after their retries are recorded on their row
// (`error`) and retried with RetryErrors.
//
// Lists in the model's free text (numbered, bulleted, YAML, JSON) are read
// locally by ParseList; only when that fails is the model asked to convert
// its answer, and a row whose list length differs from the one requested
// says so (`count_mismatch`).
//
// Every built-in prompt (BuiltinPrompts) is our own wording of the
// published recipes and can be replaced by a YAML prompt file (Prompt).
//
//	be, _ := openai.New(openai.Options{BaseURLs: []string{"http://127.0.0.1:8000/v1"}})
//	rep, err := synth.Topics(ctx, synth.TopicsOptions{
//		Common:      synth.Common{Backend: be, Params: backend.Request{Temperature: 0.7, MaxTokens: 1024}},
//		Output:      "topics.jsonl",
//		MacroTopics: 20, Subtopics: 5,
//	})
//	rep, err = synth.GeneratePrompts(ctx, synth.PromptsOptions{
//		Common: synth.Common{Backend: be}, Kind: "open-qa",
//		Input:  "topics.jsonl", Output: "prompts.jsonl", N: 10, Revisions: 2,
//	})
package synth
