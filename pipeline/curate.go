package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// curateJob is a job of a sharded curation and its unfinished tasks, as
// `crucible curate --shards N --jobs` prints them.
type curateJob struct {
	Name  string `json:"name"`
	Tasks int    `json:"tasks"`
	Todo  []int  `json:"todo"`
}

// curateJobs asks the curate command for its jobs (it plans them in the
// work folder under the stage's output on first use).
func (r *Runner) curateJobs(ctx context.Context, s *Stage, args []string) ([]curateJob, error) {
	a := append(append([]string(nil), args...), "--shards="+strconv.Itoa(s.Shards), "--jobs")
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, r.o.Exe, a...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("crucible %s: %w: %s", strings.Join(a, " "), err, strings.TrimSpace(errb.String()))
	}
	var jobs []curateJob
	if err := json.Unmarshal(out.Bytes(), &jobs); err != nil {
		return nil, fmt.Errorf("curate jobs: %w", err)
	}
	return jobs, nil
}

// runCurateShards runs a curate stage with shards: N as its jobs — split
// (map), a pass per partition (reduce), one decide per global step, write —
// one after the other, each job's unfinished tasks at once: child processes
// locally, an sbatch array on Slurm. A rerun runs only the tasks without a
// done marker.
func (r *Runner) runCurateShards(ctx context.Context, s *Stage, args []string, sm *StageManifest) error {
	if r.launcher(s) == "slurm" {
		if err := r.waitPrevious(ctx, s, sm); err != nil {
			return err
		}
	}
	jobs, err := r.curateJobs(ctx, s, args)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.slurmDir(s), 0o755); err != nil {
		return err
	}
	for _, j := range jobs {
		if len(j.Todo) == 0 {
			continue
		}
		slog.Info("curate job", "stage", s.Name, "job", j.Name, "tasks", joinInts(j.Todo), "of", j.Tasks)
		a := append(append([]string(nil), args...), "--shards="+strconv.Itoa(s.Shards), "--job="+j.Name)
		if r.launcher(s) == "slurm" {
			err = r.curateSlurmJob(ctx, s, a, j, sm)
		} else {
			err = r.curateLocalJob(ctx, s, a, j)
		}
		if err != nil {
			return fmt.Errorf("curate job %s: %w", j.Name, err)
		}
	}
	if !r.finished(s) {
		return fmt.Errorf("the curate jobs finished without completing %s", r.Output(s))
	}
	return nil
}

// curateLocalJob runs a job's unfinished tasks as child processes, one
// after the other.
func (r *Runner) curateLocalJob(ctx context.Context, s *Stage, args []string, j curateJob) error {
	logf, err := os.OpenFile(filepath.Join(r.StageDir(s), "stage.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	out := io.MultiWriter(r.o.Log, logf)
	for _, t := range j.Todo {
		cmd := exec.CommandContext(ctx, r.o.Exe, append(args, "--task="+strconv.Itoa(t))...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 30 * time.Second
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("task %d: %w (log: %s)", t, err, logf.Name())
		}
	}
	return nil
}

// curateSlurmJob submits a job's unfinished tasks as one sbatch array and
// follows it to the end.
func (r *Runner) curateSlurmJob(ctx context.Context, s *Stage, args []string, j curateJob, sm *StageManifest) error {
	path := filepath.Join(r.slurmDir(s), j.Name+".sbatch")
	script := r.script(s, args, j.Todo, false, ` --task="${SLURM_ARRAY_TASK_ID}"`, "-"+j.Name)
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		return err
	}
	id, err := sbatch(ctx, path)
	if err != nil {
		return err
	}
	sm.Jobs = append(sm.Jobs, id)
	r.save()
	slog.Info("submitted", "stage", s.Name, "job", j.Name, "slurm_job", id, "tasks", joinInts(j.Todo))
	return r.follow(ctx, s, id, "")
}
