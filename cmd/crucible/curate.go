package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/backend/openai"
	"github.com/crucible-ml/crucible/curate"
	"github.com/crucible-ml/crucible/data"
	"github.com/crucible-ml/crucible/prompt"
)

func init() { commands = append(commands, newCurateCmd) }

func newCurateCmd() *cobra.Command {
	var config, tokDir, promptName, embedURL, embedModel, memLimit, job string
	var shards, task int
	var listJobs bool
	var o curate.FileOptions
	var b backendFlags
	var gf gradeFlags
	cmd := &cobra.Command{
		Use:   "curate --input FILE --output FILE --config STEPS.yaml",
		Short: "Filter, deduplicate, decontaminate and downsample solutions into a training set",
		Long: `Curate runs the steps of a YAML config over the input rows (aggregate majority
answers, filters, trimming, expressions, exact and MinHash dedup, 13-gram and LLM
decontamination, fair downsampling), then exports what is left. Every removed row
goes to --removed with removed_by and removed_reason; --report writes the funnel
(JSON, and Markdown next to it). Memory stays near --memory-limit whatever the
input's size: rows are split by problem into partitions under OUTPUT.cache/work.
See examples/curate-*.yaml.`,
		Example: `  crucible curate --input graded.jsonl --output sft.jsonl --config examples/curate-omi2.yaml \
    --format messages --removed removed.jsonl --report report.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Input == "" || o.Output == "" || config == "" {
				return fmt.Errorf("--input, --output and --config are required")
			}
			p, err := curate.LoadPipeline(config)
			if err != nil {
				return err
			}
			if memLimit != "" {
				if o.MemoryLimit, err = curate.ParseSize(memLimit); err != nil {
					return fmt.Errorf("--memory-limit: %w", err)
				}
			}
			if o.Env.Grade, err = gf.options(); err != nil {
				return err
			}
			o.Env.Concurrency = b.concurrency
			if promptName != "" {
				if o.Export.Prompt, err = prompt.Load(promptName); err != nil {
					return err
				}
			}
			if tokDir != "" {
				if o.Env.Tokens, err = curate.TokenCounter(tokDir); err != nil {
					return err
				}
				if o.Export.Format == curate.FormatNeMo {
					if o.Export.Template, err = curate.LoadChatTemplate(tokDir); err != nil {
						return err
					}
				}
			}
			if p.NeedsModel() {
				be, err := b.open()
				if err != nil {
					return fmt.Errorf("an llm decontaminate step needs a model: %w", err)
				}
				defer be.Close()
				o.Env.Backend = be
				if embedURL != "" {
					key, err := b.apiKey()
					if err != nil {
						return err
					}
					if o.Env.Embedder, err = openai.New(openai.Options{BaseURLs: []string{embedURL}, Model: embedModel, APIKey: key}); err != nil {
						return err
					}
				}
			}
			o.Version, o.Config, o.Funnel = version, flagConfig(cmd), cmd.ErrOrStderr()
			if shards > 0 {
				sh, err := curate.PrepareShards(cmd.Context(), p, o, shards)
				if err != nil {
					return err
				}
				if listJobs {
					return printJSON(cmd.OutOrStdout(), sh.Status())
				}
				return sh.RunTask(cmd.Context(), job, task)
			}
			_, err = curate.RunFile(cmd.Context(), p, o)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Input, "input", "", "input rows (JSONL or Parquet; file, glob, comma list or -)")
	fl.StringVar(&o.Output, "output", "", "output file (.jsonl, or .parquet)")
	fl.StringVar(&config, "config", "", "YAML list of steps")
	fl.StringVar(&o.Export.Format, "format", curate.FormatRows, "export format: "+strings.Join(curate.Formats, ", "))
	fl.StringVar(&o.Removed, "removed", "", "removed rows (with removed_by, removed_reason) go here (default OUTPUT.removed.jsonl; - for none)")
	fl.StringVar(&o.Report, "report", "", "the report goes here, JSON plus a .md next to it (default OUTPUT.report.json; - for none)")
	fl.StringVar(&tokDir, "tokenizer", "", "model folder with tokenizer.json: token length filters and the nemo format's chat template")
	fl.StringVar(&o.Env.DataDir, "data-dir", data.DefaultDir(), "folder of benchmark data for decontamination")
	fl.StringVar(&promptName, "prompt", "", "prompt that renders the user turn of SFT formats (default: the problem text)")
	fl.StringVar(&embedURL, "embeddings-url", "", "OpenAI-compatible /v1/embeddings server for the llm decontamination's retrieval (default: a built-in TF-IDF index)")
	fl.StringVar(&embedModel, "embeddings-model", "", "embedding model name")
	fl.StringVar(&memLimit, "memory-limit", "", "memory to stay within, e.g. 2G (default a sixteenth of RAM); bigger inputs are curated in more partitions under OUTPUT.cache, with the same result")
	fl.IntVar(&shards, "shards", 0, "run one task of a curation cut into this many partitions (what crucible run does for a stage with shards)")
	fl.StringVar(&job, "job", "", "with --shards: the job (split, pass-N, decide-N, write)")
	fl.IntVar(&task, "task", 0, "with --shards: the task of the job")
	fl.BoolVar(&listJobs, "jobs", false, "with --shards: print the jobs and their unfinished tasks as JSON")
	b.register(cmd)
	gf.register(cmd, false)
	return cmd
}
