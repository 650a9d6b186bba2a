package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/engine"
	"github.com/crucible-ml/crucible/engine/safetensors"
)

func init() { benchCommands = append(benchCommands, newBenchEngineCmd) }

func newBenchEngineCmd() *cobra.Command {
	var preset, configPath, modelDir, dtype, batches, contexts, kernel string
	var e engineFlags
	var prefill, steps, samples, samplesPrompt, samplesTokens int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "engine",
		Short: "Prefill and decode speed of the built-in engine on a model folder or random weights of a real shape, next to the machine's rooflines",
		Long: `Loads a model folder (--model) or builds a model with random weights of a preset shape
(` + strings.Join(engine.Presets(), ", ") + `) or of any config.json, and measures: the streaming-read
bandwidth of all threads (one figure, the best of probes before and after the decode rows)
and the GEMM peak of the product the model runs (f32, bf16 products or int8), prefill
tokens/s and GFLOP/s (the output layer counted once, for the last position), and decode
tokens/s for every batch size and context length (caches filled with random state instead
of a prefill). Each decode row has two rooflines, bandwidth (bytes read per step: weights
once, KV caches, Mamba states) and compute (FLOPs per token at the GEMM peak), the one that
binds and the ratio to it. The process's RSS after load and its peak are the engine's alone
(random weights are released once the model holds its copy). Rates are given by the wall
clock and per CPU-second (times the threads), since a shared machine's wall clock varies.`,
		Example: `  crucible bench engine --preset qwen2.5-0.5b --batch 1,8,32 --context 0,2048
  crucible bench engine --model ./Qwen2.5-0.5B --matmul auto --batch 1,32 --context 512
  crucible bench engine --preset nemotron-h --batch 16 --context 0,8192 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg *engine.Config
			var err error
			name := preset
			if err := e.check(); err != nil {
				return err
			}
			if modelDir != "" {
				name = modelDir
			} else if configPath != "" {
				b, rerr := os.ReadFile(configPath)
				if rerr != nil {
					return rerr
				}
				cfg, err = engine.ParseConfig(b)
				name = configPath
			} else {
				cfg, err = engine.PresetConfig(preset)
			}
			if err != nil {
				return err
			}
			var dt safetensors.DType
			switch strings.ToLower(dtype) {
			case "bf16", "bfloat16":
				dt = safetensors.BF16
			case "f32", "fp32", "float32":
				dt = safetensors.F32
			default:
				return fmt.Errorf("--dtype %q: want bf16 or f32", dtype)
			}
			if kernel != "" {
				if err := engine.SetKernel(kernel); err != nil {
					return err
				}
			}
			bs, err := intList(batches)
			if err != nil {
				return fmt.Errorf("--batch: %w", err)
			}
			cs, err := intList(contexts)
			if err != nil {
				return fmt.Errorf("--context: %w", err)
			}
			errOut := cmd.ErrOrStderr()
			res, err := engine.BenchEngine(cmd.Context(), engine.BenchOptions{Config: cfg, Dir: modelDir, Name: name, DType: dt,
				Threads: e.threads, Quantize: e.quantize, Matmul: e.matmulMode(), KVCache: e.kvCache, Batches: bs, Contexts: cs, Prefill: prefill, Steps: steps, Seed: 1,
				Samples: samples, SamplesPrompt: samplesPrompt, SamplesTokens: samplesTokens,
				Progress: func(msg string) { fmt.Fprintln(errOut, msg) }})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(out, "%s (%s): %.0fM parameters, %s, %.0f MB of weights, %.0f MB read per step; %d threads, %s kernels, %s products; load average %s\n",
				res.Model, res.Architecture, float64(res.Parameters)/1e6, res.DType, float64(res.WeightBytes)/1e6,
				float64(res.BytesPerToken)/1e6, res.Threads, res.Kernel, res.Product, res.LoadAverage)
			fmt.Fprintf(out, "read bandwidth %.1f GB/s, GEMM peak %.0f GFLOP/s; RSS %.0f MB after load, peak %.0f MB (%s)\n", res.ReadGBs, res.GEMMGFLOPs,
				float64(res.RSSAfterLoad)/1e6, float64(res.PeakRSS)/1e6, map[bool]string{true: "from the start of the load", false: "after the load"}[res.PeakFromLoad])
			if res.PrefillTokens > 0 {
				fmt.Fprintf(out, "prefill %d tokens: %.1f tokens/s (%.1f per CPU-second x threads), %.0f GFLOP/s (%.0f%% of the compute peak)\n",
					res.PrefillTokens, res.PrefillTokS, res.PrefillCPUTokS, res.PrefillGFLOPs, 100*res.PrefillRatio)
			}
			if f := res.Fork; f != nil {
				fmt.Fprintf(out, "%d samples of one %d-token prompt (%d new tokens each): %.2fs vs %.2fs for one sample (x%.2f wall, x%.2f CPU); %d prompt tokens prefilled\n",
					f.Samples, f.PromptTokens, f.NewTokens, f.AllSeconds, f.OneSeconds, f.Ratio, f.CPURatio, f.PrefilledToks)
			}
			fmt.Fprintf(out, "%6s %8s %10s %10s %11s %8s %10s %10s %9s %6s %12s\n", "batch", "context", "tokens/s", "tok/cpu-s", "weight GB/s", "GFLOP/s",
				"bw roof", "flop roof", "bound", "ratio", "MiB/sequence")
			for _, d := range res.Decode {
				fmt.Fprintf(out, "%6d %8d %10.1f %10.1f %11.1f %8.0f %10.1f %10.1f %9s %5.0f%% %12.1f\n", d.Batch, d.Context, d.TokS, d.CPUTokS,
					d.WeightGBs, d.GFLOPs, d.BandwidthRoof, d.ComputeRoof, d.Bound, 100*d.Ratio, float64(d.MemPerSeq)/(1<<20))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", "qwen2.5-0.5b", "model shape: "+strings.Join(engine.Presets(), ", "))
	f.StringVar(&configPath, "config", "", "a config.json to use instead of a preset")
	f.StringVar(&modelDir, "model", "", "a model folder (config.json and safetensors) to bench instead of random weights")
	f.StringVar(&dtype, "dtype", "bf16", "weight dtype of random weights: bf16 or f32")
	e.register(f, false)
	f.StringVar(&batches, "batch", "1,8,32", "sequences per decode step, comma-separated")
	f.StringVar(&contexts, "context", "0,2048,8192", "tokens already in each sequence's cache, comma-separated")
	f.IntVar(&prefill, "prefill", 512, "prompt tokens of the prefill measurement (0: none)")
	f.IntVar(&steps, "steps", 8, "decode steps per measurement")
	f.IntVar(&samples, "samples", 0, "also time this many samples of one prompt against one sample (0: skip)")
	f.IntVar(&samplesPrompt, "samples-prompt", 1000, "prompt tokens of the --samples measurement")
	f.IntVar(&samplesTokens, "samples-tokens", 8, "new tokens per sample in the --samples measurement")
	f.StringVar(&kernel, "kernel", "", "kernel path: "+strings.Join(engine.Kernels(), ", ")+" (default: the fastest)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// intList parses "1,8,32".
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a count", f)
		}
		out = append(out, n)
	}
	return out, nil
}
