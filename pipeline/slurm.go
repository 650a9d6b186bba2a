package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/record"
)

// shardOutput is where shard i of n writes its rows.
func (r *Runner) shardOutput(s *Stage, i, n int) string {
	if s.kind.OutputDir {
		return filepath.Join(r.shardOutputArg(s, strconv.Itoa(i), n), s.kind.OutputFile)
	}
	return r.shardOutputArg(s, strconv.Itoa(i), n)
}

// shardOutputArg is what shard i (a number or a shell expansion) of n gets
// as --output: a file, or a folder for a command that writes one.
func (r *Runner) shardOutputArg(s *Stage, i string, n int) string {
	if s.kind.OutputDir {
		return filepath.Join(r.StageDir(s), "shards", fmt.Sprintf("%s-of-%d", i, n))
	}
	return filepath.Join(r.StageDir(s), "shards", fmt.Sprintf("output-%s-of-%d.jsonl", i, n))
}

func (r *Runner) slurmDir(s *Stage) string { return filepath.Join(r.StageDir(s), "slurm") }

// slurmOptions merges pipeline and stage options.
func (r *Runner) slurmOptions(s *Stage) SlurmOptions {
	o := r.c.Slurm
	st := s.Slurm
	if st.Partition != "" {
		o.Partition = st.Partition
	}
	if st.Account != "" {
		o.Account = st.Account
	}
	if st.Time != "" {
		o.Time = st.Time
	}
	if st.Gres != "" {
		o.Gres = st.Gres
	}
	if st.CPUsPerTask != 0 {
		o.CPUsPerTask = st.CPUsPerTask
	}
	if st.Mem != "" {
		o.Mem = st.Mem
	}
	o.Extra = append(append([]string(nil), o.Extra...), st.Extra...)
	o.Setup = append(append([]string(nil), o.Setup...), st.Setup...)
	return o
}

// shellQuote quotes a word for sh.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=./:,@%+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Script renders an sbatch script. For an array job, tasks lists the shard
// indices to run and the command's output and --shard use $SLURM_ARRAY_TASK_ID.
func (r *Runner) Script(s *Stage, args []string, tasks []int, n int) string {
	tail := ""
	if tasks != nil {
		out := r.shardOutputArg(s, "${SLURM_ARRAY_TASK_ID}", n)
		tail = fmt.Sprintf(" --output=\"%s\" --shard=\"${SLURM_ARRAY_TASK_ID}/%d\"", out, n)
	}
	return r.script(s, args, tasks, tasks != nil, tail, "")
}

// script renders an sbatch script running args; for an array job (tasks)
// dropOutput leaves out the --output argument and tail is appended to the
// command line as it is (it may use $SLURM_ARRAY_TASK_ID); suffix ends the
// job name.
func (r *Runner) script(s *Stage, args []string, tasks []int, dropOutput bool, tail, suffix string) string {
	o := r.slurmOptions(s)
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", shellQuote("crucible-"+r.c.Name+"-"+s.Name+suffix))
	if tasks != nil {
		fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(r.slurmDir(s), "task-%A_%a.log"))
		fmt.Fprintf(&b, "#SBATCH --array=%s\n", joinInts(tasks))
	} else {
		fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(r.slurmDir(s), "job-%j.log"))
	}
	for _, kv := range [][2]string{{"partition", o.Partition}, {"account", o.Account}, {"time", o.Time}, {"gres", o.Gres}, {"mem", o.Mem}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "#SBATCH --%s=%s\n", kv[0], kv[1])
		}
	}
	if o.CPUsPerTask > 0 {
		fmt.Fprintf(&b, "#SBATCH --cpus-per-task=%d\n", o.CPUsPerTask)
	}
	for _, e := range o.Extra {
		e = strings.TrimSpace(e)
		if !strings.HasPrefix(e, "#SBATCH") {
			e = "#SBATCH " + e
		}
		b.WriteString(e + "\n")
	}
	b.WriteString("set -euo pipefail\n")
	for _, l := range o.Setup {
		b.WriteString(l + "\n")
	}
	if s.Server != nil {
		fmt.Fprintf(&b, "( %s ) &\nserver_pid=$!\ntrap 'kill $server_pid 2>/dev/null || true' EXIT\n", s.Server.Command)
		if s.Server.Health != "" {
			fmt.Fprintf(&b, "%s internal wait-healthy --timeout %ds --pid $server_pid %s\n", shellQuote(r.o.Exe), s.Server.timeoutSeconds(), shellQuote(s.Server.Health))
		}
	}
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "--output=") && dropOutput {
			continue
		}
		words = append(words, shellQuote(a))
	}
	b.WriteString(shellQuote(r.o.Exe) + " " + strings.Join(words, " ") + tail + "\n")
	return b.String()
}

// mergeScript renders the job that joins the shards once they all succeed,
// and finishes the merged output with the command's Rescore flag (args
// are the stage's command line).
func (r *Runner) mergeScript(s *Stage, args []string, n int) string {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", shellQuote("crucible-"+r.c.Name+"-"+s.Name+"-merge"))
	fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(r.slurmDir(s), "merge-%j.log"))
	o := r.slurmOptions(s)
	for _, kv := range [][2]string{{"partition", o.Partition}, {"account", o.Account}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "#SBATCH --%s=%s\n", kv[0], kv[1])
		}
	}
	b.WriteString("set -euo pipefail\n")
	for _, l := range o.Setup {
		b.WriteString(l + "\n")
	}
	words := []string{shellQuote(r.o.Exe), "internal", "merge", "--output", shellQuote(r.Output(s))}
	for i := range n {
		words = append(words, shellQuote(r.shardOutput(s, i, n)))
	}
	b.WriteString(strings.Join(words, " ") + "\n")
	if s.kind.Rescore != "" {
		words = []string{shellQuote(r.o.Exe)}
		for _, a := range args {
			words = append(words, shellQuote(a))
		}
		b.WriteString(strings.Join(append(words, "--"+s.kind.Rescore), " ") + "\n")
	}
	return b.String()
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// runSlurm submits the stage: one sbatch array over the unfinished shards
// and a merge job that runs after all of them succeed; then it follows the
// jobs until the stage output is complete.
func (r *Runner) runSlurm(ctx context.Context, s *Stage, args []string, sm *StageManifest) error {
	if err := os.MkdirAll(r.slurmDir(s), 0o755); err != nil {
		return err
	}
	if err := r.waitPrevious(ctx, s, sm); err != nil {
		return err
	}
	n := max(s.Shards, 1)
	if n == 1 {
		path := filepath.Join(r.slurmDir(s), "job.sbatch")
		if err := os.WriteFile(path, []byte(r.Script(s, args, nil, 1)), 0o644); err != nil {
			return err
		}
		id, err := sbatch(ctx, path)
		if err != nil {
			return err
		}
		if err := r.recordJob(sm, id); err != nil {
			return err
		}
		slog.Info("submitted", "stage", s.Name, "job", id)
		if err := r.follow(ctx, s, id, ""); err != nil {
			return err
		}
		if !r.finished(s) {
			return fmt.Errorf("job %s finished without completing %s (log: %s)", id, r.Output(s), filepath.Join(r.slurmDir(s), "job-"+id+".log"))
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Join(r.StageDir(s), "shards"), 0o755); err != nil {
		return err
	}
	var todo []int
	for i := range n {
		if _, ok, _ := record.ReadManifest(r.shardOutput(s, i, n)); !ok {
			todo = append(todo, i)
		}
	}
	var dep string
	if len(todo) > 0 {
		path := filepath.Join(r.slurmDir(s), "array.sbatch")
		if err := os.WriteFile(path, []byte(r.Script(s, args, todo, n)), 0o644); err != nil {
			return err
		}
		id, err := sbatch(ctx, path)
		if err != nil {
			return err
		}
		dep = id
		if err := r.recordJob(sm, id); err != nil {
			return err
		}
		slog.Info("submitted shards", "stage", s.Name, "job", id, "tasks", joinInts(todo), "of", n)
	} else {
		slog.Info("all shards done; merging", "stage", s.Name)
	}
	mpath := filepath.Join(r.slurmDir(s), "merge.sbatch")
	if err := os.WriteFile(mpath, []byte(r.mergeScript(s, args, n)), 0o644); err != nil {
		return err
	}
	margs := []string{}
	if dep != "" {
		margs = append(margs, "--dependency=afterok:"+dep, "--kill-on-invalid-dep=yes")
	}
	mid, err := sbatch(ctx, mpath, margs...)
	if err != nil {
		return err
	}
	if err := r.recordJob(sm, mid); err != nil {
		return err
	}
	if err := r.follow(ctx, s, dep, mid); err != nil {
		return err
	}
	if !r.finished(s) {
		return fmt.Errorf("merge job %s finished without completing %s (log: %s)", mid, r.Output(s), filepath.Join(r.slurmDir(s), "merge-"+mid+".log"))
	}
	return nil
}

// waitPrevious waits for the jobs of an earlier run of the stage that are
// still queued or running: they own their shards' outputs, so nothing is
// submitted twice.
func (r *Runner) waitPrevious(ctx context.Context, s *Stage, sm *StageManifest) error {
	for _, id := range sm.Jobs {
		for {
			jobs, err := scontrol(ctx, id)
			if err != nil {
				return err
			}
			active := false
			for _, j := range jobs {
				active = active || !terminal(j.State)
			}
			if !active {
				break
			}
			slog.Info("waiting for a job of the previous run", "stage", s.Name, "job", id)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(r.o.Poll):
			}
		}
	}
	return nil
}

func sbatch(ctx context.Context, script string, extra ...string) (string, error) {
	args := append([]string{"--parsable"}, extra...)
	args = append(args, script)
	out, err := exec.CommandContext(ctx, "sbatch", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("sbatch %s: %v: %s", script, err, strings.TrimSpace(string(out)))
	}
	id := strings.TrimSpace(string(out))
	if i := strings.IndexByte(id, ';'); i >= 0 {
		id = id[:i] // "jobid;cluster"
	}
	if _, err := strconv.Atoi(id); err != nil {
		return "", fmt.Errorf("sbatch %s: unexpected reply %q", script, out)
	}
	return id, nil
}

// JobState is one job (or array task) as scontrol shows it.
type JobState struct {
	ID     string // "123" or "123_4"
	Task   int    // array task id, -1 for a plain job
	State  string
	Reason string
	Exit   string
}

// parseScontrol reads `scontrol show job -o` output: one record per line.
func parseScontrol(out []byte) []JobState {
	var jobs []JobState
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		j := JobState{ID: f["JobId"], Task: -1, State: f["JobState"], Reason: f["Reason"], Exit: f["ExitCode"]}
		if t, err := strconv.Atoi(f["ArrayTaskId"]); err == nil {
			j.Task = t
			j.ID = f["ArrayJobId"] + "_" + f["ArrayTaskId"]
		}
		jobs = append(jobs, j)
	}
	return jobs
}

func terminal(state string) bool {
	switch state {
	case "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE":
		return true
	}
	return false
}

func scontrol(ctx context.Context, id string) ([]JobState, error) {
	out, err := exec.CommandContext(ctx, "scontrol", "show", "job", "-o", id).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("Invalid job id")) {
			return nil, nil // aged out of slurmctld's memory
		}
		return nil, fmt.Errorf("scontrol show job %s: %v: %s", id, err, strings.TrimSpace(string(out)))
	}
	return parseScontrol(out), nil
}

// follow polls the array job (may be "") and the final job until the final
// job ends; a failed task is reported with its log, and the final job is
// cancelled when its dependency can no longer be met.
func (r *Runner) follow(ctx context.Context, s *Stage, array, final string) error {
	last := ""
	for {
		var failed []string
		allTerminal := true
		if array != "" {
			tasks, err := scontrol(ctx, array)
			if err != nil {
				return err
			}
			counts := map[string]int{}
			for _, t := range tasks {
				counts[t.State]++
				allTerminal = allTerminal && terminal(t.State)
				if terminal(t.State) && t.State != "COMPLETED" {
					log := filepath.Join(r.slurmDir(s), fmt.Sprintf("task-%s_%d.log", array, t.Task))
					failed = append(failed, fmt.Sprintf("shard %d %s (exit %s, log %s)", t.Task, t.State, t.Exit, log))
				}
			}
			if line := fmtCounts(counts); line != last {
				slog.Info("shards", "stage", s.Name, "job", array, "states", line)
				last = line
			}
		}
		if final != "" {
			jobs, err := scontrol(ctx, final)
			if err != nil {
				return err
			}
			if len(failed) > 0 && allTerminal {
				// The merge can never run: cancel it and report, once the
				// other shards have finished their (useful) work.
				exec.CommandContext(ctx, "scancel", final).Run()
				return fmt.Errorf("%d shard(s) failed: %s; rerun to resubmit the unfinished shards", len(failed), strings.Join(failed, "; "))
			}
			if len(jobs) == 0 {
				return nil // gone from slurmctld: the output manifest decides
			}
			if j := jobs[0]; terminal(j.State) {
				switch {
				case j.State == "COMPLETED":
					return nil
				case array != "" && !allTerminal:
					// Slurm cancels the merge as soon as a shard fails
					// (--kill-on-invalid-dep); wait for the shards' final
					// states, so the failed ones are reported by name.
				case len(failed) > 0:
					return fmt.Errorf("%d shard(s) failed: %s; rerun to resubmit the unfinished shards", len(failed), strings.Join(failed, "; "))
				default:
					return fmt.Errorf("job %s %s (exit %s)", final, j.State, j.Exit)
				}
			}
		} else if array != "" {
			// No final job: done when every task is terminal.
			if allTerminal {
				if len(failed) > 0 {
					return fmt.Errorf("%d shard(s) failed: %s", len(failed), strings.Join(failed, "; "))
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.o.Poll):
		}
	}
}

func fmtCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.ToLower(k), m[k]))
	}
	return strings.Join(parts, " ")
}

// Merge joins shard outputs into output (resumable: rows already there are
// skipped) and writes its manifest. Every shard must be complete.
func Merge(output string, shards []string, version string) (int, error) {
	start := time.Now()
	for _, sh := range shards {
		if _, ok, _ := record.ReadManifest(sh); !ok {
			return 0, fmt.Errorf("shard %s is not complete", sh)
		}
	}
	w, err := record.Create(output)
	if err != nil {
		return 0, err
	}
	record.RemoveManifest(output)
	for _, sh := range shards {
		in, err := record.Open(sh)
		if err != nil {
			w.Close()
			return 0, err
		}
		for in.Next() {
			row := in.Row()
			k := record.KeyOf(row)
			if w.Done(k.ID, k.Sample) {
				continue
			}
			if err := w.Write(row); err != nil {
				in.Close()
				w.Close()
				return 0, err
			}
		}
		in.Close()
		if err := in.Err(); err != nil {
			w.Close()
			return 0, err
		}
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	rows := w.Existing() + w.Written()
	return rows, record.WriteManifest(&record.Manifest{
		Output: output, Command: "merge", Version: version, Rows: rows, Existing: w.Existing(), Written: w.Written(),
		Counts: map[string]int{"shards": len(shards)}, Started: start.UTC(), Finished: time.Now().UTC(), WallSeconds: time.Since(start).Seconds(),
	})
}

// recordJob adds a submitted job to the stage's manifest and saves it. A
// job the manifest does not hold would be submitted again by a rerun, so
// when the save fails the job is cancelled and the stage fails.
func (r *Runner) recordJob(sm *StageManifest, id string) error {
	sm.Jobs = append(sm.Jobs, id)
	if err := r.save(); err != nil {
		cerr := exec.Command("scancel", id).Run()
		return fmt.Errorf("saving the manifest after submitting job %s: %w (the job was cancelled so that a rerun does not submit it twice; scancel: %v)", id, err, cerr)
	}
	return nil
}
