package curate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/engine/chat"
	"github.com/crucible-ml/crucible/engine/tokenizer"
)

// LoadPipeline reads and parses a config file; errors name the file.
func LoadPipeline(path string) (*Pipeline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParsePipeline(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// NeedsModel reports whether a step asks a model (the llm decontamination),
// so that Env.Backend must be set.
func (p *Pipeline) NeedsModel() bool {
	for _, s := range p.Steps {
		if s.Kind == "decontaminate" && s.Args["method"] == "llm" {
			return true
		}
	}
	return false
}

// FileOptions configure RunFile.
type FileOptions struct {
	Input  string // rows: JSONL or Parquet, a file, glob, comma list or -
	Output string // the training set: .jsonl, or .parquet
	// Removed receives the removed rows with removed_by and removed_reason
	// (default OUTPUT.removed.jsonl; "-": nowhere).
	Removed string
	// Report receives the report as JSON and Markdown beside it (default
	// OUTPUT.report.json; "-": nowhere).
	Report string
	Export ExportOptions
	// Env is what the steps need; CacheDir defaults to OUTPUT.cache.
	Env Env
	// Version and Config are recorded in the output's manifest.
	Version string
	Config  any
	// Funnel, when set, receives the funnel as a table.
	Funnel io.Writer
	// MemoryLimit bounds the memory the curation aims to use, in bytes
	// (0: DefaultMemoryLimit). Larger inputs are curated in more
	// partitions; the result does not depend on it.
	MemoryLimit int64
	// Observe, when set, receives the time of each piece of the work.
	Observe func(StepTiming)
}

// RunFile curates one file into a training set: it reads the input rows,
// runs the pipeline in memory bounded by o.MemoryLimit (see
// DefaultMemoryLimit; work files go under the cache folder), exports what is
// left, writes the removed rows, the report and the output's manifest, and
// returns the report.
func RunFile(ctx context.Context, p *Pipeline, o FileOptions) (*Report, error) {
	o.defaults()
	if err := o.Export.Check(); err != nil {
		return nil, err
	}
	if p.NeedsModel() && o.Env.Backend == nil {
		return nil, fmt.Errorf("an llm decontaminate step needs a model")
	}
	if err := os.MkdirAll(o.Env.CacheDir, 0o755); err != nil {
		return nil, err
	}
	rep, _, err := runBounded(ctx, p, &o)
	return rep, err
}

// FunnelTable is the funnel as a plain-text table: step, rows in, removed,
// rows out.
func (r *Report) FunnelTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s %9s %9s %9s\n", "step", "in", "removed", "out")
	for _, f := range r.Funnel {
		fmt.Fprintf(&b, "%-24s %9d %9d %9d\n", f.Step, f.In, f.Removed, f.Out)
	}
	return b.String()
}

// TokenCounter loads the tokenizer of a model folder as a token counter
// for Env.Tokens.
func TokenCounter(dir string) (func(string) int, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	return func(s string) int { return len(tok.Encode(s, false)) }, nil
}

// LoadChatTemplate loads the chat template of a model folder for
// ExportOptions.Template. Its end of turn is what the template writes after
// an assistant message, else the EOS token.
func LoadChatTemplate(dir string) (ChatTemplate, error) {
	cfg, err := tokenizer.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	t, err := chat.Compile(cfg.ChatTemplate)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	ct := &modelTemplate{t: t, opt: chat.Options{BOSToken: cfg.BOSToken, EOSToken: cfg.EOSToken}}
	eot, ok, err := t.EndOfTurn(ct.opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if !ok {
		slog.Warn("cannot find the end-of-turn text of the chat template; using the EOS token", "dir", dir)
		eot = cfg.EOSToken
	}
	ct.endOfTurn = eot
	return ct, nil
}

// modelTemplate adapts a model's Jinja chat template to ChatTemplate.
type modelTemplate struct {
	t         *chat.Template
	opt       chat.Options
	endOfTurn string
}

func (c *modelTemplate) Render(msgs []backend.Message, gen bool) (string, error) {
	ms := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		ms[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	opt := c.opt
	opt.AddGenerationPrompt = gen
	return c.t.Render(ms, opt)
}

func (c *modelTemplate) EndOfTurn() string { return c.endOfTurn }
