package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/engine"
)

func newModelQuantizeCmd() *cobra.Command {
	var out string
	var fp8 bool
	var o engine.QuantizeFP8Options
	cmd := &cobra.Command{
		Use:   "quantize DIR --fp8 --output DIR2",
		Short: "Write a ModelOpt-style FP8 checkpoint (E4M3 weights, per-channel scales) that vLLM loads",
		Long: `Quantize --fp8 rounds the weight of every linear projection inside the layers to OCP E4M3
(nearest even, saturated) with a float32 weight_scale = amax/448 per output channel (--per-tensor:
one per weight), keeps embeddings, the LM head, norms and SSM parameters as they are, and writes
config.json with quantization_config {quant_method: modelopt, quant_algo: FP8_PER_CHANNEL_PER_TOKEN
(or FP8), exclude_modules} plus hf_quant_config.json, as vLLM's ModelOpt loader reads them. The
engine loads the result (dequantized to bf16).`,
		Example: `  crucible model quantize ./qwen --fp8 --output ./qwen-fp8`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !fp8 {
				return fmt.Errorf("give the format: --fp8 (the one supported)")
			}
			if out == "" {
				return fmt.Errorf("--output DIR2 is required")
			}
			var last time.Time
			o.Progress = func(done, total int) {
				if now := time.Now(); now.Sub(last) >= 250*time.Millisecond || done == total {
					last = now
					fmt.Fprintf(os.Stderr, "\rquantizing: %d / %d tensors   ", done, total)
				}
			}
			res, err := engine.QuantizeFP8(cmd.Context(), args[0], out, o)
			if !last.IsZero() {
				fmt.Fprintln(os.Stderr)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d weights in FP8 E4M3, %d tensors kept, %s; largest weight error %.4f of its row's amax\n",
				out, res.Quantized, res.Kept, human(float64(res.Bytes), "B"), res.MaxRelErr)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "folder to write (new)")
	cmd.Flags().BoolVar(&fp8, "fp8", false, "quantize to FP8 E4M3 (ModelOpt format)")
	cmd.Flags().BoolVar(&o.PerTensor, "per-tensor", false, "one scale per weight (quant_algo FP8) instead of per output channel")
	cmd.Flags().StringSliceVar(&o.Exclude, "exclude", nil, "module names (or substrings) to keep unquantized")
	return cmd
}
