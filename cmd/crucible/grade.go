package main

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/record"
)

func init() {
	commands = append(commands, newGradeCmd)
}

// gradeFlags choose the grading policy: --policy names a bundle, and on
// grade and grade check the other flags override its parts.
type gradeFlags struct {
	fs        *pflag.FlagSet
	policy    string
	rtol      float64
	minDigits int
	percent   string
	ordered   bool
	boxes     string
	reduced   bool
	guess     bool
}

// register adds --policy and, with overrides, the flags that change one
// part of it.
func (f *gradeFlags) register(cmd *cobra.Command, overrides bool) {
	f.fs = cmd.Flags()
	fl := cmd.Flags()
	var help strings.Builder
	help.WriteString("grading policy:")
	for _, p := range grade.Policies {
		fmt.Fprintf(&help, " %s (%s);", p.Name, p.Description)
	}
	fl.StringVar(&f.policy, "policy", grade.Policies[0].Name, strings.TrimSuffix(help.String(), ";"))
	if !overrides {
		return
	}
	d := grade.DefaultOptions()
	fl.Float64Var(&f.rtol, "rtol", d.RTol, "relative tolerance when either answer has a decimal literal (exact values always compare exactly; default: the policy's)")
	fl.IntVar(&f.minDigits, "min-digits", d.MinDigits, "a decimal with at least this many significant digits also equals a value that rounds or truncates to it (0: off; default: the policy's)")
	fl.StringVar(&f.percent, "percent", d.Percent.String(), "percent policy: either (10% = 10 = 0.1), value (10% = 0.1), ignore (10% = 10)")
	fl.BoolVar(&f.ordered, "ordered-lists", d.OrderedLists, "compare bare comma lists in order (default: as multisets; strict: in order)")
	fl.StringVar(&f.boxes, "boxes", d.Boxes.String(), "several \\boxed{}: join (adjacent boxes joined by connectors form a list) or last")
	fl.BoolVar(&f.reduced, "reduced-fractions", d.ReducedFractions, "require predicted fraction literals in lowest terms (strict: yes)")
	fl.BoolVar(&f.guess, "guess-answer", false, "when a response states no answer (no box, no answer phrase), take the last math or number in it instead of counting no answer (math-verify: yes)")
}

// options are the named policy with the overrides given on the command line.
func (f *gradeFlags) options() (grade.Options, error) {
	p, err := grade.LookupPolicy(f.policy)
	if err != nil {
		return grade.Options{}, fmt.Errorf("--policy: %w", err)
	}
	o := p.Options
	changed := func(name string) bool { return f.fs != nil && f.fs.Changed(name) }
	if changed("rtol") {
		if f.rtol < 0 {
			return o, errors.New("--rtol must be >= 0")
		}
		o.RTol = f.rtol
	}
	if changed("min-digits") {
		o.MinDigits = f.minDigits
	}
	if changed("ordered-lists") {
		o.OrderedLists = f.ordered
	}
	if changed("reduced-fractions") {
		o.ReducedFractions = f.reduced
	}
	if changed("guess-answer") && f.guess {
		o.Answer = grade.AnswerGuess
	}
	if changed("percent") {
		switch f.percent {
		case "either":
			o.Percent = grade.PercentEither
		case "value":
			o.Percent = grade.PercentValue
		case "ignore":
			o.Percent = grade.PercentIgnore
		default:
			return o, fmt.Errorf("--percent %q: want either, value or ignore", f.percent)
		}
	}
	if changed("boxes") {
		switch f.boxes {
		case "join":
			o.Boxes = grade.BoxJoin
		case "last":
			o.Boxes = grade.BoxLast
		default:
			return o, fmt.Errorf("--boxes %q: want join or last", f.boxes)
		}
	}
	return o, nil
}

func newGradeCmd() *cobra.Command {
	var (
		input, output, shard string
		limit, concurrency   int
		ro                   grade.RowOptions
		gf                   gradeFlags
	)
	cmd := &cobra.Command{
		Use:   "grade",
		Short: "Extract and check the answers of generated solutions",
		Long: `Grade reads rows, extracts the final answer of each generation and compares it
with the expected answer, and writes every row with predicted_answer and
is_correct added. Both sides go through answer extraction, so "$9$" and
"\boxed{9}" work on either side; a row whose generation failed (it has an
error field) has no answer. A rerun skips the rows the output holds.`,
		Example: `  crucible grade --input solutions.jsonl --output graded.jsonl
  crucible grade check '\frac{1}{2}' '0.5' --explain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" || output == "" {
				return errors.New("grade: --input and --output are required")
			}
			opts, err := gf.options()
			if err != nil {
				return err
			}
			sh, err := record.ParseShard(shard)
			if err != nil {
				return fmt.Errorf("--shard: %w", err)
			}
			ro.Options = opts
			st, err := grade.Rows(cmd.Context(), grade.RowsOptions{
				Input: input, Output: output, Shard: sh, Limit: limit, Concurrency: concurrency, Row: ro, Version: version,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "graded %d rows (%d correct, %d without an answer), %d already done\n", st.Written, st.Correct, st.NoAnswer, st.Skipped)
			return nil
		},
	}
	cmd.Flags().StringVar(&input, "input", "", "input rows: JSONL or Parquet file, glob, or - for stdin")
	cmd.Flags().StringVar(&output, "output", "", "output JSONL file (resumed if it exists)")
	cmd.Flags().StringVar(&shard, "shard", "", "process shard i/n of the rows (by a hash of the row id)")
	cmd.Flags().IntVar(&limit, "limit", 0, "take only the first N rows (after --shard)")
	cmd.Flags().IntVar(&concurrency, "concurrency", runtime.NumCPU(), "rows graded at once (grading is CPU-bound)")
	cmd.Flags().StringVar(&ro.GenerationField, "generation-field", "generation", "field holding the model response")
	cmd.Flags().StringVar(&ro.AnswerField, "answer-field", "expected_answer", "field holding the reference answer")
	gf.register(cmd, true)
	cmd.AddCommand(newGradeCheckCmd())
	return cmd
}

func newGradeCheckCmd() *cobra.Command {
	var (
		explain bool
		gf      gradeFlags
	)
	cmd := &cobra.Command{
		Use:   "check GOLD PRED",
		Short: "Compare two answers: prints equal or not equal, exits 0 or 1",
		Example: `  crucible grade check '\frac{1}{2}' '0.5'
  crucible grade check --explain 'x \in [0, 1)' '0 \le x < 1'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := gf.options()
			if err != nil {
				return err
			}
			v := grade.Check(args[0], args[1], opts)
			w := cmd.OutOrStdout()
			if explain {
				fmt.Fprintf(w, "gold: %s\npred: %s\nrule: %s\n", v.Gold, v.Pred, v.Rule)
			}
			if v.Equal {
				fmt.Fprintln(w, "equal")
				return nil
			}
			fmt.Fprintln(w, "not equal")
			return exitError{code: exitVerdict}
		},
	}
	cmd.Flags().BoolVar(&explain, "explain", false, "show both parsed answers and the rule that decided")
	gf.register(cmd, true)
	return cmd
}
