package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/crucible-ml/crucible/record"
)

// eachCommand calls fn on every command of the CLI.
func eachCommand(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, s := range c.Commands() {
		eachCommand(s, fn)
	}
}

// TestHelpText checks what --help shows on every command: no backticks in
// flag usages (pflag would show the quoted word as the argument's name), no
// default or example pointing outside the module, and no flag of the
// built-in engine on a command that does not run it.
func TestHelpText(t *testing.T) {
	engineFlags := []string{"threads", "matmul", "kv-cache", "quantize", "max-batch"}
	noEngine := map[string]bool{"crucible synth reward": true}
	eachCommand(newRootCmd(), func(c *cobra.Command) {
		if strings.Contains(c.Example, "../shared") || strings.Contains(c.Long, "../shared") {
			t.Errorf("%s: help points at ../shared", c.CommandPath())
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage has a backtick: %q", c.CommandPath(), f.Name, f.Usage)
			}
			if f.Name == "out" && f.Deprecated == "" {
				t.Errorf("%s --out: the output flag is --output on every command", c.CommandPath())
			}
			if strings.Contains(f.DefValue, "../shared") {
				t.Errorf("%s --%s: default %q points outside the module", c.CommandPath(), f.Name, f.DefValue)
			}
		})
		if noEngine[c.CommandPath()] {
			for _, name := range engineFlags {
				if f := c.Flags().Lookup(name); f != nil && !f.Hidden {
					t.Errorf("%s shows --%s, which it ignores", c.CommandPath(), name)
				}
			}
		}
	})
}

// TestSynthWithoutModel runs a recipe that needs no model through the CLI.
func TestSynthWithoutModel(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"id":"a","sample":0,"prompt":"Answer in lowercase.","generation":"all lowercase","instruction_id_list":["change_case:english_lowercase"],"kwargs":[{}]}
{"id":"b","sample":0,"prompt":"Answer in lowercase.","generation":"Not Lowercase","instruction_id_list":["change_case:english_lowercase"],"kwargs":[{}]}
`), 0o644)
	out := filepath.Join(dir, "out.jsonl")
	if _, stderr, err := run(t, "synth", "judge", "--mode", "instructions", "--input", in, "--output", out); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	got := map[string]bool{}
	r, err := record.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		v, _ := r.Row().Bool("follow_all_instructions")
		got[r.Row().ID()] = v
	}
	r.Close()
	if !got["a"] || got["b"] || len(got) != 2 {
		t.Fatalf("verdicts %v", got)
	}
	if _, stderr, err := run(t, "synth", "judge", "--mode", "instructions", "--output", out); err == nil || !strings.Contains(stderr, "--input and --output are required") {
		t.Fatalf("no --input: %v %s", err, stderr)
	}
}

// TestOneDefaultPerConcept checks that a flag shared by several commands
// has one default and one help text on all of them.
func TestOneDefaultPerConcept(t *testing.T) {
	type seen struct{ cmd, def, usage string }
	shared := map[string]bool{"threads": true, "matmul": true, "kv-cache": true, "quantize": true, "max-batch": true,
		"policy": true, "code-tags": true, "data-dir": true, "max-retries": true, "request-timeout": true, "concurrency": true}
	// grade's --concurrency is rows graded at once on the CPUs, not requests in flight.
	exempt := map[string]bool{"crucible grade --concurrency": true}
	first := map[string]seen{}
	eachCommand(newRootCmd(), func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if !shared[f.Name] || f.Hidden || exempt[c.CommandPath()+" --"+f.Name] {
				return
			}
			usage := strings.TrimSuffix(f.Usage, " (capped by --concurrency)")
			s, ok := first[f.Name]
			if !ok {
				first[f.Name] = seen{c.CommandPath(), f.DefValue, usage}
				return
			}
			if s.def != f.DefValue {
				t.Errorf("--%s: default %q on %s, %q on %s", f.Name, s.def, s.cmd, f.DefValue, c.CommandPath())
			}
			if f.Name != "data-dir" && f.Name != "concurrency" && s.usage != usage {
				t.Errorf("--%s: help %q on %s, %q on %s", f.Name, s.usage, s.cmd, usage, c.CommandPath())
			}
		})
	})
	if len(first) < 8 {
		t.Fatalf("found only %v", first)
	}
}

// TestExitStatus: 0 success or equal, 1 a negative verdict, 2 usage and
// runtime errors.
func TestExitStatus(t *testing.T) {
	code := func(args ...string) int {
		_, _, err := run(t, args...)
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 0
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"grade", "check", "1", "1"}, 0},
		{[]string{"grade", "check", "1", "2"}, 1},
		{[]string{"grade", "check", "--no-such-flag", "1", "2"}, 2},
		{[]string{"grade", "--input", "/nonexistent.jsonl", "--output", filepath.Join(t.TempDir(), "o.jsonl")}, 2},
		{[]string{"no-such-command"}, 2},
	} {
		if got := code(tc.args...); got != tc.want {
			t.Errorf("crucible %v: exit %d, want %d", tc.args, got, tc.want)
		}
	}
}

// TestInputCheckedFirst: a missing input stops generate before it looks
// for the model (which would be a download from the hub).
func TestInputCheckedFirst(t *testing.T) {
	_, stderr, err := run(t, "generate", "--input", "/nonexistent.jsonl", "--output", filepath.Join(t.TempDir(), "o.jsonl"),
		"--model", "org/not-downloaded")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(stderr, "nonexistent.jsonl") || strings.Contains(stderr, "org/not-downloaded") {
		t.Fatalf("%v: %s", err, stderr)
	}
}

// TestInterrupt: SIGINT stops generate cleanly while its requests hang:
// exit 130, a message that says how to resume, and no manifest (the
// output does not read as finished).
func TestInterrupt(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // then the server notices when the client goes
		once.Do(func() { close(started) })
		<-r.Context().Done() // a request that never ends until the client goes
	}))
	defer ts.Close()
	dir := t.TempDir()
	in := writeInput(t, dir, 5)
	out := filepath.Join(dir, "out.jsonl")
	cmd := crucible("generate", "--input", in, "--output", out, "--base-url", ts.URL, "--model", "m")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-started // a request is in flight
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "rerun the same command to resume") {
		t.Fatalf("after SIGINT: %v\n%s", err, stderr.String())
	}
	if _, ok, _ := record.ReadManifest(out); ok {
		t.Error("an interrupted run left a manifest (it would read as finished)")
	}
}
