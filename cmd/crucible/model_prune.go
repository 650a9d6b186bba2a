package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/engine"
)

func newModelPruneCmd() *cobra.Command {
	var out, target string
	var seeds int
	o := engine.PruneOptions{}
	cmd := &cobra.Command{
		Use:   "prune DIR --output DIR2 --calib FILE.jsonl (--target-params F|N | --ffn F --hidden F ...)",
		Short: "Structurally prune a Llama/Qwen2, Mamba-2 or Nemotron-H model by activation importance (Minitron)",
		Long: `Prune measures activation importance with forward passes over calibration rows (--calib: JSON
Lines; --calib-field holds text, tokenized with DIR's tokenizer, or an array of token ids): FFN
neurons, attention heads and KV groups, embedding channels, Mamba heads and head channels (the same
number of heads in every B/C group, groups whole) and layers (KL to the full model with the layer
skipped). Rows first fill the held-out set (--heldout-tokens), then the calibration set.

A size target (--target-params 0.75 = 75% of today's parameters, or a count: 0.5B, 350M) runs a
small search: each axis mix of the architecture at the largest common keep fraction that fits, the
one with the lowest KL on the held-out rows wins. Or give keep fractions per axis (--ffn 0.5
--heads 0.5 --kv-groups 0.5 --mamba-heads 0.75 --mamba-head-dim 0.75 --hidden 0.8) and
--drop-layers N. DIR2 gets the pruned safetensors, config.json with the new sizes and layer pattern,
the tokenizer files, and prune_report.json (scores, what was removed, KL and perplexity before and
after, the search, and --random-seeds random prunings of the same shape).`,
		Example: `  crucible model prune ./nemotron-h-8b --output ./nh-6b --calib sft.jsonl --calib-tokens 1000000 --target-params 0.75
  crucible model prune ./qwen --output ./qwen-pruned --calib rows.jsonl --ffn 0.5 --hidden 0.8 --drop-layers 4`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--output DIR2 is required")
			}
			if target != "" {
				var err error
				if o.TargetParams, o.TargetCount, err = parseParamTarget(target); err != nil {
					return err
				}
			}
			for s := 1; s <= seeds; s++ {
				o.RandomSeeds = append(o.RandomSeeds, uint64(s))
			}
			var last time.Time
			o.Progress = func(stage string, done, total int64) {
				if now := time.Now(); now.Sub(last) >= 250*time.Millisecond || done == total {
					last = now
					fmt.Fprintf(os.Stderr, "\r%s: %d / %d (%.0f%%)        ", stage, done, total, 100*float64(done)/float64(max(total, 1)))
				}
			}
			rep, err := engine.Prune(cmd.Context(), args[0], out, o)
			if !last.IsZero() {
				fmt.Fprintln(os.Stderr)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %s parameters -> %s (%.1f%%), activations of %v calibration tokens in %.1fs, layer-skip KL in %.1fs\n", out,
				human(float64(rep.ParamsBefore), ""), human(float64(rep.ParamsAfter), ""),
				100*float64(rep.ParamsAfter)/float64(rep.ParamsBefore), rep.Calibration["tokens"], rep.Seconds["activations"], rep.Seconds["depth"])
			for _, c := range rep.Search {
				fmt.Fprintf(w, "  search %-36s keep %.3f  %s params  KL %.4f\n", strings.Join(c.Mix, "+"), c.Keep, human(float64(c.Params), ""), c.KL)
			}
			fmt.Fprintf(w, "held-out: KL %.4f nats, perplexity %.3f -> %.3f, top-1 agreement %.3f\n", rep.After.KL,
				rep.Before.Perplexity, rep.After.Perplexity, rep.After.Top1Agree)
			for _, r := range rep.Random {
				fmt.Fprintf(w, "random pruning, seed %d: KL %.4f, perplexity %.3f\n", r.Seed, r.KL, r.Perplexity)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "folder to write the pruned model into (new)")
	f.StringVar(&o.Calib, "calib", "", "calibration rows (JSON Lines)")
	f.StringVar(&o.CalibField, "calib-field", "text", "field with text or token ids")
	f.IntVar(&o.CalibTokens, "calib-tokens", 0, "calibration tokens for importance (0: all rows)")
	f.IntVar(&o.HeldoutTokens, "heldout-tokens", 2048, "tokens held out (taken first) for KL and perplexity")
	f.IntVar(&o.SeqLen, "seq-len", 1024, "tokens per row at most")
	f.IntVar(&o.DepthTokens, "depth-tokens", 2048, "calibration tokens for the layer-skip KL")
	f.StringVar(&target, "target-params", "", "size target: a fraction (0.75) or a count (0.5B, 350M)")
	f.Float64Var(&o.FFN, "ffn", 0, "keep fraction of FFN neurons")
	f.Float64Var(&o.Heads, "heads", 0, "keep fraction of query heads in each KV group")
	f.Float64Var(&o.KVGroups, "kv-groups", 0, "keep fraction of KV groups (with their query heads)")
	f.Float64Var(&o.MambaHeads, "mamba-heads", 0, "keep fraction of Mamba heads in each group")
	f.Float64Var(&o.MambaHeadDim, "mamba-head-dim", 0, "keep fraction of each Mamba head's channels")
	f.Float64Var(&o.Hidden, "hidden", 0, "keep fraction of embedding channels")
	f.IntVar(&o.DropLayers, "drop-layers", 0, "layers to drop (the least important)")
	f.IntVar(&seeds, "random-seeds", 3, "random prunings of the same shape (seeds 1..N) measured for the report")
	return cmd
}

// parseParamTarget reads 0.75 (a fraction) or 0.5B, 350M, 1200000 (a count).
func parseParamTarget(s string) (frac float64, count int64, err error) {
	mult := 1.0
	num := strings.TrimSpace(s)
	switch strings.ToUpper(num[len(num)-1:]) {
	case "K":
		mult = 1e3
	case "M":
		mult = 1e6
	case "B", "G":
		mult = 1e9
	}
	if mult > 1 {
		num = num[:len(num)-1]
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, 0, fmt.Errorf("--target-params %q: want a fraction (0.75) or a count (0.5B, 350M)", s)
	}
	if mult == 1 && v < 1 {
		return v, 0, nil
	}
	return 0, int64(v * mult), nil
}
