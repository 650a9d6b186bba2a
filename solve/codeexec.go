package solve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/sandbox"
)

// Executor runs code blocks in sessions: a *sandbox.Pool (in-process) or a
// *sandbox.Client (a sandbox server).
type Executor interface {
	Execute(ctx context.Context, sessionID, code string, opts sandbox.ExecOptions) (sandbox.Result, error)
	EndSession(ctx context.Context, sessionID string) error
}

// CodeExecution is the code-interpreter generation loop of OpenMathInstruct-1
// and NeMo-Skills: generation stops at the code-end tag, the block runs in the
// solution's sandbox session, its output is appended between the output tags,
// and generation goes on, until the model stops writing code or the limit of
// executions is reached. Its Generate method plugs into Options.Generate.
type CodeExecution struct {
	Backend backend.Backend
	Sandbox Executor
	Tags    prompt.CodeTags // default prompt.LLMCodeTags

	// MaxExecutions caps the blocks run per solution (default 8, NeMo-Skills
	// today; OpenMathInstruct-1 used 3). A block written after the last
	// allowed one is left in the text, not run.
	MaxExecutions int
	// StopOnError ends the solution after the first block that fails
	// (OpenMathInstruct-1); otherwise errors are shown to the model.
	StopOnError bool
	// Timeout is a block's time limit (default 10 s); MaxOutputChars caps
	// its stdout and stderr (default 1000, then "<output cut>").
	Timeout        time.Duration
	MaxOutputChars int
	// Language is the sandbox language (default "ipython": the value of a
	// last bare expression is printed, like a notebook).
	Language string
}

// Generate runs the loop for one request. It adds code_executions and
// code_errors to out; the returned text holds the whole solution, code
// outputs included.
func (c *CodeExecution) Generate(ctx context.Context, req *backend.Request, out *record.Row) (*backend.Response, error) {
	tags := c.Tags
	if tags.CodeBegin == "" || tags.CodeEnd == "" {
		tags = prompt.LLMCodeTags
	}
	maxExec := c.MaxExecutions
	if maxExec <= 0 {
		maxExec = 8
	}
	session := newSessionID()
	defer func() {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		c.Sandbox.EndSession(ectx, session)
	}()

	var gen strings.Builder
	var total backend.Response
	executions, errs := 0, 0
	for {
		r := *req
		r.Stop = append(append([]string(nil), req.Stop...), tags.CodeEnd)
		if req.MaxTokens > 0 {
			r.MaxTokens = req.MaxTokens - total.CompletionTokens
			if r.MaxTokens <= 0 {
				total.FinishReason = backend.FinishLength
				break
			}
		}
		if gen.Len() > 0 {
			continueFrom(&r, req, gen.String())
		}
		resp, err := c.Backend.Generate(ctx, &r)
		if err != nil {
			return nil, fmt.Errorf("code execution, round %d: %w", executions+1, err)
		}
		if total.PromptTokens == 0 {
			total.PromptTokens = resp.PromptTokens
		}
		total.CompletionTokens += resp.CompletionTokens
		total.FinishReason, total.StopString = resp.FinishReason, resp.StopString
		text := resp.Text
		// Servers leave the stop string out of the text: put the code end
		// back when it is what stopped generation.
		so := gen.String() + text
		if resp.FinishReason == backend.FinishStop && !strings.HasSuffix(so, tags.CodeEnd) &&
			(resp.StopString == tags.CodeEnd ||
				resp.StopString == "" && strings.Count(so, tags.CodeBegin) == strings.Count(so, tags.CodeEnd)+1) {
			text += tags.CodeEnd
		}
		gen.WriteString(text)
		code, ok := lastBlock(gen.String(), tags)
		if !ok {
			break // no code to run: the solution is finished
		}
		if executions >= maxExec {
			break
		}
		// Leading blank lines would shift the line numbers of tracebacks.
		code = strings.TrimLeft(code, "\r\n")
		res, err := c.execute(ctx, session, code)
		if err != nil {
			return nil, fmt.Errorf("code execution %d: %w", executions+1, err)
		}
		executions++
		failed := res.Status != sandbox.StatusCompleted
		if failed {
			errs++
		}
		gen.WriteString(formatOutput(tags, res.Stdout+res.Stderr))
		if failed && c.StopOnError {
			break
		}
	}
	out.Set("code_executions", executions)
	out.Set("code_errors", errs)
	total.Text = gen.String()
	return &total, nil
}

// continueFrom makes r continue the solution gen: appended to a completion
// prompt; for a chat, as the assistant's turn followed by a user turn asking
// it to continue (as NeMo-Skills does).
func continueFrom(r, orig *backend.Request, gen string) {
	if !orig.IsChat() {
		r.Prompt = orig.Prompt + gen
		return
	}
	r.Messages = append(append([]backend.Message(nil), orig.Messages...),
		backend.Message{Role: "assistant", Content: gen},
		backend.Message{Role: "user", Content: "continue"})
}

// lastBlock returns the code of the block that text ends with: text must end
// with the code end, and the last code begin must come after the previous
// code end.
func lastBlock(text string, tags prompt.CodeTags) (string, bool) {
	if !strings.HasSuffix(text, tags.CodeEnd) {
		return "", false
	}
	body := text[:len(text)-len(tags.CodeEnd)]
	b := strings.LastIndex(body, tags.CodeBegin)
	if b < 0 || strings.LastIndex(body, tags.CodeEnd) > b {
		return "", false
	}
	return body[b+len(tags.CodeBegin):], true
}

// formatOutput renders a block's output the way OpenMathInstruct-1 and
// NeMo-Skills append it: "\n<llm-code-output>\n42\n</llm-code-output>\n" for
// tags without newlines, "```output\n42\n```\n" for fences.
func formatOutput(tags prompt.CodeTags, output string) string {
	var b strings.Builder
	begin, end := tags.CodeOutputBegin, tags.CodeOutputEnd
	if begin == "" {
		begin, end = prompt.LLMCodeTags.CodeOutputBegin, prompt.LLMCodeTags.CodeOutputEnd
	}
	if !strings.HasSuffix(begin, "\n") {
		b.WriteString("\n" + begin + "\n")
	} else {
		b.WriteString(begin)
	}
	b.WriteString(output)
	if output != "" && !strings.HasSuffix(output, "\n") {
		b.WriteString("\n")
	}
	b.WriteString(end)
	if !strings.HasSuffix(end, "\n") {
		b.WriteString("\n")
	}
	return b.String()
}

// execute runs a block; when the sandbox has no room for another session
// (every session busy: a server's HTTP 503) it waits for one, as long as the
// server's Retry-After says when it gives one, and tries again.
func (c *CodeExecution) execute(ctx context.Context, session, code string) (sandbox.Result, error) {
	opts := sandbox.ExecOptions{Timeout: c.timeout(), MaxOutputChars: c.maxOutput(), Language: c.language()}
	wait := 10 * time.Millisecond
	for {
		res, err := c.Sandbox.Execute(ctx, session, code, opts)
		if !errors.Is(err, sandbox.ErrTooManySessions) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("waiting for a sandbox session: %w", ctx.Err())
		case <-time.After(max(wait, min(sandbox.RetryAfter(err), time.Minute))):
		}
		wait = min(2*wait, time.Second)
	}
}

func (c *CodeExecution) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 10 * time.Second
}

func (c *CodeExecution) maxOutput() int {
	if c.MaxOutputChars > 0 {
		return c.MaxOutputChars
	}
	return 1000
}

func (c *CodeExecution) language() string {
	if c.Language != "" {
		return c.Language
	}
	return "ipython"
}

func newSessionID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("solve: no randomness for a session id"))
	}
	return "solve-" + hex.EncodeToString(b[:])
}
