package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/sandbox"
	"github.com/crucible-ml/crucible/solve"
)

// sandboxFlags configure a sandbox pool; serve, run and bench share them.
type sandboxFlags struct {
	python      string
	warm        int
	maxSessions int
	idle        time.Duration
	timeout     time.Duration
	replay      bool
	noPreload   bool
	memory      int64
	tmpSize     int64
	procs       int
	unsafe      bool
}

func (f *sandboxFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.python, "python", "/usr/bin/python3", "Python interpreter run in the sandbox")
	fl.IntVar(&f.warm, "warm-workers", 4, "ready workers kept for new sessions (-1: none)")
	fl.IntVar(&f.maxSessions, "max-sessions", 128, "most live sessions (each holds a Python worker, ~70 MB with numpy and sympy)")
	fl.DurationVar(&f.idle, "idle-timeout", 10*time.Minute, "end sessions unused for this long")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "time limit of a block when the request gives none")
	fl.BoolVar(&f.replay, "replay", false, "after a worker is killed, re-run the session's earlier successful blocks")
	fl.BoolVar(&f.noPreload, "no-preload", false, "do not pre-import numpy and sympy in warm workers")
	fl.Int64Var(&f.memory, "memory", sandbox.DefaultLimits.AddressSpace>>20, "address-space limit per process, MiB")
	fl.Int64Var(&f.tmpSize, "tmp-size", sandbox.DefaultLimits.TmpSize>>20, "size of the private /tmp, MiB")
	fl.IntVar(&f.procs, "max-procs", sandbox.DefaultLimits.Processes, "processes and threads per sandbox")
	fl.BoolVar(&f.unsafe, "unsafe-no-isolation", false, "run code WITHOUT namespaces where they cannot be set up (only for trusted code)")
}

func (f *sandboxFlags) config() sandbox.Config {
	cfg := sandbox.Config{
		Python:            f.python,
		WarmWorkers:       f.warm,
		MaxSessions:       f.maxSessions,
		IdleTimeout:       f.idle,
		DefaultTimeout:    f.timeout,
		Replay:            f.replay,
		UnsafeNoIsolation: f.unsafe,
		Limits: sandbox.Limits{
			AddressSpace: f.memory << 20,
			TmpSize:      f.tmpSize << 20,
			Processes:    f.procs,
		},
	}
	if f.noPreload {
		cfg.Preload = []string{}
	}
	return cfg
}

// codeExecFlags are the flags of the code-interpreter loop (OpenMathInstruct-1
// style solutions). A command that generates (generate, eval) registers them
// and calls apply on its solve.Options before solve.Run.
type codeExecFlags struct {
	enabled     bool
	sandboxURL  string
	maxExec     int
	stopOnError bool
	timeout     time.Duration
	maxOutput   int
	tags        string
	unsafe      bool
}

func (f *codeExecFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.enabled, "code-execution", false, "run the Python blocks the model writes and feed their output back (code-interpreter solutions)")
	fl.StringVar(&f.sandboxURL, "sandbox-url", "", "a running crucible sandbox serve (or NeMo-Skills sandbox), e.g. http://127.0.0.1:6000; default: an in-process sandbox")
	fl.IntVar(&f.maxExec, "max-code-executions", 8, "code blocks run per solution (OpenMathInstruct-1: 3)")
	fl.BoolVar(&f.stopOnError, "stop-on-code-error", false, "end a solution at its first failing block (OpenMathInstruct-1) instead of showing the error to the model")
	fl.DurationVar(&f.timeout, "code-execution-timeout", 10*time.Second, "time limit of one block")
	fl.IntVar(&f.maxOutput, "max-code-output-characters", 1000, "cap on a block's output; longer output is cut with <output cut>")
	fl.StringVar(&f.tags, "code-tags", "", "code delimiters: llm-code (<llm-code> tags) or fences (Markdown python and output fences); default: the prompt's code_tags, else llm-code")
	fl.BoolVar(&f.unsafe, "unsafe-no-isolation", false, "run model-written code WITHOUT namespaces where they cannot be set up")
}

// apply sets o.Generate to the code-interpreter loop when --code-execution
// is given (o.Backend must be set). The returned function releases the
// sandbox; call it after solve.Run.
func (f *codeExecFlags) apply(ctx context.Context, o *solve.Options) (func(), error) {
	if !f.enabled {
		return func() {}, nil
	}
	ce := &solve.CodeExecution{Backend: o.Backend, MaxExecutions: f.maxExec, StopOnError: f.stopOnError,
		Timeout: f.timeout, MaxOutputChars: f.maxOutput}
	switch {
	case f.tags != "":
		tags, err := prompt.ParseCodeTags(f.tags)
		if err != nil {
			return nil, fmt.Errorf("--code-tags: %w", err)
		}
		ce.Tags = tags
	case o.Prompt != nil && o.Prompt.Config.CodeTags != nil:
		ce.Tags = *o.Prompt.Config.CodeTags
	}
	release := func() {}
	if f.sandboxURL != "" {
		ce.Sandbox = &sandbox.Client{BaseURL: f.sandboxURL}
	} else {
		pool, err := sandbox.NewPool(ctx, sandbox.Config{UnsafeNoIsolation: f.unsafe})
		if err != nil {
			return nil, err
		}
		ce.Sandbox, release = pool, func() { pool.Close() }
	}
	o.Generate = ce.Generate
	return release, nil
}
