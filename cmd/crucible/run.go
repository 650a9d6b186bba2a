package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/crucible-ml/crucible/data"
	"github.com/crucible-ml/crucible/pipeline"
)

func init() { commands = append(commands, newRunCmd, newInternalCmd) }

// inputOptional annotates a command whose --input may be left out (a
// pipeline stage of it needs no input).
const inputOptional = "crucible/input-optional"

// resolveCommand tells the pipeline package what a crucible command
// accepts, from the CLI's own command tree.
func resolveCommand(command string) (pipeline.CommandInfo, error) {
	words := strings.Fields(command)
	root := newRootCmd()
	c, rest, err := root.Find(words)
	if err != nil || len(rest) > 0 || c == root || !c.Runnable() {
		return pipeline.CommandInfo{}, fmt.Errorf("unknown command %q", command)
	}
	info := pipeline.CommandInfo{Flags: map[string]bool{}}
	add := func(f *pflag.Flag) { info.Flags[f.Name] = true }
	c.Flags().VisitAll(add)
	c.InheritedFlags().VisitAll(add)
	if !info.Flags["output"] {
		return info, fmt.Errorf("crucible %s writes no --output, so it cannot be a stage (a server goes under `server:`)", command)
	}
	info.Check = func(args []string) error {
		fresh, _, err := newRootCmd().Find(words) // a flag set of its own
		if err != nil {
			return err
		}
		return fresh.ParseFlags(args)
	}
	info.NoInput = !info.Flags["input"]
	info.InputOptional = c.Annotations[inputOptional] == "true"
	if c.Name() == "eval" {
		info.OutputDir, info.OutputFile = true, "output.jsonl"
		// Shards' rows merged into the stage folder are scored once there.
		info.Rescore, info.DoneFile = "score-only", "metrics.json"
	}
	return info, nil
}

func newRunCmd() *cobra.Command {
	var launcher, runsDir, dataDir string
	var dryRun bool
	var poll time.Duration
	cmd := &cobra.Command{
		Use:   "run PIPELINE.yaml",
		Short: "Run a multi-stage pipeline, locally or sharded over Slurm",
		Long: `Run executes the stages of a pipeline file in dependency order, each as a
crucible command writing into runs/NAME/STAGE/, with runs/NAME/manifest.json
recording status, counts and timings. A rerun skips finished stages and resumes
unfinished ones. With --launcher slurm, a stage with shards: N becomes one sbatch
array of N tasks (crucible STAGE --shard i/N) and a merge job that runs after
them; a rerun resubmits only the shards that did not finish. The whole file is
checked (commands, flags, inputs, cycles) before anything runs.`,
		Example: `  crucible run examples/omi1.yaml
  crucible run examples/omi2.yaml --launcher slurm`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := pipeline.Load(args[0], resolveCommand)
			if err != nil {
				return err
			}
			r, err := pipeline.NewRunner(c, pipeline.Options{
				RunsDir: runsDir, Launcher: launcher, Poll: poll, Version: version, Log: cmd.ErrOrStderr(),
				DataPath: func(ctx context.Context, name, dir string) (string, error) {
					return data.Prepared(ctx, name, dataDir, dir, version)
				},
			})
			if err != nil {
				return err
			}
			if dryRun {
				return r.Plan(cmd.Context(), cmd.OutOrStdout())
			}
			if err := r.Run(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "pipeline %s done: %s\n", c.Name, r.Dir())
			return nil
		},
	}
	cmd.Flags().StringVar(&launcher, "launcher", "", "local or slurm (default: the file's launcher, else local)")
	cmd.Flags().StringVar(&runsDir, "runs-dir", "runs", "folder of run folders")
	cmd.Flags().StringVar(&dataDir, "data-dir", data.DefaultDir(), "folder of benchmark data for data:NAME inputs")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print each stage's command (and sbatch scripts) without running anything")
	cmd.Flags().DurationVar(&poll, "poll", 2*time.Second, "how often to read Slurm job states")
	return cmd
}

// newInternalCmd holds helpers that pipeline jobs call.
func newInternalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "internal", Short: "Helpers used inside pipeline jobs", Hidden: true}
	var output string
	merge := &cobra.Command{
		Use:   "merge --output FILE SHARD...",
		Short: "Join complete shard outputs into one output",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := pipeline.Merge(output, args, version)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "merged %d shards into %s (%d rows)\n", len(args), output, n)
			return nil
		},
	}
	merge.Flags().StringVar(&output, "output", "", "merged output")
	var timeout time.Duration
	var pid int
	wait := &cobra.Command{
		Use:   "wait-healthy URL",
		Short: "Wait until URL answers 200",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exited := make(chan error, 1)
			if pid > 0 {
				go func() {
					for pipeline.ProcessAlive(pid) {
						time.Sleep(time.Second)
					}
					exited <- fmt.Errorf("process %d is gone", pid)
				}()
			}
			return pipeline.WaitHealthy(cmd.Context(), args[0], timeout, exited)
		},
	}
	wait.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	wait.Flags().IntVar(&pid, "pid", 0, "fail early when this process exits")
	cmd.AddCommand(merge, wait)
	return cmd
}
