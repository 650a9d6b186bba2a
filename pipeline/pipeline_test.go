package pipeline

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func resolver(cmd string) (CommandInfo, error) {
	return CommandInfo{Flags: map[string]bool{"input": true, "output": true, "shard": true, "samples": true, "base-url": true, "stop": true}}, nil
}

const sample = `name: demo
defaults: {base-url: "http://h:8000/v1", unknown-to-stage: 1}
slurm:
  partition: gpu
  account: proj
  time: "01:00:00"
  gres: gpu:1
  cpus_per_task: 4
  mem: 32G
  extra: ["--exclusive", "#SBATCH --qos=high"]
  setup: ["module load cuda"]
stages:
  solve:
    command: generate
    input: in.jsonl
    shards: 3
    flags: {samples: 4, stop: ["\n\n", "it's"]}
    server: {command: "crucible serve --model m --addr 127.0.0.1:8000", health: "http://127.0.0.1:8000/health"}
`

func TestSbatchScriptsGolden(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte("{}\n"), 0o644)
	wd, _ := os.Getwd()
	os.Chdir(dir)
	defer os.Chdir(wd)
	c, err := Parse([]byte(sample), resolver)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(c, Options{RunsDir: filepath.Join(dir, "runs"), Exe: "/usr/bin/crucible"})
	if err != nil {
		t.Fatal(err)
	}
	r.dir = "/runs/demo" // stable paths in the golden file
	s := c.Stages[0]
	args := []string{"generate", "--input=/data/in.jsonl", "--output=" + r.Output(s)}
	args = append(args, c.flagArgs(s)...)
	got := r.Script(s, args, []int{0, 2}, 3) + "----\n" + r.mergeScript(s, args, 3)
	golden := filepath.Join(wd, "testdata", "sbatch.golden")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, _ := os.ReadFile(golden)
	if got != string(want) {
		t.Fatalf("sbatch scripts differ from %s (rerun with -update after checking):\n%s", golden, got)
	}
	if strings.Contains(got, "unknown-to-stage") {
		t.Fatal("a default the command lacks was passed")
	}
}

func TestParseScontrol(t *testing.T) {
	out := "JobId=12 ArrayJobId=11 ArrayTaskId=1 JobName=x JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0\n" +
		"JobId=13 JobName=y JobState=PENDING Reason=Dependency ExitCode=0:0\n"
	jobs := parseScontrol([]byte(out))
	if len(jobs) != 2 || jobs[0].ID != "11_1" || jobs[0].Task != 1 || jobs[0].State != "FAILED" || jobs[1].ID != "13" || jobs[1].Task != -1 || jobs[1].Reason != "Dependency" {
		t.Fatalf("%+v", jobs)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "a b": "'a b'", "it's": `'it'\''s'`, "": "''", "--x=1,2": "--x=1,2", "\n": "'\n'"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestServerTimeoutOnSlurm: a stage server's timeout reaches the sbatch
// script as it reaches the local runner (it was raised to 600 s).
func TestServerTimeoutOnSlurm(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte("{}\n"), 0o644)
	wd, _ := os.Getwd()
	os.Chdir(dir)
	defer os.Chdir(wd)
	for _, c := range []struct {
		timeout string
		want    string
	}{{", timeout: 45", "--timeout 45s"}, {"", "--timeout 600s"}} {
		y := "name: t\nstages:\n  a:\n    command: generate\n    input: in.jsonl\n" +
			"    server: {command: \"crucible serve\", health: \"http://127.0.0.1:1/health\"" + c.timeout + "}\n"
		cfg, err := Parse([]byte(y), resolver)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRunner(cfg, Options{RunsDir: filepath.Join(dir, "runs"), Exe: "/usr/bin/crucible"})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Script(cfg.Stages[0], []string{"generate"}, nil, 1); !strings.Contains(got, c.want) {
			t.Errorf("server%s: script lacks %q:\n%s", c.timeout, c.want, got)
		}
	}
}

// TestRecordJobFailsLoudly: a submitted job whose manifest save fails is
// an error (a rerun would not know the job and would submit it again).
func TestRecordJobFailsLoudly(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{dir: dir, m: &Manifest{}}
	// A non-empty folder where the manifest goes: the save's rename fails.
	if err := os.MkdirAll(filepath.Join(dir, "manifest.json", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	sm := &StageManifest{}
	err := r.recordJob(sm, "999999")
	if err == nil || !strings.Contains(err.Error(), "job 999999") || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("recordJob: %v", err)
	}
}
