package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/curate"
	"github.com/crucible-ml/crucible/data"
)

func init() { benchCommands = append(benchCommands, newBenchCurateCmd) }

func newBenchCurateCmd() *cobra.Command {
	var dataDir string
	var minhashRows, decontamRows int
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "curate",
		Short:   "MinHash dedup rows/s on one core, and 13-gram decontamination of many rows against GSM8K + MATH test",
		Example: `  crucible bench curate --data-dir ../shared/data --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(filepath.Join(dataDir, "math", "train.jsonl")); err != nil {
				return fmt.Errorf("bench curate needs the GSM8K and MATH train and test files in --data-dir: %w", err)
			}
			res, err := curate.Bench(cmd.Context(), dataDir, minhashRows, decontamRows)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "MinHash dedup: %d rows (mean %.0f chars), %.0f rows/s on one core, %d removed\n",
				res.MinHashRows, res.MinHashMeanChars, res.MinHashRowsPerSec, res.MinHashRemoved)
			fmt.Fprintf(cmd.OutOrStdout(), "13-gram decontamination: %d rows against %d texts (%d n-grams, indexed in %.2fs): %.1fs, %.0f rows/s, %d removed (GOMAXPROCS %d)\n",
				res.DecontamRows, res.DecontamRefs, res.DecontamNgrams, res.DecontamIndexSec, res.DecontamSeconds, res.DecontamRowsPerSec, res.DecontamRemoved, res.GOMAXPROCS)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", data.DefaultDir(), "folder with gsm8k/ and math/ train and test files")
	cmd.Flags().IntVar(&minhashRows, "minhash-rows", 200000, "rows for the MinHash measurement")
	cmd.Flags().IntVar(&decontamRows, "decontam-rows", 1000000, "rows for the decontamination measurement")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
