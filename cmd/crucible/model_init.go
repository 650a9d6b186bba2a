package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/engine"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

func newModelInitCmd() *cobra.Command {
	var out, dtype, tok string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "init CONFIG.json --output DIR",
		Short: "Write a model folder with random weights of a config's shapes, for smoke tests and benchmarks",
		Long: `Init reads a Hugging Face config.json of an architecture the engine runs (Llama, Mistral,
Qwen2, Mamba-2 in transformers' or mamba_ssm's format, Nemotron-H) and writes DIR: random weights of
every tensor under the names and in the shapes of the real checkpoints (one model.safetensors, or
5 GB shards with model.safetensors.index.json), the tokenizer files of --tokenizer, and the config
copied as it is, last. The weights are generated and written a few MB at a time, so a 16 GB model
needs no more memory than a small one. The folder loads like a downloaded one; the model computes
garbage at the real model's cost.`,
		Example: `  crucible model init engine/testdata/configs/nemotron-h-8b-base-8k/config.json --output /tmp/nh8b
  crucible model init qwen/config.json --output /tmp/qwen --tokenizer models/Qwen2.5-0.5B-Instruct --dtype f32`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--output DIR is required")
			}
			opts := engine.InitOptions{Seed: seed, Tokenizer: tok}
			switch strings.ToLower(dtype) {
			case "bf16":
				opts.DType = safetensors.BF16
			case "f32":
				opts.DType = safetensors.F32
			default:
				return fmt.Errorf("--dtype %q: want bf16 or f32", dtype)
			}
			var last time.Time
			opts.Progress = func(done, total int64) {
				if now := time.Now(); now.Sub(last) >= 250*time.Millisecond || done == total {
					last = now
					fmt.Fprintf(os.Stderr, "\rwriting weights: %s / %s (%.0f%%)   ", human(float64(done), "B"),
						human(float64(total), "B"), 100*float64(done)/float64(max(total, 1)))
				}
			}
			res, err := engine.InitModel(args[0], out, opts)
			if !last.IsZero() {
				fmt.Fprintln(os.Stderr) // ends the progress line
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %s, %s parameters, %s of %s weights\n", out, res.Config.Architecture,
				human(float64(res.Parameters), ""), human(float64(res.WeightBytes), "B"), strings.ToLower(string(opts.DType)))
			fmt.Fprintf(w, "files: %s\n", strings.Join(res.Files, " "))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "folder to write (new, or without a model)")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "random seed: the same seed writes the same bytes")
	cmd.Flags().StringVar(&dtype, "dtype", "bf16", "weight dtype: bf16 or f32")
	cmd.Flags().StringVar(&tok, "tokenizer", "", "folder whose tokenizer files (tokenizer.json, tokenizer_config.json, ...) are copied")
	return cmd
}
