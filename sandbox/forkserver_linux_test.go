//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestForkServerDies checks that a pool outlives its fork server: the
// sessions die with it, and the next block starts a new session from a new
// fork server.
func TestForkServerDies(t *testing.T) {
	p := newTestPool(t, Config{WarmWorkers: 1, Preload: []string{}, Logger: quietLogger()})
	mustOutput(t, p, "s", "x = 1", "")
	p.sp.zmu.Lock()
	z := p.sp.z
	p.sp.zmu.Unlock()
	p.mu.Lock()
	s := p.sessions["s"]
	p.mu.Unlock()
	s.wmu.Lock()
	w := s.w
	s.wmu.Unlock()
	z.kill()
	<-z.exited
	<-w.exited // the session died with it
	res := runCode(t, p, "s", "'x' in globals()", ExecOptions{})
	if res.Status != StatusCompleted || res.Stdout != "False\n" || !res.NewSession {
		t.Fatalf("after the fork server died: %+v, want a new session", res)
	}
	mustOutput(t, p, "s", "6 * 7", "42\n")
}

// TestCgroupDetection runs the detection over a fake cgroup v2 tree.
func TestCgroupDetection(t *testing.T) {
	root := t.TempDir()
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pid := fmt.Sprint(os.Getpid())
	mountinfo := filepath.Join(root, "mountinfo")
	write(mountinfo, "24 1 0:21 / /proc rw - proc proc rw\n35 24 0:30 / "+root+"/cg rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
	own := filepath.Join(root, "cg", "user", "app")
	cgroupFile := filepath.Join(root, "cgroup")

	// v1 only.
	write(cgroupFile, "4:memory:/x\n")
	if dir, why := delegatedCgroup(cgroupFile, mountinfo); dir != "" || !strings.Contains(why, "v1") {
		t.Errorf("v1 only: %q %q", dir, why)
	}
	// No controllers.
	write(cgroupFile, "0::/user/app\n")
	write(filepath.Join(own, "cgroup.controllers"), "cpu io\n")
	if dir, why := delegatedCgroup(cgroupFile, mountinfo); dir != "" || !strings.Contains(why, "not delegated") {
		t.Errorf("no controllers: %q %q", dir, why)
	}
	// Other processes in our cgroup.
	write(filepath.Join(own, "cgroup.controllers"), "cpu io memory pids\n")
	write(filepath.Join(own, "cgroup.subtree_control"), "")
	write(filepath.Join(own, "cgroup.procs"), "1\n"+pid+"\n")
	if dir, why := delegatedCgroup(cgroupFile, mountinfo); dir != "" || !strings.Contains(why, "other processes") {
		t.Errorf("shared cgroup: %q %q", dir, why)
	}
	// Alone: moves into a leaf and delegates the controllers.
	write(filepath.Join(own, "cgroup.procs"), pid+"\n")
	dir, why := delegatedCgroup(cgroupFile, mountinfo)
	if dir != own {
		t.Fatalf("delegated: %q %q, want %s", dir, why, own)
	}
	if b, _ := os.ReadFile(filepath.Join(own, supervisorLeaf, "cgroup.procs")); string(b) != pid {
		t.Errorf("not moved into the leaf: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(own, "cgroup.subtree_control")); string(b) != "+memory +pids" {
		t.Errorf("subtree_control %q", b)
	}
	// A second pool of the process finds the same place.
	write(cgroupFile, "0::/user/app/"+supervisorLeaf+"\n")
	write(filepath.Join(own, "cgroup.subtree_control"), "memory pids\n")
	if dir, why := delegatedCgroup(cgroupFile, mountinfo); dir != own {
		t.Errorf("second pool: %q %q, want %s", dir, why, own)
	}
	// A session's cgroup gets its limits and the init's pid.
	cg := &cgroups{dir: filepath.Join(own, "pool"), memory: 64 << 20, pids: 18}
	os.Mkdir(cg.dir, 0o755)
	sc, err := cg.session(4242)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"memory.max": "67108864", "pids.max": "18", "cgroup.procs": "4242"} {
		if b, _ := os.ReadFile(filepath.Join(sc.dir, file)); string(b) != want {
			t.Errorf("%s = %q, want %q", file, b, want)
		}
	}
	write(filepath.Join(sc.dir, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
	if n := sc.oomKills(); n != 1 {
		t.Errorf("oomKills = %d, want 1", n)
	}
}

// TestMemoryLimitKillsSession needs a host that delegates a cgroup v2
// subtree: a session past its memory.max is killed and says so.
func TestMemoryLimitKillsSession(t *testing.T) {
	p := newTestPool(t, Config{WarmWorkers: -1, Preload: []string{}, Logger: quietLogger(),
		Limits: Limits{Memory: 64 << 20, AddressSpace: 4 << 30}})
	if p.cg == nil {
		t.Skip("no delegated cgroup v2 subtree with the memory controller here")
	}
	mustOutput(t, p, "oom", "kept = 1", "")
	res := runCode(t, p, "oom", "x = bytearray(512 << 20)\nfor i in range(0, len(x), 4096):\n    x[i] = 1", ExecOptions{Timeout: 20 * time.Second})
	if res.Status != StatusError || !res.OutOfMemory || !res.NewSession || !strings.Contains(res.Stderr, "memory limit (64 MiB)") {
		t.Fatalf("past its memory limit: %+v", res)
	}
	res = runCode(t, p, "oom", "'kept' in globals()", ExecOptions{})
	if res.Stdout != "False\n" || !res.NewSession {
		t.Fatalf("after the kill: %+v", res)
	}
}
