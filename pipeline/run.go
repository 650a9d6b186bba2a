package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/crucible-ml/crucible/record"
)

// Options configure a run.
type Options struct {
	// RunsDir holds the run folders (default "runs").
	RunsDir string
	// Exe is the crucible binary the stages run (default os.Executable).
	Exe string
	// DataDir is where data:NAME inputs are found.
	DataDir string
	// Launcher overrides the file's launcher ("local" or "slurm").
	Launcher string
	// DataPath resolves data:NAME to a file (downloading it if needed); dir
	// is the run's data folder, where a prepared copy may be written.
	DataPath func(ctx context.Context, name, dir string) (string, error)
	// Poll is how often Slurm job state is read (default 2 s).
	Poll time.Duration
	// Log receives the stages' output when they run locally (default
	// stderr); each stage also logs to its folder.
	Log     io.Writer
	Version string
}

// Manifest is runs/NAME/manifest.json (see record.RunManifest).
type Manifest = record.RunManifest

// StageManifest is one stage's record (see record.StageManifest).
type StageManifest = record.StageManifest

// Runner executes a pipeline.
type Runner struct {
	c   *Config
	o   Options
	dir string
	m   *Manifest
}

// NewRunner prepares the run folder runs/NAME.
func NewRunner(c *Config, o Options) (*Runner, error) {
	if o.RunsDir == "" {
		o.RunsDir = "runs"
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Exe = exe
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if err := checkLauncher(o.Launcher); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Join(o.RunsDir, c.Name))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &Runner{c: c, o: o, dir: dir, m: &Manifest{Name: c.Name, Stages: map[string]*StageManifest{}}}
	if b, err := os.ReadFile(r.manifestPath()); err == nil {
		if err := json.Unmarshal(b, r.m); err != nil {
			return nil, fmt.Errorf("%s: %w", r.manifestPath(), err)
		}
	}
	if c.path != "" {
		if b, err := os.ReadFile(c.path); err == nil {
			r.m.Config = string(b)
		}
	}
	r.m.Version = o.Version
	return r, nil
}

// Dir returns the run folder.
func (r *Runner) Dir() string { return r.dir }

// Manifest returns the run's manifest.
func (r *Runner) Manifest() *Manifest { return r.m }

func (r *Runner) manifestPath() string { return filepath.Join(r.dir, "manifest.json") }

func (r *Runner) save() error {
	r.m.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(r.m, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.manifestPath() + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, r.manifestPath())
}

// StageDir returns a stage's folder.
func (r *Runner) StageDir(s *Stage) string { return filepath.Join(r.dir, s.Name) }

// Output returns the path of the rows a stage writes.
func (r *Runner) Output(s *Stage) string {
	if s.kind.OutputDir {
		return filepath.Join(r.StageDir(s), s.kind.OutputFile)
	}
	return filepath.Join(r.StageDir(s), "output.jsonl")
}

// outputArg is what --output gets.
func (r *Runner) outputArg(s *Stage) string {
	if s.kind.OutputDir {
		return r.StageDir(s)
	}
	return r.Output(s)
}

func (r *Runner) launcher(s *Stage) string {
	switch {
	case r.o.Launcher != "":
		return r.o.Launcher
	case s.Launcher != "":
		return s.Launcher
	case r.c.Launcher != "":
		return r.c.Launcher
	}
	return "local"
}

func (r *Runner) inputArg(ctx context.Context, s *Stage, dry bool) (string, error) {
	var parts []string
	for _, in := range s.inputs() {
		switch {
		case r.stage(in) != nil:
			parts = append(parts, r.Output(r.stage(in)))
		case strings.HasPrefix(in, "data:") && dry:
			parts = append(parts, filepath.Join(r.dir, "data", strings.TrimPrefix(in, "data:")+".jsonl"))
		case strings.HasPrefix(in, "data:"):
			if r.o.DataPath == nil {
				return "", fmt.Errorf("input %s: no data resolver", in)
			}
			p, err := r.o.DataPath(ctx, strings.TrimPrefix(in, "data:"), filepath.Join(r.dir, "data"))
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		default:
			abs, err := filepath.Abs(in)
			if err != nil {
				return "", err
			}
			parts = append(parts, abs)
		}
	}
	return strings.Join(parts, ","), nil
}

func (r *Runner) stage(name string) *Stage {
	for _, s := range r.c.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// args returns the stage's command line (without --shard).
func (r *Runner) args(ctx context.Context, s *Stage) ([]string, error) {
	args := strings.Fields(s.Command)
	if !s.kind.NoInput && len(s.inputs()) > 0 {
		in, err := r.inputArg(ctx, s, false)
		if err != nil {
			return nil, err
		}
		args = append(args, "--input="+in)
	}
	args = append(args, "--output="+r.outputArg(s))
	return append(args, r.c.flagArgs(s)...), nil
}

// Run runs every unfinished stage in order. A stage whose configuration
// changed since it finished is an error: its output would mix two
// configurations (delete its folder to recompute it).
func (r *Runner) Run(ctx context.Context) error {
	order, err := r.c.Order()
	if err != nil {
		return err
	}
	// Refuse changed finished stages before running anything.
	for _, s := range order {
		if sm := r.m.Stages[s.Name]; sm != nil && sm.Hash != "" && sm.Hash != r.c.hash(s) {
			if _, err := os.Stat(r.StageDir(s)); err == nil {
				return fmt.Errorf("stage %s changed since it ran (command, flags, inputs or shards); delete %s to recompute it", s.Name, r.StageDir(s))
			}
		}
	}
	for _, s := range order {
		sm := r.m.Stages[s.Name]
		if sm == nil {
			sm = &StageManifest{}
			r.m.Stages[s.Name] = sm
		}
		if sm.Status == "done" && r.finished(s) {
			slog.Info("stage already done", "stage", s.Name, "rows", sm.Rows)
			continue
		}
		args, err := r.args(ctx, s)
		if err != nil {
			return fmt.Errorf("stage %s: %w", s.Name, err)
		}
		if err := os.MkdirAll(r.StageDir(s), 0o755); err != nil {
			return err
		}
		*sm = StageManifest{Status: "running", Hash: r.c.hash(s), Command: append([]string{"crucible"}, args...),
			Output: r.Output(s), Launcher: r.launcher(s), Shards: max(s.Shards, 1), Started: time.Now().UTC(), Jobs: sm.Jobs}
		if err := r.save(); err != nil {
			return err
		}
		slog.Info("stage starting", "stage", s.Name, "launcher", sm.Launcher, "command", strings.Join(sm.Command, " "))
		switch {
		case s.Command == "curate" && s.Shards > 1:
			err = r.runCurateShards(ctx, s, args, sm)
		case sm.Launcher == "slurm":
			err = r.runSlurm(ctx, s, args, sm)
		default:
			err = r.runLocal(ctx, s, args)
		}
		sm.Finished = time.Now().UTC()
		sm.Seconds = sm.Finished.Sub(sm.Started).Seconds()
		if err != nil {
			sm.Status, sm.Error = "failed", err.Error()
			if ctx.Err() != nil {
				sm.Status = "interrupted"
			}
			r.save()
			return fmt.Errorf("stage %s: %w", s.Name, err)
		}
		if m, ok, _ := record.ReadManifest(r.Output(s)); ok {
			sm.Rows = m.Rows
		}
		sm.Status, sm.Error = "done", ""
		if err := r.save(); err != nil {
			return err
		}
		slog.Info("stage done", "stage", s.Name, "rows", sm.Rows, "seconds", sm.Seconds)
	}
	return nil
}

// finished reports whether a stage's output is complete (its manifest
// exists).
func (r *Runner) finished(s *Stage) bool {
	_, ok, _ := record.ReadManifest(r.Output(s))
	if ok && s.kind.DoneFile != "" {
		_, err := os.Stat(filepath.Join(r.StageDir(s), s.kind.DoneFile))
		ok = err == nil
	}
	return ok
}

// runLocal runs the stage as a child process (with its server, if any).
func (r *Runner) runLocal(ctx context.Context, s *Stage, args []string) error {
	logf, err := os.OpenFile(filepath.Join(r.StageDir(s), "stage.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	out := io.MultiWriter(r.o.Log, logf)
	if s.Server != nil {
		stop, err := startServer(ctx, s.Server, logf)
		if err != nil {
			return err
		}
		defer stop()
	}
	cmd := exec.CommandContext(ctx, r.o.Exe, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("crucible %s: %w (log: %s)", s.Command, err, logf.Name())
	}
	if !r.finished(s) {
		return fmt.Errorf("crucible %s exited without completing %s", s.Command, r.Output(s))
	}
	return nil
}

// startServer starts a stage's server and waits for its health endpoint.
func startServer(ctx context.Context, sv *Server, log io.Writer) (stop func(), err error) {
	cmd := exec.Command("/bin/sh", "-c", sv.Command)
	cmd.Stdout, cmd.Stderr = log, log
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("server %q: %w", sv.Command, err)
	}
	stop = func() {
		stopGroup(cmd, true)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			stopGroup(cmd, false)
			<-done
		}
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if sv.Health == "" {
		return stop, nil
	}
	if err := WaitHealthy(ctx, sv.Health, time.Duration(sv.timeoutSeconds())*time.Second, exited); err != nil {
		stop()
		return nil, fmt.Errorf("server %q: %w", sv.Command, err)
	}
	return stop, nil
}

// WaitHealthy polls url until it answers 200, the timeout (default 10
// minutes) passes, or exited reports the server died.
func WaitHealthy(ctx context.Context, url string, timeout time.Duration, exited <-chan error) error {
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return fmt.Errorf("exited before %s was healthy: %v", url, err)
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %s", url, timeout)
		}
	}
}

// Plan prints what Run would do.
func (r *Runner) Plan(ctx context.Context, w io.Writer) error {
	order, err := r.c.Order()
	if err != nil {
		return err
	}
	for _, s := range order {
		args := strings.Fields(s.Command)
		if !s.kind.NoInput && len(s.inputs()) > 0 {
			in, _ := r.inputArg(ctx, s, true)
			args = append(args, "--input="+in)
		}
		args = append(args, "--output="+r.outputArg(s))
		args = append(args, r.c.flagArgs(s)...)
		state := "to run"
		if sm := r.m.Stages[s.Name]; sm != nil && sm.Status == "done" && r.finished(s) {
			state = "done"
		}
		fmt.Fprintf(w, "# stage %s (%s, %s)\n", s.Name, r.launcher(s), state)
		if s.Command == "curate" && s.Shards > 1 {
			fmt.Fprintf(w, "# %d partitions: the jobs of `crucible %s --shards=%d --jobs`, each as --job=NAME --task=I\n", s.Shards, strings.Join(args, " "), s.Shards)
			continue
		}
		if r.launcher(s) == "slurm" {
			n := max(s.Shards, 1)
			if n == 1 {
				fmt.Fprint(w, r.Script(s, args, nil, 1))
			} else {
				all := make([]int, n)
				for i := range all {
					all[i] = i
				}
				fmt.Fprint(w, r.Script(s, args, all, n))
				fmt.Fprint(w, r.mergeScript(s, args, n))
			}
			continue
		}
		words := []string{shellQuote(r.o.Exe)}
		for _, a := range args {
			words = append(words, shellQuote(a))
		}
		fmt.Fprintln(w, strings.Join(words, " "))
	}
	return nil
}
