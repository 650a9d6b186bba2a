package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/curate"
	"github.com/crucible-ml/crucible/data"
	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/internal/bench"
	"github.com/crucible-ml/crucible/sandbox"
)

func init() {
	benchCommands = append(benchCommands, newBenchBackendCmd, newBenchCurateCmd, newBenchGradeCmd, newBenchSandboxCmd)
}

// printJSON writes v indented, for the --json flag of the bench commands.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newBenchBackendCmd() *cobra.Command {
	var requests, concurrency int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "backend",
		Short: "Requests/s of the full generate path against an in-process zero-latency server, next to a bare HTTP loop",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "crucible-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			res, err := bench.Backend(cmd.Context(), requests, concurrency, dir)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "requests %d, concurrency %d, GOMAXPROCS %d\nbare HTTP loop  %10.0f requests/s\ngenerate path   %10.0f requests/s\nratio           %10.2f\n",
				res.Requests, res.Concurrency, res.GOMAXPROCS, res.BareRPS, res.FullRPS, res.Ratio)
			return nil
		},
	}
	cmd.Flags().IntVar(&requests, "requests", 100000, "requests per measurement")
	cmd.Flags().IntVar(&concurrency, "concurrency", 256, "requests in flight")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func newBenchCurateCmd() *cobra.Command {
	var dataDir, memLimit string
	var minhashRows, decontamRows int
	var scale bench.CurateScaleOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "curate",
		Short: "MinHash and 13-gram rates on GSM8K + MATH rows; with --rows N, a whole curation of N synthetic OMI-2-shaped rows (time and peak RSS per step)",
		Example: `  crucible data get gsm8k gsm8k-train math math-train
  crucible bench curate --json
  crucible bench curate --rows 5000000 --dir /work/tmp/bench`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scale.Rows > 0 {
				return benchCurateScale(cmd, scale, memLimit, asJSON)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "math", "train.jsonl")); err != nil {
				return fmt.Errorf("bench curate needs the GSM8K and MATH train and test files in --data-dir: %w", err)
			}
			res, err := bench.Curate(cmd.Context(), dataDir, minhashRows, decontamRows)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "MinHash dedup: %d rows (mean %.0f chars), %.0f rows/s on one core, %d removed\n",
				res.MinHashRows, res.MinHashMeanChars, res.MinHashRowsPerSec, res.MinHashRemoved)
			fmt.Fprintf(cmd.OutOrStdout(), "13-gram decontamination: %d rows against %d texts (%d n-grams, indexed in %.2fs): %.1fs, %.0f rows/s, %d removed (GOMAXPROCS %d)\n",
				res.DecontamRows, res.DecontamRefs, res.DecontamNgrams, res.DecontamIndexSec, res.DecontamSeconds, res.DecontamRowsPerSec, res.DecontamRemoved, res.GOMAXPROCS)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dataDir, "data-dir", data.DefaultDir(), "folder with gsm8k/ and math/ train and test files")
	fl.IntVar(&minhashRows, "minhash-rows", 200000, "rows for the MinHash measurement")
	fl.IntVar(&decontamRows, "decontam-rows", 1000000, "rows for the decontamination measurement")
	fl.IntVar(&scale.Rows, "rows", 0, "curate this many synthetic OMI-2-shaped rows (about 900 bytes each) instead")
	fl.StringVar(&scale.Dir, "dir", os.TempDir(), "with --rows: folder for the generated input, outputs and work files (check its free space)")
	fl.BoolVar(&scale.Keep, "keep", false, "with --rows: keep the generated input and the outputs")
	fl.BoolVar(&scale.Global, "global", false, "with --rows: add global exact and MinHash dedup")
	fl.StringVar(&memLimit, "memory-limit", "", "with --rows: curate's --memory-limit (default a sixteenth of RAM)")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func benchCurateScale(cmd *cobra.Command, o bench.CurateScaleOptions, memLimit string, asJSON bool) error {
	if memLimit != "" {
		var err error
		if o.MemoryLimit, err = curate.ParseSize(memLimit); err != nil {
			return fmt.Errorf("--memory-limit: %w", err)
		}
	}
	res, err := bench.CurateScale(cmd.Context(), o)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if asJSON {
		return printJSON(w, res)
	}
	fmt.Fprintf(w, "%d rows (%.0f MB) generated in %.1fs; curated in %.1fs (%.0f rows/s), peak RSS %.0f MB at a %.0f MB limit, work files up to %.0f MB\n",
		res.Rows, float64(res.InputBytes)/1e6, res.GenerateSec, res.CurateSec, res.RowsPerSec, res.PeakRSSMB, res.MemoryLimitMB, res.PeakWorkMB)
	fmt.Fprintf(w, "%-30s %9s %12s %12s %10s\n", "step", "seconds", "rows", "rows/s", "peak MB")
	for _, s := range res.Steps {
		fmt.Fprintf(w, "%-30s %9.1f %12d %12.0f %10.0f\n", s.Step, s.Seconds, s.Rows, s.RowsPerSec, s.PeakRSSMB)
	}
	fmt.Fprintf(w, "\n%s", res.Funnel)
	return nil
}

func newBenchGradeCmd() *cobra.Command {
	var (
		asJSON  bool
		file    string
		minTime time.Duration
	)
	cmd := &cobra.Command{
		Use:   "grade",
		Short: "Measure grading speed on MATH-500 answers, their rewritings and near misses",
		Long: `Bench grade reads the answers of MATH-500, makes pairs of each answer with
itself, equivalent rewritings and near misses, and grades them all on one core.
It reports pairs per second and the slowest pair.`,
		Example: "  crucible data get math500\n  crucible bench grade --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				b, _ := data.Lookup("math500")
				file = b.Path(data.DefaultDir())
			}
			answers, err := bench.ReadAnswers(file)
			if err != nil {
				return fmt.Errorf("bench grade: %w", err)
			}
			pairs := bench.GradePairs(answers)
			prev := runtime.GOMAXPROCS(1)
			defer runtime.GOMAXPROCS(prev)
			opts := grade.DefaultOptions()
			bench.Grade(cmd.Context(), pairs, opts, 0) // warm up
			r := bench.Grade(cmd.Context(), pairs, opts, minTime)
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, r)
			}
			fmt.Fprintf(w, "%d pairs (%d equal) x %d rounds in %.2fs: %.0f pairs/s on one core\nslowest pair: %v (%q vs %q); longest single verdict incl. GC: %v\n",
				r.Pairs, r.Equal, r.Rounds, r.Seconds, r.PairsPerSec, r.Slowest, r.SlowestGold, r.SlowestPred, r.MaxObserved)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().DurationVar(&minTime, "time", 2*time.Second, "run rounds over all pairs for at least this long")
	cmd.Flags().StringVar(&file, "data", "", "JSONL file with an answer field (default: MATH-500 in the data folder)")
	return cmd
}

func newBenchSandboxCmd() *cobra.Command {
	var f sandboxFlags
	var opts bench.SandboxOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Executions/s and fairness through the sandbox's HTTP API, new-session latency, a burst of new sessions and its memory",
		Example: `  crucible bench sandbox
  crucible bench sandbox --json --sessions 32 --duration 10s --burst 128`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg := f.config()
			cfg.MaxSessions = max(cfg.MaxSessions, opts.Sessions+8, opts.Burst+8)
			pool, err := sandbox.NewPool(ctx, cfg)
			if err != nil {
				return err
			}
			defer pool.Close()
			res, err := bench.Sandbox(ctx, pool, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, res)
			}
			fmt.Fprintf(out, "throughput:   %.0f executions/s (%d in %.1f s, %d concurrent sessions; per block p50 %.2f ms, p99 %.2f ms)\n",
				res.ExecPerSec, res.Executions, res.Seconds, res.Sessions, res.ExecP50Ms, res.ExecP99Ms)
			p50s, p99s := sessionSpread(res.PerSession)
			fmt.Fprintf(out, "per session:  %d to %d executions (max/min %.2f); p50 %s ms, p99 %s ms (range over sessions)\n",
				res.MinPerSession, res.MaxPerSession, res.MaxOverMin, p50s, p99s)
			fmt.Fprintf(out, "new session:  p50 %.1f ms, p99 %.1f ms (warm pool of %d, preloaded %v)\n",
				res.NewSessionP50Ms, res.NewSessionP99Ms, res.WarmWorkers, res.Preload)
			fmt.Fprintf(out, "burst:        %d new sessions (import numpy, sympy; print(1)) all answered in %.2f s (p50 %.0f ms, p99 %.0f ms)\n",
				res.Burst, res.BurstSeconds, res.BurstP50Ms, res.BurstP99Ms)
			fmt.Fprintf(out, "memory:       PSS %.0f MB over %d processes with %d live idle sessions\n", res.BurstPSSMB, res.BurstProcesses, res.Burst)
			fmt.Fprintf(out, "cold start:   p50 %.1f ms (a sandbox started on demand)\n", res.ColdStartP50Ms)
			fmt.Fprintf(out, "isolated: %v, CPUs: %d, max running: %d\n", res.Isolated, res.CPUs, res.MaxRunning)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fl.IntVar(&opts.Sessions, "sessions", 32, "concurrent sessions in the throughput phase")
	fl.DurationVar(&opts.Duration, "duration", 10*time.Second, "length of the throughput phase")
	fl.IntVar(&opts.NewSessions, "new-sessions", 50, "new sessions timed")
	fl.IntVar(&opts.Burst, "burst", 128, "new sessions opened at once in the burst and memory phase")
	f.register(cmd)
	return cmd
}

// sessionSpread renders the range of the sessions' own p50 and p99
// latencies ("1.20-1.90").
func sessionSpread(ss []bench.SessionStats) (string, string) {
	if len(ss) == 0 {
		return "-", "-"
	}
	lo50, hi50, lo99, hi99 := ss[0].P50Ms, ss[0].P50Ms, ss[0].P99Ms, ss[0].P99Ms
	for _, s := range ss {
		lo50, hi50 = min(lo50, s.P50Ms), max(hi50, s.P50Ms)
		lo99, hi99 = min(lo99, s.P99Ms), max(hi99, s.P99Ms)
	}
	return fmt.Sprintf("%.2f-%.2f", lo50, hi50), fmt.Sprintf("%.2f-%.2f", lo99, hi99)
}
