package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/curate"
	"github.com/crucible-ml/crucible/data"
	"github.com/crucible-ml/crucible/engine/chat"
	"github.com/crucible-ml/crucible/engine/tokenizer"
	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/progress"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

func init() { commands = append(commands, newCurateCmd) }

func newCurateCmd() *cobra.Command {
	var input, output, config, format, removed, report, tokDir, dataDir, promptName, embedURL, embedModel string
	var b backendFlags
	cmd := &cobra.Command{
		Use:   "curate --input FILE --output FILE --config STEPS.yaml",
		Short: "Filter, deduplicate, decontaminate and downsample solutions into a training set",
		Long: `Curate runs the steps of a YAML config over the input rows (aggregate majority
answers, filters, trimming, expressions, exact and MinHash dedup, 13-gram and LLM
decontamination, fair downsampling), then exports what is left. Every removed row
goes to --removed with removed_by and removed_reason; --report writes the funnel
(JSON, and Markdown next to it). See examples/curate-*.yaml.`,
		Example: `  crucible curate --input graded.jsonl --output sft.jsonl --config examples/curate-omi2.yaml \
    --format messages --removed removed.jsonl --report report.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" || output == "" || config == "" {
				return fmt.Errorf("--input, --output and --config are required")
			}
			start := time.Now()
			base := strings.TrimSuffix(strings.TrimSuffix(output, ".jsonl"), ".parquet")
			if removed == "" {
				removed = base + ".removed.jsonl"
			}
			if report == "" {
				report = base + ".report.json"
			}
			cfgBytes, err := os.ReadFile(config)
			if err != nil {
				return err
			}
			p, err := curate.ParsePipeline(cfgBytes)
			if err != nil {
				return fmt.Errorf("%s: %w", config, err)
			}
			env := curate.Env{DataDir: dataDir, CacheDir: output + ".cache", Concurrency: b.concurrency, Grade: grade.DefaultOptions()}
			eo := curate.ExportOptions{Format: format}
			if promptName != "" {
				if eo.Prompt, err = prompt.Load(promptName); err != nil {
					return err
				}
			}
			if tokDir != "" {
				tok, err := tokenizer.Load(tokDir)
				if err != nil {
					return err
				}
				env.Tokens = func(s string) int { return len(tok.Encode(s, false)) }
				if format == curate.FormatNeMo {
					if eo.Template, err = loadChatTemplate(tokDir); err != nil {
						return err
					}
				}
			}
			if needsModel(p) {
				be, err := b.open()
				if err != nil {
					return fmt.Errorf("an llm decontaminate step needs a model: %w", err)
				}
				defer be.Close()
				env.Backend = be
				if embedURL != "" {
					c, err := openai.New(openai.Options{BaseURLs: []string{embedURL}, Model: embedModel, APIKey: os.Getenv(b.apiKeyEnvOr("OPENAI_API_KEY"))})
					if err != nil {
						return err
					}
					env.Embedder = c
				}
			}
			rows, err := readAll(input)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(env.CacheDir, 0o755); err != nil {
				return err
			}
			d := curate.NewDataset(rows)
			if err := p.Run(cmd.Context(), d, env); err != nil {
				return err
			}
			n, err := d.Export(output, eo)
			if err != nil {
				return err
			}
			if removed != "-" {
				if err := writeRows(removed, d.Removed); err != nil {
					return err
				}
			}
			rep := curate.NewReport(d)
			if report != "-" {
				jb, _ := json.MarshalIndent(rep, "", "  ")
				if err := os.WriteFile(report, append(jb, '\n'), 0o644); err != nil {
					return err
				}
				md := strings.TrimSuffix(report, filepath.Ext(report)) + ".md"
				if err := os.WriteFile(md, []byte(rep.Markdown()), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprint(cmd.ErrOrStderr(), funnelText(rep))
			return record.WriteManifest(&record.Manifest{
				Output: output, Command: "curate", Version: version, Rows: n, Written: n,
				Counts: map[string]int{"rows_in": rep.RowsIn, "removed": len(d.Removed)}, Config: flagConfig(cmd),
				Started: start.UTC(), Finished: time.Now().UTC(), WallSeconds: time.Since(start).Seconds(),
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&input, "input", "", "input rows (JSONL or Parquet; file, glob, comma list or -)")
	fl.StringVar(&output, "output", "", "output file (.jsonl, or .parquet)")
	fl.StringVar(&config, "config", "", "YAML list of steps")
	fl.StringVar(&format, "format", curate.FormatRows, "export format: "+strings.Join(curate.Formats, ", "))
	fl.StringVar(&removed, "removed", "", "removed rows (with removed_by, removed_reason) go here (default OUTPUT.removed.jsonl; - for none)")
	fl.StringVar(&report, "report", "", "the report goes here, JSON plus a .md next to it (default OUTPUT.report.json; - for none)")
	fl.StringVar(&tokDir, "tokenizer", "", "model folder with tokenizer.json: token length filters and the nemo format's chat template")
	fl.StringVar(&dataDir, "data-dir", data.DefaultDir(), "folder of benchmark data for decontamination")
	fl.StringVar(&promptName, "prompt", "", "prompt that renders the user turn of SFT formats (default: the problem text)")
	fl.StringVar(&embedURL, "embeddings-url", "", "OpenAI-compatible /v1/embeddings server for the llm decontamination's retrieval (default: a built-in TF-IDF index)")
	fl.StringVar(&embedModel, "embeddings-model", "", "embedding model name")
	b.register(cmd)
	return cmd
}

func (f *backendFlags) apiKeyEnvOr(def string) string {
	if f.apiKeyEnv != "" {
		return f.apiKeyEnv
	}
	return def
}

func needsModel(p *curate.Pipeline) bool {
	for _, s := range p.Steps {
		if s.Kind == "decontaminate" && s.Args["method"] == "llm" {
			return true
		}
	}
	return false
}

// readAll reads every row of spec, with progress.
func readAll(spec string) ([]*record.Row, error) {
	in, err := record.Open(spec)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	bar := progress.New("read "+spec, record.CountRows(spec))
	defer bar.Finish()
	var rows []*record.Row
	for in.Next() {
		rows = append(rows, in.Row())
		bar.Add(1)
	}
	return rows, in.Err()
}

func writeRows(path string, rows []*record.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := curate.WriteJSONL(f, rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func funnelText(rep *curate.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s %9s %9s %9s\n", "step", "in", "removed", "out")
	for _, f := range rep.Funnel {
		fmt.Fprintf(&b, "%-24s %9d %9d %9d\n", f.Step, f.In, f.Removed, f.Out)
	}
	return b.String()
}

// chatTemplate adapts a model's Jinja chat template to curate.ChatTemplate.
type chatTemplate struct {
	t         *chat.Template
	bos, eos  string
	endOfTurn string
}

func loadChatTemplate(dir string) (*chatTemplate, error) {
	cfg, err := tokenizer.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	t, err := chat.Compile(cfg.ChatTemplate)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	ct := &chatTemplate{t: t, bos: cfg.BOSToken, eos: cfg.EOSToken}
	// What follows an assistant message is the template's end of turn.
	const mark = "\x00CRUCIBLE-END-OF-TURN\x00"
	s, err := t.Render([]chat.Message{{Role: "user", Content: "u"}, {Role: "assistant", Content: mark}}, chat.Options{BOSToken: ct.bos, EOSToken: ct.eos})
	if err != nil {
		return nil, err
	}
	if i := strings.Index(s, mark); i >= 0 {
		ct.endOfTurn = s[i+len(mark):]
	} else {
		slog.Warn("cannot find the end-of-turn text of the chat template; using the EOS token", "dir", dir)
		ct.endOfTurn = ct.eos
	}
	return ct, nil
}

func (c *chatTemplate) Render(msgs []backend.Message, gen bool) (string, error) {
	ms := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		ms[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	return c.t.Render(ms, chat.Options{AddGenerationPrompt: gen, BOSToken: c.bos, EOSToken: c.eos})
}

func (c *chatTemplate) EndOfTurn() string { return c.endOfTurn }
