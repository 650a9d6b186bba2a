package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/engine"
	"github.com/crucible-ml/crucible/engine/hub"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

func init() { commands = append(commands, newModelCmd) }

// hubOptions reads the Hugging Face environment (HF_HOME, HF_TOKEN,
// HF_HUB_OFFLINE, HF_ENDPOINT) and reports download progress on stderr.
func hubOptions() hub.Options {
	o := hub.OptionsFromEnv()
	var last time.Time
	o.Progress = func(file string, done, total int64) {
		if now := time.Now(); now.Sub(last) < 250*time.Millisecond && done != total {
			return
		} else {
			last = now
		}
		if total > 0 {
			fmt.Fprintf(os.Stderr, "\rdownloading %s: %s / %s (%.0f%%)   ", file, human(float64(done), "B"),
				human(float64(total), "B"), 100*float64(done)/float64(total))
			if done == total {
				fmt.Fprintln(os.Stderr)
			}
		} else {
			fmt.Fprintf(os.Stderr, "\rdownloading %s: %s   ", file, human(float64(done), "B"))
		}
	}
	return o
}

// loadModel loads a model folder or an org/name hub repository.
func loadModel(ctx context.Context, model string, opts engine.Options) (engine.Model, string, error) {
	dir, err := hub.Resolve(ctx, model, hubOptions())
	if err != nil {
		return nil, "", err
	}
	m, err := engine.LoadWith(dir, opts)
	return m, dir, err
}

func newModelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Inspect and check models for the built-in CPU engine",
	}
	cmd.AddCommand(newModelCheckCmd(), newModelInfoCmd(), newModelExportCmd(), newModelInitCmd())
	cmd.AddCommand(newModelPruneCmd())
	cmd.AddCommand(newModelQuantizeCmd())
	return cmd
}

func newModelCheckCmd() *cobra.Command {
	var refPath string
	var opts engine.Options
	cmd := &cobra.Command{
		Use:   "check DIR|org/name",
		Short: "Compare the engine's logits and greedy tokens with a reference file",
		Long: `Check runs the model in DIR on the reference prompt (prompt_ids), compares the logits at every
position with prefill_logits, then decodes greedily as many tokens as gen_ids holds, comparing
each step's logits with gen_logits and each chosen id with gen_ids. It prints the largest error
and exits with status 1 when max|Δ| / max(1, max|ref|) > 1e-4 or any id differs.`,
		Example: `  crucible model check ./my-model
  crucible model check ./my-model --reference ./reference.safetensors --matmul bf16`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, dir, err := loadModel(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			if refPath == "" {
				refPath = filepath.Join(dir, "reference.safetensors")
			}
			defer m.Close()
			ref, err := safetensors.Open(refPath)
			if err != nil {
				return err
			}
			defer ref.Close()
			res, err := engine.Check(cmd.Context(), m, ref)
			if err != nil {
				return fmt.Errorf("check %s: %w", dir, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "model:           %s (%s)\n", dir, m.Config().Architecture)
			fmt.Fprintf(out, "prompt tokens:   %d\n", res.PromptTokens)
			fmt.Fprintf(out, "prefill max|Δ|:  %.3g\n", res.PrefillMaxErr)
			fmt.Fprintf(out, "decode max|Δ|:   %.3g (%d tokens)\n", res.GenMaxErr, res.GenTokens)
			fmt.Fprintf(out, "max|ref|:        %.3g\n", res.RefMaxAbs)
			fmt.Fprintf(out, "relative error:  %.3g (tolerance %g)\n", res.RelErr, engine.CheckTolerance)
			fmt.Fprintf(out, "greedy ids:      %d of %d differ\n", res.IDMismatches, res.GenTokens)
			if !res.OK() {
				return exitError{code: exitVerdict, msg: fmt.Sprintf("FAIL: %s does not match its reference", dir)}
			}
			fmt.Fprintln(out, "OK")
			return nil
		},
	}
	cmd.Flags().StringVar(&refPath, "reference", "", "reference file (default DIR/reference.safetensors)")
	cmd.Flags().StringVar(&opts.Matmul, "matmul", "", matmulHelp)
	cmd.Flags().StringVar(&opts.KVCache, "kv-cache", "", kvCacheHelp)
	cmd.Flags().StringVar(&opts.Quantize, "quantize", "", quantizeHelp)
	return cmd
}

func newModelInfoCmd() *cobra.Command {
	var e engineFlags
	cmd := &cobra.Command{
		Use:   "info DIR|org/name",
		Short: "Show a model's architecture, size and memory per sequence",
		Example: `  crucible model info ./my-model
  crucible model info Qwen/Qwen2.5-0.5B-Instruct`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.check(); err != nil {
				return err
			}
			lo := e.localOptions(args[0], 0)
			m, _, err := loadModel(cmd.Context(), args[0], engine.Options{Threads: lo.Threads, Quantize: lo.Quantize, Matmul: lo.Matmul, KVCache: lo.KVCache})
			if err != nil {
				return err
			}
			mm, err := engine.ResolveMatmul(lo.Matmul)
			if err != nil {
				return err
			}
			defer m.Close()
			info := m.Info()
			c := m.Config()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "architecture:          %s\n", info.Architecture)
			fmt.Fprintf(out, "layers:                %s\n", info.Layers)
			fmt.Fprintf(out, "hidden size:           %d\n", c.HiddenSize)
			fmt.Fprintf(out, "vocabulary:            %d\n", c.VocabSize)
			fmt.Fprintf(out, "parameters:            %d (%s)\n", info.Parameters, human(float64(info.Parameters), ""))
			fmt.Fprintf(out, "weights:               %s\n", human(float64(info.WeightBytes), "B"))
			fmt.Fprintf(out, "KV cache per token:    %d bytes (float32)\n", info.KVBytesPerToken)
			fmt.Fprintf(out, "constant state per sequence: %d bytes (%s, float32)\n", info.StateBytes, human(float64(info.StateBytes), "B"))
			fmt.Fprintf(out, "kernels:               %s (of %v)\n", engine.ActiveKernel(), engine.Kernels())
			fmt.Fprintf(out, "matmul:                %s\n", mm)
			return nil
		},
	}
	e.register(cmd.Flags(), false)
	return cmd
}

// human formats n with a metric suffix (k, M, G, T).
func human(n float64, unit string) string {
	for _, s := range []string{"", "k", "M", "G"} {
		if n < 1000 {
			return fmt.Sprintf("%.4g %s%s", n, s, unit)
		}
		n /= 1000
	}
	return fmt.Sprintf("%.4g T%s", n, unit)
}
