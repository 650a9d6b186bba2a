package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/data"
	"github.com/crucible-ml/crucible/eval"
	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/solve"
)

func init() { commands = append(commands, newEvalCmd) }

func newEvalCmd() *cobra.Command {
	var g genFlags
	var b backendFlags
	var ce codeExecFlags
	var gf gradeFlags
	var bench, dataDir, outDir string
	var scoreOnly bool
	cmd := &cobra.Command{
		Use:   "eval --benchmark NAME|FILE --output DIR",
		Short: "Score a model on GSM8K, MATH, MATH-500 or your own file",
		Long: `Eval generates solutions for a benchmark (downloading it first when needed),
extracts and grades each answer, and writes DIR/output.jsonl (every solution with
predicted_answer and is_correct) and DIR/metrics.json: greedy accuracy (temperature
0), majority@K, pass@K (unbiased estimator), pass@1[avg-of-N] with its standard
deviation, and no_answer, overall and per MATH subject and level. Like generate,
it resumes from what DIR already holds.`,
		Example: `  crucible eval --benchmark gsm8k --output runs/qwen-gsm8k --base-url http://127.0.0.1:8000/v1
  crucible eval --benchmark math500 --output runs/m500 --samples 8 --temperature 0.7 --base-url http://127.0.0.1:8000/v1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bench == "" || outDir == "" {
				return fmt.Errorf("--benchmark and --output are required")
			}
			gopts, err := gf.options()
			if err != nil {
				return err
			}
			var o solve.Options
			if scoreOnly { // no backend: the rows are there
				o, err = g.options()
			} else {
				var release func()
				o, release, err = generation(cmd, &g, &b, &ce)
				if err == nil {
					defer release()
				}
			}
			if err != nil {
				return err
			}
			res, err := eval.Run(cmd.Context(), eval.Options{
				Benchmark: bench, DataDir: dataDir, OutDir: outDir, Gen: o, Grader: grade.Grader{Opts: gopts}, ScoreOnly: scoreOnly,
			})
			if res != nil {
				logStats(res.Stats)
			}
			logFaults(o.Backend)
			if err != nil {
				return err
			}
			if err := allFailed(res.Stats); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), res.Metrics.Table(res.Name))
			fmt.Fprintf(cmd.ErrOrStderr(), "metrics written to %s\nlook at the rows and charts: crucible inspect %s (or crucible report %s --output report.html)\n",
				filepath.Join(outDir, "metrics.json"), outDir, outDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&bench, "benchmark", "", "benchmark: "+strings.Join(data.Names(), ", ")+", or a JSONL file")
	cmd.Flags().StringVar(&dataDir, "data-dir", data.DefaultDir(), "folder of downloaded benchmarks")
	cmd.Flags().StringVar(&outDir, "output", "", "output folder (output.jsonl, metrics.json)")
	cmd.Flags().BoolVar(&scoreOnly, "score-only", false, "generate nothing: compute metrics.json from the rows the output folder holds (a sharded pipeline stage's merged rows)")
	g.register(cmd, "math/cot")
	b.register(cmd)
	ce.register(cmd)
	gf.register(cmd, false)
	return cmd
}
