package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/synth"
)

func newSynthPairsCmd() *cobra.Command {
	var input, output, by, respField, shardSpec string
	var margin, minChosen float64
	var limit int
	cmd := &cobra.Command{
		Use:   "pairs --input RESPONSES --output PAIRS --by reward|correctness|judge",
		Short: "Preference pairs (chosen/rejected) from k responses per prompt",
		Long: `Pairs groups responses by prompt (rows sharing an id, one per sample) and writes one
pair per prompt: the prompt's fields, prompt, chosen, rejected, chosen_reward,
rejected_reward, chosen_sample, rejected_sample, pair_rule.
  reward:      best vs worst by reward (from synth reward), kept when the gap >= --margin
               and chosen_reward >= --min-chosen.
  correctness: a correct response (is_correct, else judge_correct) vs an incorrect one;
               rewards break ties.
  judge:       rows judged by synth judge --mode pairwise; ties and inconsistent verdicts
               make no pair.
The manifest counts prompts without a pair by reason.`,
		Example: `  crucible synth pairs --input scored.jsonl --output pairs.jsonl --by reward --margin 0.5`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" || output == "" {
				return fmt.Errorf("--input and --output are required")
			}
			shard, err := record.ParseShard(shardSpec)
			if err != nil {
				return fmt.Errorf("--shard: %w", err)
			}
			o := synth.PairsOptions{Common: synth.Common{Limit: limit, Shard: shard, Command: cmd.CommandPath(),
				Version: version, Config: flagConfig(cmd)}, Input: input, Output: output, By: by, Margin: margin,
				ResponseField: respField}
			if cmd.Flags().Changed("min-chosen") {
				o.MinChosen = &minChosen
			}
			return finishSynth(synth.Pairs(cmd.Context(), o))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&input, "input", "", "responses (JSONL or Parquet; a file, glob, comma list or -)")
	fl.StringVar(&output, "output", "", "output JSONL (resumed if it exists)")
	fl.StringVar(&by, "by", synth.PairsByReward, "rule: reward, correctness or judge")
	fl.Float64Var(&margin, "margin", 0, "least chosen_reward - rejected_reward of a pair")
	fl.Float64Var(&minChosen, "min-chosen", 0, "least reward of a chosen response (off unless given)")
	fl.StringVar(&respField, "response-field", "generation", "field of the response")
	fl.IntVar(&limit, "limit", 0, "take only the first N prompts (after --shard)")
	fl.StringVar(&shardSpec, "shard", "", "process shard i/n of the prompts (by a hash of the id)")
	return cmd
}

func newSynthPromptListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list-prompts [NAME]",
		Short:   "List the built-in synthesis prompts, or print one as YAML-ready text",
		Example: "  crucible synth list-prompts\n  crucible synth list-prompts judge/math > my-judge.yaml",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if len(args) == 0 {
				for _, n := range synth.BuiltinPrompts() {
					p, err := synth.Prompt(n)
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "%-24s %s\n", n, strings.Join(strings.Fields(p.Config.Description), " "))
				}
				return nil
			}
			b, err := synth.PromptSource(args[0])
			if err != nil {
				return err
			}
			_, err = w.Write(b)
			return err
		},
	}
}

// parseWeights reads "name=w,name=w".
func parseWeights(s string) (map[string]float64, error) {
	w := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--weights: %q: want name=number", part)
		}
		w[strings.TrimSpace(k)] = x
	}
	if len(w) == 0 {
		return nil, fmt.Errorf("--weights: no weights given")
	}
	return w, nil
}
