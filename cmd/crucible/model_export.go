package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/engine/gguf"
	"github.com/crucible-ml/crucible/engine/hub"
)

func newModelExportCmd() *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "export DIR|org/name --format gguf --output FILE",
		Short: "Write a model as GGUF (llama.cpp's tensor names and metadata), for llama.cpp and ollama",
		Long: `Converts a Llama, Qwen2, Mamba-2 or Nemotron-H checkpoint to GGUF the way llama.cpp's
convert_hf_to_gguf.py does: llama.cpp tensor names (token_embd, blk.N.attn_q, blk.N.ssm_in, ...),
its metadata keys (general.architecture, <arch>.block_count, <arch>.ssm.*, per-layer arrays for
Nemotron-H), q/k rows permuted for Llama's RoPE layout, A_log stored as -exp(A_log), and the
tokenizer (gpt2 BPE) when tokenizer.json is present. Matrices keep their dtype (f32, f16, bf16).`,
		Example: `  crucible model export models/Qwen2.5-0.5B-Instruct --format gguf --output qwen.gguf`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "gguf" {
				return fmt.Errorf("--format %q: only gguf is supported", format)
			}
			if out == "" {
				return fmt.Errorf("--output FILE is required")
			}
			dir, err := hub.Resolve(cmd.Context(), args[0], hub.OptionsFromEnv())
			if err != nil {
				return err
			}
			if err := gguf.Export(dir, out); err != nil {
				return err
			}
			f, err := gguf.Open(out)
			if err != nil {
				return fmt.Errorf("re-reading %s: %w", out, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, %d tensors, %d metadata keys\n", out, f.String("general.architecture"), len(f.Tensors), len(f.KVs))
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "gguf", "output format (gguf)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file")
	cmd.Flags().StringVar(&out, "out", "", "output file")
	cmd.Flags().MarkDeprecated("out", "use --output, as every other command does")
	return cmd
}
