package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeWithOpenAIClient drives `crucible serve` with the official
// openai npm client (.ci/run installs it and sets CRUCIBLE_NPM to its
// node_modules): chat, completions, streaming with usage, n > 1,
// logprobs, echo, embeddings, a wrong key and tools.
func TestServeWithOpenAIClient(t *testing.T) {
	npm := os.Getenv("CRUCIBLE_NPM")
	node, err := exec.LookPath("node")
	if npm == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI needs node and CRUCIBLE_NPM (the openai npm package): see .ci/run")
		}
		t.Skip("no node or CRUCIBLE_NPM")
	}
	model := tinyModel(t)
	cmd := crucible("serve", "--model", model, "--model-name", "tiny", "--addr", "127.0.0.1:0", "--api-key-env", "TEST_SERVE_KEY")
	cmd.Env = append(cmd.Env, "TEST_SERVE_KEY=sekrit")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	// The startup log names the address it listens on.
	addrRe := regexp.MustCompile(`msg=serving .*addr=(\S+)`)
	sc := bufio.NewScanner(stderr)
	addr := ""
	for addr == "" && sc.Scan() {
		if m := addrRe.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("serve did not start")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	js := exec.Command(node, filepath.Join("..", "..", "serve", "testdata", "openai_client.mjs"), "http://"+addr+"/v1", "sekrit", "tiny", "64")
	js.Env = append(os.Environ(), "CRUCIBLE_NPM="+npm)
	out, err := js.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "all ok") {
		t.Fatalf("openai client: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestServeKeyEnvUnset: --api-key-env naming an unset variable stops serve
// before it loads anything (it would otherwise serve without auth).
func TestServeKeyEnvUnset(t *testing.T) {
	_, stderr, err := run(t, "serve", "--model", "/nonexistent", "--api-key-env", "CRUCIBLE_TEST_UNSET_KEY")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(stderr, "CRUCIBLE_TEST_UNSET_KEY") || !strings.Contains(stderr, "empty or unset") {
		t.Fatalf("exit %v, stderr %q", err, stderr)
	}
}
