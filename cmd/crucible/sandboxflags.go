package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/sandbox"
	"github.com/crucible-ml/crucible/solve"
)

// sandboxFlags configure a sandbox pool; serve, run and bench share them.
type sandboxFlags struct {
	python      string
	warm        int
	maxSessions int
	maxRunning  int
	idle        time.Duration
	timeout     time.Duration
	replay      bool
	noPreload   bool
	memory      int64
	tmpSize     int64
	procs       int
	sessionMem  int64
	cgroup      string
	unsafe      bool
}

func (f *sandboxFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.python, "python", "/usr/bin/python3", "Python interpreter run in the sandbox")
	fl.IntVar(&f.warm, "warm-workers", 4, "sessions forked ahead for new ones (-1: none)")
	fl.IntVar(&f.maxSessions, "max-sessions", 128, "most live sessions; past it a new one ends the idle session used least recently (all busy: HTTP 503 + Retry-After)")
	fl.IntVar(&f.maxRunning, "max-running", 0, "blocks admitted to run at once, round-robin across sessions (0: 4 x CPUs, at least 16)")
	fl.DurationVar(&f.idle, "idle-timeout", 10*time.Minute, "end sessions unused for this long")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "time limit of a block when the request gives none")
	fl.BoolVar(&f.replay, "replay", false, "after a worker is killed, re-run the session's earlier successful blocks")
	fl.BoolVar(&f.noPreload, "no-preload", false, "do not pre-import numpy and sympy in warm workers")
	fl.Int64Var(&f.memory, "memory", sandbox.DefaultLimits.AddressSpace>>20, "address-space limit per process, MiB")
	fl.Int64Var(&f.tmpSize, "tmp-size", sandbox.DefaultLimits.TmpSize>>20, "size of the private /tmp, MiB")
	fl.IntVar(&f.procs, "max-procs", sandbox.DefaultLimits.Processes, "processes and threads per sandbox")
	fl.Int64Var(&f.sessionMem, "session-memory", sandbox.DefaultLimits.Memory>>20, "memory.max of a session's cgroup, MiB (where the host delegates a cgroup v2 subtree)")
	fl.StringVar(&f.cgroup, "cgroup", "", "cgroup v2 limits per session: empty finds a delegated cgroup, off for none, or a delegated cgroup directory")
	fl.BoolVar(&f.unsafe, "unsafe-no-isolation", false, "run code WITHOUT namespaces where they cannot be set up (only for trusted code)")
}

func (f *sandboxFlags) config() sandbox.Config {
	cfg := sandbox.Config{
		Python:            f.python,
		WarmWorkers:       f.warm,
		MaxSessions:       f.maxSessions,
		MaxRunning:        f.maxRunning,
		IdleTimeout:       f.idle,
		DefaultTimeout:    f.timeout,
		Replay:            f.replay,
		UnsafeNoIsolation: f.unsafe,
		Cgroup:            f.cgroup,
		Limits: sandbox.Limits{
			AddressSpace: f.memory << 20,
			TmpSize:      f.tmpSize << 20,
			Processes:    f.procs,
			Memory:       f.sessionMem << 20,
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
	sandboxKey  string
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
	fl.StringVar(&f.sandboxKey, "sandbox-api-key-env", "", "environment variable holding the API key of --sandbox-url (its sandbox serve --api-key-env)")
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
	if f.sandboxKey != "" && f.sandboxURL == "" {
		return nil, fmt.Errorf("--sandbox-api-key-env needs --sandbox-url")
	}
	if f.sandboxURL != "" {
		key := ""
		if f.sandboxKey != "" {
			var err error
			if key, err = openai.KeyFromEnv(f.sandboxKey); err != nil {
				return nil, err
			}
		}
		ce.Sandbox = &sandbox.Client{BaseURL: f.sandboxURL, APIKey: key}
	} else {
		// A session per solution in flight (generate's default is 256), so
		// that none is evicted while its solution waits for the model.
		pool, err := sandbox.NewPool(ctx, sandbox.Config{UnsafeNoIsolation: f.unsafe, MaxSessions: max(256, o.Concurrency)})
		if err != nil {
			return nil, err
		}
		ce.Sandbox, release = pool, func() { pool.Close() }
	}
	o.Generate = ce.Generate
	return release, nil
}
