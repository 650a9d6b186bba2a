package sandbox

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nonRootTests are run again by TestNonRootHost.
var nonRootTests = []string{"TestSessionKeepsState", "TestHardKillStartsNewSession", "TestHostileNetwork",
	"TestHostileFilesystem", "TestHostileReadSecrets", "TestHostileSignalsAndPtrace", "TestHostileBackgroundProcesses"}

// TestNonRootHost runs part of the suite again as an unprivileged host user
// (nobody), where the sandbox has one host uid and drops to its
// unprivileged uid through a nested user namespace.
func TestNonRootHost(t *testing.T) {
	if os.Getenv("CRUCIBLE_SANDBOX_NONROOT") != "" {
		t.Skip("already the non-root run")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	sharedPool(t) // skips where there is no isolation at all
	bin := copyTestBinary(t)
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin,
		"-test.v", "-test.run=^("+strings.Join(nonRootTests, "|")+")$")
	cmd.Dir = filepath.Dir(bin)
	tmp := filepath.Join(filepath.Dir(bin), "tmp")
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(tmp, 0o1777)
	cmd.Env = append(os.Environ(), "CRUCIBLE_SANDBOX_NONROOT=1", "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	t.Logf("as nobody:\n%s", out)
	if err != nil {
		t.Fatalf("the suite failed as an unprivileged user: %v", err)
	}
	if n := strings.Count(string(out), "--- PASS"); n != len(nonRootTests) {
		t.Fatalf("%d tests passed as an unprivileged user, want %d", n, len(nonRootTests))
	}
}

// TestNoIsolation checks, in a user namespace that may not create more user
// namespaces, that NewPool refuses to run without isolation, and that
// UnsafeNoIsolation runs code anyway (with its time limit).
func TestNoIsolation(t *testing.T) {
	if os.Getenv("CRUCIBLE_SANDBOX_NOUSERNS") != "" {
		testNoIsolationInside(t)
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	sharedPool(t)
	bin := copyTestBinary(t)
	cmd := exec.Command(unshare, "--user", "--map-root-user", "sh", "-c",
		`echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" -test.run='^TestNoIsolation$' -test.v`, bin)
	cmd.Env = append(os.Environ(), "CRUCIBLE_SANDBOX_NOUSERNS=1")
	out, err := cmd.CombinedOutput()
	t.Logf("without user namespaces:\n%s", out)
	if err != nil {
		t.Fatalf("failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestNoIsolation") {
		t.Fatal("the test did not run inside")
	}
}

func testNoIsolationInside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := NewPool(ctx, Config{Preload: []string{}, WarmWorkers: -1})
	if !errors.Is(err, ErrNoIsolation) || !strings.Contains(err.Error(), "--unsafe-no-isolation") {
		t.Fatalf("NewPool = %v, want ErrNoIsolation naming --unsafe-no-isolation", err)
	}
	p, err := NewPool(ctx, Config{Preload: []string{}, WarmWorkers: -1, UnsafeNoIsolation: true})
	if err != nil {
		t.Fatalf("NewPool(UnsafeNoIsolation): %v", err)
	}
	defer p.Close()
	if p.Isolated() {
		t.Fatal("Isolated() = true")
	}
	mustOutput(t, p, "s", "x = 2", "")
	mustOutput(t, p, "s", "x * 21", "42\n")
	res := runCode(t, p, "s", "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass",
		ExecOptions{Timeout: 200 * time.Millisecond})
	if res.Status != StatusTimeout || !res.NewSession {
		t.Fatalf("stubborn loop: %+v, want a hard-killed timeout", res)
	}
}

// copyTestBinary copies this test binary where any user may run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "sandbox-test-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "sandbox.test")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}
