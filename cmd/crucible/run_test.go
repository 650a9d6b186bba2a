package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/curate"
	"github.com/crucible-ml/crucible/pipeline"
	"github.com/crucible-ml/crucible/record"
)

// slurmUp reports whether a Slurm controller answers; under CI=true it must.
func slurmUp(t *testing.T) {
	t.Helper()
	if err := exec.Command("sinfo", "-h").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Slurm in CI (sinfo: %v); .ci/run starts one", err)
		}
		t.Skip("no Slurm here (run .ci/slurm-up and export SLURM_CONF)")
	}
}

// pipelineFixture writes an input, a curation config and a pipeline file
// (generate, sharded, then curate) pointing at a scripted model server.
func pipelineFixture(t *testing.T, dir, serverURL string, shards int) string {
	writeInput(t, dir, 30)
	os.WriteFile(filepath.Join(dir, "steps.yaml"), []byte("steps:\n  - where: 'sample != 1'\n"), 0o644)
	p := filepath.Join(dir, "pipe.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(`name: test-pipe
defaults:
  base-url: %s
  model: m
  concurrency: 2
  log-level: warn
slurm:
  time: "00:10:00"
  extra: ["--cpus-per-task=1"]
stages:
  solve:
    command: generate
    input: %s
    shards: %d
    flags: {samples: 3, temperature: 0.7, seed: 5}
  keep:
    command: curate
    input: solve
    flags: {config: %s}
`, serverURL, filepath.Join(dir, "in.jsonl"), shards, filepath.Join(dir, "steps.yaml"))), 0o644)
	return p
}

func sortedLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	sort.Strings(lines)
	return lines
}

func TestRunLocalAndSlurmAgree(t *testing.T) {
	srv := &slowServer{t: t, bodies: map[int64][]byte{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	pipe := pipelineFixture(t, dir, ts.URL, 3)

	runs := filepath.Join(dir, "local")
	if _, stderr, err := run(t, "run", pipe, "--runs-dir", runs, "--launcher", "local"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	local := sortedLines(t, filepath.Join(runs, "test-pipe", "keep", "output.jsonl"))
	if len(local) != 60 {
		t.Fatalf("local run kept %d rows, want 60", len(local))
	}
	// A rerun does nothing.
	_, stderr, err := run(t, "run", pipe, "--runs-dir", runs, "--launcher", "local", "--log-level", "info")
	if err != nil || strings.Count(stderr, "stage already done") != 2 {
		t.Fatalf("rerun: %v\n%s", err, stderr)
	}

	slurmUp(t)
	sruns := filepath.Join(dir, "slurm")
	if _, stderr, err := run(t, "run", pipe, "--runs-dir", sruns, "--launcher", "slurm", "--poll", "300ms"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	sl := sortedLines(t, filepath.Join(sruns, "test-pipe", "keep", "output.jsonl"))
	if strings.Join(sl, "\n") != strings.Join(local, "\n") {
		t.Fatalf("slurm and local outputs differ:\n%s\n---\n%s", strings.Join(sl[:3], "\n"), strings.Join(local[:3], "\n"))
	}
	for i := range 3 {
		if _, err := os.Stat(filepath.Join(sruns, "test-pipe", "solve", "shards", fmt.Sprintf("output-%d-of-3.jsonl", i))); err != nil {
			t.Errorf("shard %d: %v", i, err)
		}
	}
}

func TestRunSlurmResubmitsKilledShard(t *testing.T) {
	slurmUp(t)
	// Shard 1's requests wait until it is killed: it is surely running then.
	srv := &slowServer{t: t, bodies: map[int64][]byte{}, holdShard: &record.Shard{Index: 1, Count: 3}, held: make(chan struct{})}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	pipe := pipelineFixture(t, dir, ts.URL, 3)
	runs := filepath.Join(dir, "runs")

	// Kill shard 1 while it runs.
	cmd := crucible("run", pipe, "--runs-dir", runs, "--launcher", "slurm", "--poll", "300ms")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := ""
	deadline := time.Now().Add(60 * time.Second)
	for killed == "" && time.Now().Before(deadline) {
		out, _ := exec.Command("squeue", "-h", "-r", "-n", "crucible-test-pipe-solve", "-o", "%i %K %T").Output()
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 3 && f[1] == "1" && f[2] == "RUNNING" {
				exec.Command("scancel", "--signal=KILL", "--full", f[0]).Run()
				killed = f[0]
			}
		}
		if killed == "" {
			time.Sleep(100 * time.Millisecond) // squeue is polled: Slurm has no event to wait on
		}
	}
	close(srv.held)
	err := cmd.Wait()
	if killed == "" {
		t.Fatalf("shard 1 never seen running; run: %v\n%s", err, stderr.String())
	}
	if err == nil || !strings.Contains(stderr.String(), "shard 1") || !strings.Contains(stderr.String(), "task-") {
		t.Fatalf("the failed shard was not reported (err %v):\n%s", err, stderr.String())
	}
	// The rerun resubmits shard 1 only.
	if _, se, err := run(t, "run", pipe, "--runs-dir", runs, "--launcher", "slurm", "--poll", "300ms"); err != nil {
		t.Fatalf("rerun: %v\n%s", err, se)
	}
	script, _ := os.ReadFile(filepath.Join(runs, "test-pipe", "solve", "slurm", "array.sbatch"))
	if !strings.Contains(string(script), "#SBATCH --array=1\n") {
		t.Fatalf("rerun array is not shard 1 only:\n%s", script)
	}
	got := sortedLines(t, filepath.Join(runs, "test-pipe", "keep", "output.jsonl"))
	// Reference: the same pipeline locally.
	lruns := filepath.Join(dir, "local")
	if _, se, err := run(t, "run", pipe, "--runs-dir", lruns, "--launcher", "local"); err != nil {
		t.Fatalf("local: %v\n%s", err, se)
	}
	want := sortedLines(t, filepath.Join(lruns, "test-pipe", "keep", "output.jsonl"))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after the rerun the output differs from a local run (%d vs %d rows)", len(got), len(want))
	}
	// Every (id, sample) once.
	keys := map[record.Key]bool{}
	for _, l := range got {
		r, _ := record.ParseRow([]byte(l))
		k := record.KeyOf(r)
		if keys[k] {
			t.Fatalf("duplicate %v", k)
		}
		keys[k] = true
	}
}

func TestRunRejectsBrokenPipelines(t *testing.T) {
	dir := t.TempDir()
	in := writeInput(t, dir, 2)
	cases := map[string]struct{ body, want string }{
		"unknown command": {"stages:\n  a:\n    command: generat\n    input: " + in, `unknown command "generat"`},
		"unknown flag":    {"stages:\n  a:\n    command: generate\n    input: " + in + "\n    flags: {temprature: 1}", "has no flag --temprature"},
		"managed flag":    {"stages:\n  a:\n    command: generate\n    input: " + in + "\n    flags: {output: x}", "set by the pipeline"},
		"missing input":   {"stages:\n  a:\n    command: generate\n    input: nowhere.jsonl", `input "nowhere.jsonl" is not a stage`},
		"cycle":           {"stages:\n  a:\n    command: generate\n    input: b\n  b:\n    command: generate\n    input: a", "cycle: a -> b -> a"},
		"not a stage":     {"stages:\n  a:\n    command: prompt list", "writes no --output"},
		"unknown key":     {"stages:\n  a:\n    command: generate\n    input: " + in + "\n    shard: 2", "field shard not found"},
		"eval limit":      {"stages:\n  a:\n    command: eval\n    shards: 2\n    flags: {benchmark: " + in + ", limit: 3}", "--limit applies to each shard"},
		"flag type":       {"stages:\n  a:\n    command: generate\n    input: " + in + "\n    flags: {temperature: hot}", `invalid argument "hot" for "--temperature"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, "p.yaml")
			os.WriteFile(p, []byte("name: broken\n"+c.body+"\n"), 0o644)
			runs := filepath.Join(dir, "runs-"+strings.ReplaceAll(name, " ", "-"))
			_, stderr, err := run(t, "run", p, "--runs-dir", runs, "--launcher", "slurm")
			if err == nil || !strings.Contains(stderr, c.want) {
				t.Fatalf("err %v, stderr:\n%s\nwant %q", err, stderr, c.want)
			}
			if _, err := os.Stat(runs); err == nil {
				t.Fatal("a run folder was created for a broken pipeline")
			}
		})
	}
	_ = context.Background
	_ = http.StatusOK
}

// TestExamplePipelinesAreValid checks every example pipeline against the
// CLI: known commands, known flags, wired inputs, no cycles.
func TestExamplePipelinesAreValid(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	n := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if !strings.Contains(string(b), "\nstages:") {
			if _, err := curate.ParsePipeline(b); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			continue
		}
		n++
		if _, err := pipeline.Load(f, resolveCommand); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if n < 4 {
		t.Fatalf("found %d example pipelines", n)
	}
}

// TestRunStartsStageServer runs a stage whose server (here a sandbox
// server) must be healthy before the stage starts and gone after it.
func TestRunStartsStageServer(t *testing.T) {
	srv := &slowServer{t: t, bodies: map[int64][]byte{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	in := writeInput(t, dir, 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte(fmt.Sprintf(`name: with-server
stages:
  solve:
    command: generate
    input: %s
    flags: {base-url: %s, model: m}
    server:
      command: %s sandbox serve --addr %s --warm-workers -1 --unsafe-no-isolation --log-level info
      health: http://%s/health
      timeout: 60
`, in, ts.URL, os.Args[0], addr, addr)), 0o644)
	_, stderr, err := run(t, "run", p, "--runs-dir", filepath.Join(dir, "runs"))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "runs", "with-server", "solve", "stage.log"))
	if !strings.Contains(string(log), addr) {
		t.Errorf("the server did not log to the stage log:\n%s", log)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the server still listens after the stage")
	}
	if got := len(sortedLines(t, filepath.Join(dir, "runs", "with-server", "solve", "output.jsonl"))); got != 3 {
		t.Errorf("%d rows", got)
	}
}

// TestGradeShardsInPipelines: grade has --shard, so a pipeline may split it.
func TestGradeShardsInPipelines(t *testing.T) {
	dir := t.TempDir()
	in := writeInput(t, dir, 2)
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte("name: g\nstages:\n  graded:\n    command: grade\n    input: "+in+"\n    shards: 4\n"), 0o644)
	if _, err := pipeline.Load(p, resolveCommand); err != nil {
		t.Fatal(err)
	}
}

// TestRunShardedCurate runs a curate stage with shards: 4 (global MinHash
// and exact dedup on) with the local launcher and on Slurm, and checks that
// the kept and the removed rows equal `crucible curate` on one machine, byte
// for byte. On Slurm, one task of the first pass is left unfinished (as if
// it was killed): the rerun submits that task alone.
func TestRunShardedCurate(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "rows.jsonl")
	var b []byte
	for i := range 3000 {
		b = append(curate.SyntheticRow(curate.SyntheticOptions{}, i).AppendJSON(b), '\n')
	}
	os.WriteFile(in, b, 0o644)
	steps := filepath.Join(dir, "steps.yaml")
	os.WriteFile(steps, []byte(`steps:
  - aggregate
  - filter: correct
  - dedup: {method: minhash, scope: problem}
  - dedup: {method: minhash, scope: global, threshold: 0.7}
  - dedup: {method: exact, scope: global}
  - downsample: {n: 800, per_problem: 3, seed: 2}
`), 0o644)
	single := filepath.Join(dir, "single.jsonl")
	if _, stderr, err := run(t, "curate", "--input", in, "--output", single, "--config", steps); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	pipe := filepath.Join(dir, "pipe.yaml")
	os.WriteFile(pipe, []byte(fmt.Sprintf("name: sc\nstages:\n  sft:\n    command: curate\n    input: %s\n    shards: 4\n    flags: {config: %s}\n", in, steps)), 0o644)
	same := func(t *testing.T, runs string) {
		t.Helper()
		for _, f := range [][2]string{{"output.jsonl", "single.jsonl"}, {"output.removed.jsonl", "single.removed.jsonl"}} {
			got, err := os.ReadFile(filepath.Join(runs, "sc", "sft", f[0]))
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(filepath.Join(dir, f[1]))
			if len(want) == 0 || string(got) != string(want) {
				t.Errorf("%s: %d bytes differ from the single-machine %s (%d bytes)", f[0], len(got), f[1], len(want))
			}
		}
	}
	local := filepath.Join(dir, "local")
	if _, stderr, err := run(t, "run", pipe, "--runs-dir", local, "--launcher", "local"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	same(t, local)

	slurmUp(t)
	sruns := filepath.Join(dir, "slurm")
	out := filepath.Join(sruns, "sc", "sft", "output.jsonl")
	os.MkdirAll(filepath.Dir(out), 0o755)
	task := func(job string, i int) {
		t.Helper()
		if _, stderr, err := run(t, "curate", "--input="+in, "--output="+out, "--config="+steps, "--shards=4", "--job="+job, fmt.Sprintf("--task=%d", i)); err != nil {
			t.Fatalf("%s %d: %v\n%s", job, i, err, stderr)
		}
	}
	for i := range 4 {
		task("split", i)
	}
	for _, i := range []int{0, 2, 3} {
		task("pass-0", i)
	}
	if _, stderr, err := run(t, "run", pipe, "--runs-dir", sruns, "--launcher", "slurm", "--poll", "300ms"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	same(t, sruns)
	sb, err := os.ReadFile(filepath.Join(sruns, "sc", "sft", "slurm", "pass-0.sbatch"))
	if err != nil || !strings.Contains(string(sb), "#SBATCH --array=1\n") {
		t.Errorf("pass-0 was not resubmitted for task 1 alone: %v\n%s", err, sb)
	}
	if _, err := os.Stat(filepath.Join(sruns, "sc", "sft", "slurm", "split.sbatch")); !os.IsNotExist(err) {
		t.Errorf("the finished split job was submitted again: %v", err)
	}
}

// TestEvalShardsOnSlurm: an eval stage with shards runs them as an array,
// merges their rows and scores them once; the metrics equal a local run's.
func TestEvalShardsOnSlurm(t *testing.T) {
	slurmUp(t)
	// Answers i+i, or a wrong 0 for a third of the seeds: metrics with
	// something to count (accuracy, majority, pass@k, per-sample spread).
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Seed     int64 `json:"seed"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		var a int
		if len(req.Messages) > 0 {
			fmt.Sscanf(req.Messages[len(req.Messages)-1].Content[strings.LastIndex(req.Messages[len(req.Messages)-1].Content, "What is ")+8:], "%d", &a)
		}
		ans := 2 * a
		if req.Seed%3 == 0 {
			ans = 0
		}
		fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":"So \\boxed{%d}."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3}}`, ans)
	}))
	defer ts.Close()
	dir := t.TempDir()
	var b strings.Builder
	for i := range 24 {
		fmt.Fprintf(&b, `{"id":"q%d","problem":"What is %d+%d?","expected_answer":"%d"}`+"\n", i, i, i, 2*i)
	}
	bench := filepath.Join(dir, "bench.jsonl")
	os.WriteFile(bench, []byte(b.String()), 0o644)
	pipe := filepath.Join(dir, "pipe.yaml")
	os.WriteFile(pipe, []byte(fmt.Sprintf(`name: ev
defaults: {base-url: %s, model: m, log-level: warn}
slurm: {time: "00:10:00", extra: ["--cpus-per-task=1"]}
stages:
  score:
    command: eval
    shards: 3
    flags: {benchmark: %s, samples: 2, temperature: 0.7, seed: 3}
`, ts.URL, bench)), 0o644)
	metrics := map[string]string{}
	for _, launcher := range []string{"slurm", "local"} {
		runs := filepath.Join(dir, "runs-"+launcher)
		if _, se, err := run(t, "run", pipe, "--runs-dir", runs, "--launcher", launcher, "--poll", "300ms"); err != nil {
			t.Fatalf("%s: %v\n%s", launcher, err, se)
		}
		m, err := os.ReadFile(filepath.Join(runs, "ev", "score", "metrics.json"))
		if err != nil {
			t.Fatalf("%s: %v", launcher, err)
		}
		metrics[launcher] = string(m)
		if n := len(sortedLines(t, filepath.Join(runs, "ev", "score", "output.jsonl"))); n != 48 {
			t.Fatalf("%s: %d rows, want 48", launcher, n)
		}
	}
	if !strings.Contains(metrics["local"], `"pass@1`) || strings.Contains(metrics["local"], `"pass@1": 0,`) {
		t.Fatalf("metrics count nothing: %s", metrics["local"])
	}
	t.Logf("metrics: %s", metrics["local"])
	if metrics["slurm"] != metrics["local"] {
		t.Fatalf("metrics differ:\nslurm %s\nlocal %s", metrics["slurm"], metrics["local"])
	}
	script, _ := os.ReadFile(filepath.Join(dir, "runs-slurm", "ev", "score", "slurm", "merge.sbatch"))
	if !strings.Contains(string(script), "--score-only") {
		t.Fatalf("merge job does not score:\n%s", script)
	}
}
