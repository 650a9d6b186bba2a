package sandbox

// Hostile code: each test checks that the sandbox holds (containment), that
// the host is unaffected, and that another session (a bystander) keeps its
// state and worker.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHostileNetwork(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !strings.HasPrefix(c.RemoteAddr().String(), "127.0.0.1:") || true {
				accepted.Add(1)
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	// The outside address is TEST-NET-1 (RFC 5737), and the code tries it
	// only when the sandbox has no interface but lo: nothing can leave.
	code := fmt.Sprintf(`
import socket, errno
names = [n for _, n in socket.if_nameindex()]
print("interfaces", names)
def tcp(addr):
    s = socket.create_connection(addr, timeout=2)
    s.close()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", ("192.0.2.1", 53))
if names == ["lo"]:
    for what, fn in [("loopback", lambda: tcp(("127.0.0.1", %d))),
                     ("localhost", lambda: tcp(("localhost", %d))),
                     ("outside", lambda: tcp(("192.0.2.1", 80))),
                     ("udp", udp),
                     ("dns", lambda: socket.getaddrinfo("example.com", 80))]:
        try:
            fn()
            print(what, "REACHED")
        except OSError as e:
            print(what, "blocked", type(e).__name__)
`, port, port)
	res := runCode(t, p, "net", code, ExecOptions{Timeout: 10 * time.Second})
	defer p.CloseSession("net")
	t.Logf("sandbox said:\n%s%s", res.Stdout, res.Stderr)
	if res.Status != StatusCompleted {
		t.Fatalf("status %s: %s", res.Status, res.Stdout+res.Stderr)
	}
	if !strings.Contains(res.Stdout, "interfaces ['lo']") {
		t.Fatalf("the sandbox has network interfaces: %q", res.Stdout)
	}
	for _, what := range []string{"loopback", "localhost", "outside", "udp", "dns"} {
		if !strings.Contains(res.Stdout, what+" blocked") {
			t.Errorf("%s not blocked: %q", what, res.Stdout)
		}
	}
	// The host's listener got nothing, and still works for the host.
	c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("host listener broken: %v", err)
	}
	c.Close()
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 1 {
		t.Errorf("listener accepted %d connections, want only the host's own", n)
	}
	b.check(t)
}

func TestHostileForkBomb(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	const id = "forkbomb"
	defer p.CloseSession(id)
	mustOutput(t, p, id, "kept = 'yes'", "")
	// Uncaught: the bomb dies on its own when the process limit is hit.
	res := runCode(t, p, id, "import os\nwhile True:\n    os.fork()", ExecOptions{Timeout: 5 * time.Second})
	if (res.Status != StatusError || !strings.Contains(res.Stdout, "BlockingIOError")) && res.Status != StatusTimeout {
		t.Errorf("uncaught bomb: %+v, want an error from fork (or a timeout)", res)
	}
	killed := res.NewSession
	// Caught: it spins until its timeout; then all of it is killed.
	res = runCode(t, p, id, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
		ExecOptions{Timeout: time.Second})
	if res.Status != StatusTimeout {
		t.Errorf("spinning bomb: %+v, want a timeout", res)
	}
	if d := res.Duration; d > 5*time.Second {
		t.Errorf("bomb took %v to stop", d)
	}
	// On a loaded machine the worker may not get the CPU to stop the bomb
	// before its grace ends; then it is killed, and the state goes with it.
	killed = killed || res.NewSession
	if killed {
		mustOutput(t, p, id, "kept = 'yes'", "")
	}
	// The session survives with its state, with no process left over, and
	// can still start processes.
	res = runCode(t, p, id, "import os, subprocess\nprocs = [p for p in os.listdir('/proc') if p.isdigit()]\n"+
		"print(kept, len(procs), subprocess.run(['true']).returncode)", ExecOptions{})
	if res.Status != StatusCompleted || res.NewSession {
		t.Fatalf("after the bomb: %+v", res)
	}
	var kept string
	var nprocs, rc int
	fmt.Sscan(res.Stdout, &kept, &nprocs, &rc)
	if kept != "yes" || nprocs > 3 || rc != 0 {
		t.Errorf("after the bomb: %q, want state kept, <= 3 processes (init, worker) and a working fork", res.Stdout)
	}
	// The host can still start processes.
	if err := exec.Command("true").Run(); err != nil {
		t.Errorf("host cannot fork: %v", err)
	}
	b.check(t)
}

func TestHostileMemoryBomb(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	const id = "membomb"
	defer p.CloseSession(id)
	mustOutput(t, p, id, "kept = 1", "")
	for _, code := range []string{
		"x = bytearray(8 << 30)",
		"chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))",
		"import numpy as np\na = np.ones((1 << 17, 1 << 14))",
		"s = 'x' * (4 << 30)",
	} {
		res := runCode(t, p, id, code, ExecOptions{Timeout: 10 * time.Second})
		if res.Status != StatusError || !strings.Contains(res.Stdout, "MemoryError") {
			t.Errorf("%q: %+v, want a MemoryError", code, res)
		}
		if res.NewSession {
			t.Errorf("%q: the worker died", code)
		}
	}
	mustOutput(t, p, id, "chunks = None\nimport gc\ngc.collect()\nlen(bytearray(10 << 20))", "10485760\n")
	b.check(t)
}

func TestHostileFilesystem(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	const id = "fs"
	defer p.CloseSession(id)
	hostDir := t.TempDir()
	varTmp := filepath.Join(os.TempDir(), "unused")
	if d, err := os.MkdirTemp("/var/tmp", "sandbox-test-"); err == nil {
		varTmp = d
		defer os.RemoveAll(d)
	}
	// Fill /tmp: stops at the tmpfs size; a single big file stops at the
	// file-size limit.
	res := runCode(t, p, id, `
import errno
n = 0
try:
    for i in range(1000):
        with open(f"/tmp/fill{i}", "wb") as f:
            for _ in range(4):
                f.write(b"x" * (1 << 20))
                n += 1
except OSError as e:
    print("fill stopped", errno.errorcode[e.errno], n)
try:
    with open("/tmp/big", "wb") as f:
        for _ in range(64):
            f.write(b"x" * (1 << 20))
except OSError as e:
    print("big stopped", errno.errorcode[e.errno])
`, ExecOptions{Timeout: 20 * time.Second})
	var n int
	var why string
	if _, err := fmt.Sscanf(res.Stdout, "fill stopped %s %d", &why, &n); err != nil || why != "ENOSPC" || n > 40 {
		t.Errorf("filling /tmp: %+v, want ENOSPC near 32 MiB", res)
	}
	if !strings.Contains(res.Stdout, "big stopped EFBIG") && !strings.Contains(res.Stdout, "big stopped ENOSPC") {
		t.Errorf("big file: %q, want EFBIG (or ENOSPC)", res.Stdout)
	}
	mustOutput(t, p, id, "import os, glob\nfor f in glob.glob('/tmp/*'): os.remove(f)", "")

	// Write outside /tmp.
	targets := []string{"/evil", "/usr/evil", "/usr/lib/evil", "/etc/evil", "/etc/passwd", "/dev/evil", "/proc/evil",
		"/bin/evil", "/var/tmp/evil", hostDir + "/evil", varTmp + "/evil", "/proc/sys/kernel/hostname"}
	code := "import errno\nfor p in " + pyList(targets) + ":\n" +
		"    try:\n        with open(p, 'a') as f:\n            f.write('pwned')\n        print(p, 'WROTE')\n" +
		"    except OSError as e:\n        print(p, 'denied', errno.errorcode[e.errno])\n"
	res = runCode(t, p, id, code, ExecOptions{MaxOutputChars: 10000})
	t.Logf("sandbox said:\n%s", res.Stdout)
	if strings.Contains(res.Stdout, "WROTE") || strings.Count(res.Stdout, "denied") != len(targets) {
		t.Errorf("writes outside /tmp: %+v", res)
	}
	// /dev/shm is the sandbox's own.
	mustOutput(t, p, id, "open('/dev/shm/evil', 'w').write('x')", "1\n")
	for _, f := range []string{"/evil", "/usr/evil", "/etc/evil", "/var/tmp/evil", "/dev/shm/evil", hostDir + "/evil", varTmp + "/evil"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s appeared on the host", f)
		}
	}
	if data, _ := os.ReadFile("/etc/passwd"); bytes.Contains(data, []byte("pwned")) {
		t.Errorf("/etc/passwd written")
	}
	b.check(t)
}

func TestHostileReadSecrets(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	const id = "secrets"
	defer p.CloseSession(id)
	const secret = "TOPSECRET-7f3a9c"
	var planted []string
	for _, dir := range []string{t.TempDir(), "/var/tmp"} {
		f, err := os.CreateTemp(dir, "planted-*.txt")
		if err != nil {
			continue
		}
		f.WriteString(secret)
		f.Close()
		os.Chmod(f.Name(), 0o644)
		defer os.Remove(f.Name())
		planted = append(planted, f.Name())
	}
	if len(planted) == 0 {
		t.Fatal("could not plant a file")
	}
	paths := append(planted, "/etc/shadow", "/proc/1/environ", "/proc/1/root/etc/shadow", "/proc/1/mem",
		"/root/.bashrc", "/proc/1/cwd/"+filepath.Base(planted[0]))
	code := "import errno\nfor p in " + pyList(paths) + ":\n" +
		"    try:\n        print(p, 'READ', open(p, 'rb').read(64))\n" +
		"    except OSError as e:\n        print(p, 'denied', errno.errorcode[e.errno])\n" +
		"import os\nprint('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()) == [1, os.getpid()])\n" +
		"print('uid', os.getuid(), os.geteuid(), os.getgroups())\n"
	res := runCode(t, p, id, code, ExecOptions{MaxOutputChars: 10000})
	t.Logf("sandbox said:\n%s", res.Stdout)
	if strings.Contains(res.Stdout, secret) || strings.Contains(res.Stdout, "READ") ||
		strings.Count(res.Stdout, "denied") != len(paths) {
		t.Errorf("secrets readable: %+v", res)
	}
	if !strings.Contains(res.Stdout, "uid 1000 1000 []") {
		t.Errorf("code does not run as the unprivileged uid without groups: %q", res.Stdout)
	}
	var pids string
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(l, "pids ") {
			pids = l
		}
	}
	if pids != "pids True" {
		t.Errorf("the sandbox sees other processes: %q", pids)
	}
	b.check(t)
}

func TestHostileOutput(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	const id = "flood"
	defer p.CloseSession(id)
	for _, code := range []string{
		"while True:\n    print('y' * 100)",
		"import os\nwhile True:\n    os.write(1, b'z' * 65536)",
		"import sys\nwhile True:\n    sys.stderr.write('e' * 1000)",
		"while True:\n    try:\n        print('y' * 1000)\n    except OSError:\n        pass",
	} {
		res := runCode(t, p, id, code, ExecOptions{Timeout: time.Second, MaxOutputChars: 100})
		d := res.Duration
		if len(res.Stdout) > 100+len("<output cut>")+4 || len(res.Stderr) > 200+len("<output cut>") {
			t.Errorf("%q: output not capped: %d/%d bytes", code, len(res.Stdout), len(res.Stderr))
		}
		if !strings.HasSuffix(res.Stdout, "<output cut>") && !strings.HasPrefix(res.Stderr, "eeee") {
			t.Errorf("%q: no cut marker: %q", code, res.Stdout)
		}
		if d > 5*time.Second {
			t.Errorf("%q: took %v", code, d)
		}
		if res.Status == StatusCompleted {
			t.Errorf("%q: completed?", code)
		}
	}
	mustOutput(t, p, id, "print('quiet')", "quiet\n")
	b.check(t)
}

func TestHostileLoopsAndSleeps(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	const id = "loops"
	defer p.CloseSession(id)
	mustOutput(t, p, id, "kept = 1", "")
	tests := []struct {
		code    string
		killed  bool // the interrupt cannot stop it: the worker is killed
		timeout time.Duration
	}{
		{"while True:\n    pass", false, 500 * time.Millisecond},
		{"import time\ntime.sleep(60)", false, 500 * time.Millisecond},
		{"import time\nwhile True:\n    try:\n        time.sleep(60)\n    except BaseException:\n        pass", true, 300 * time.Millisecond},
		{"import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\ntime.sleep(60)", true, 300 * time.Millisecond},
		{"sum(range(10**12))", true, 300 * time.Millisecond}, // a C loop: no bytecode boundary to interrupt at
	}
	for _, tt := range tests {
		res := runCode(t, p, id, tt.code, ExecOptions{Timeout: tt.timeout})
		d := res.Duration
		if res.Status != StatusTimeout || res.NewSession != tt.killed {
			t.Errorf("%q: %+v, want a timeout (worker killed: %v)", tt.code, res, tt.killed)
		}
		if d < tt.timeout || d > tt.timeout+p.cfg.KillGrace+2*time.Second {
			t.Errorf("%q: took %v with a timeout of %v", tt.code, d, tt.timeout)
		}
		want := "True\n"
		if tt.killed {
			want = "False\n"
		}
		res = runCode(t, p, id, "'kept' in globals()", ExecOptions{})
		if res.Stdout != want {
			t.Errorf("%q: state kept = %q, want %q", tt.code, res.Stdout, want)
		}
		mustOutput(t, p, id, "kept = 1", "")
	}
	b.check(t)
}

func TestHostileSignalsAndPtrace(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	const id = "signals"
	defer p.CloseSession(id)
	mustOutput(t, p, id, "kept = 1", "")
	host := os.Getpid()
	code := fmt.Sprintf(`
import ctypes, errno, os, signal
print("ppid", os.getppid())
for pid in sorted({1, os.getppid(), %d} - {os.getpid()}):
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP):
        try:
            os.kill(pid, sig)
            print("kill", pid, sig.name, "SENT")
        except OSError as e:
            print("kill", pid, sig.name, errno.errorcode[e.errno])
libc = ctypes.CDLL(None, use_errno=True)
for pid in sorted({1, %d}):
    r = libc.ptrace(16, pid, 0, 0)  # PTRACE_ATTACH
    print("ptrace", pid, "ATTACHED" if r == 0 else errno.errorcode[ctypes.get_errno()])
`, host, host)
	res := runCode(t, p, id, code, ExecOptions{MaxOutputChars: 10000})
	t.Logf("sandbox said:\n%s", res.Stdout)
	out := res.Stdout
	if p.sp.nested {
		// Not root on the host: the init and the worker share the one host
		// uid, so signals to the init are allowed, and ignored (below).
		var kept []string
		for _, l := range strings.Split(out, "\n") {
			if !strings.HasPrefix(l, "kill 1 ") {
				kept = append(kept, l)
			}
		}
		out = strings.Join(kept, "\n")
	}
	if res.Status != StatusCompleted || strings.Contains(out, "SENT") || strings.Contains(out, "ATTACHED") {
		t.Errorf("signals or ptrace went through: %+v", res)
	}
	// The init and the worker live on, with the state.
	res = runCode(t, p, id, "kept", ExecOptions{})
	if res.Stdout != "1\n" || res.NewSession {
		t.Errorf("after signalling: %+v", res)
	}
	// Killing itself only ends its own session.
	res = runCode(t, p, id, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", ExecOptions{})
	if res.Status != StatusError || !res.NewSession {
		t.Errorf("self-kill: %+v, want an error and a new session", res)
	}
	mustOutput(t, p, id, "'back'", "'back'\n")
	b.check(t)
}

func TestHostileBackgroundProcesses(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	const id = "background"
	markers := []string{"7777.123", "7777.456", "7777.789"}
	code := `
import os, subprocess
subprocess.Popen(["sleep", "7777.123"])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/usr/bin/sleep", ["sleep", "7777.456"])
    os._exit(0)
os.system("nohup sleep 7777.789 >/dev/null 2>&1 &");
`
	mustOutput(t, p, id, code, "")
	waitFor(t, 3*time.Second, "background processes to show on the host", func() bool {
		for _, m := range markers {
			if len(hostProcs(m)) == 0 {
				return false
			}
		}
		return true
	})
	mustOutput(t, p, id, "print('still here')", "still here\n")
	if !p.CloseSession(id) {
		t.Fatal("CloseSession: no session")
	}
	waitFor(t, 3*time.Second, "background processes to be gone", func() bool {
		for _, m := range markers {
			if len(hostProcs(m)) > 0 {
				return false
			}
		}
		return true
	})
	b.check(t)
}

func TestHostileClosesItsOutput(t *testing.T) {
	p := sharedPool(t)
	b := newBystander(t, p)
	const id = "closer"
	defer p.CloseSession(id)
	mustOutput(t, p, id, "kept = 1", "")
	res := runCode(t, p, id, "import os, sys\nsys.stdout.close()\nsys.stderr.close()\nos.close(0)\nos.close(1)\nos.close(2)", ExecOptions{})
	if res.NewSession {
		t.Errorf("closing stdout killed the worker: %+v", res)
	}
	mustOutput(t, p, id, "print('back', kept)", "back 1\n")
	// Closing every descriptor, the worker's own pipes too, ends only this
	// session's worker.
	res = runCode(t, p, id, "import os\nos.closerange(0, 4096)", ExecOptions{})
	if res.Status != StatusError || !res.NewSession {
		t.Errorf("closing all fds: %+v, want an error and a new session", res)
	}
	mustOutput(t, p, id, "print('again')", "again\n")
	b.check(t)
}

// hostProcs returns the host pids whose command line contains marker.
func hostProcs(marker string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmd, []byte(marker)) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pyList renders strings as a Python list literal.
func pyList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func TestHostileSyscalls(t *testing.T) {
	p := sharedPool(t)
	if seccompFilter() == "" {
		t.Skip("no seccomp filter on this architecture")
	}
	b := newBystander(t, p)
	const id = "syscalls"
	defer p.CloseSession(id)
	code := `
import ctypes, errno, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    r = getattr(libc, name)(*args)
    print(name, "ALLOWED" if r >= 0 else errno.errorcode[ctypes.get_errno()])
call("unshare", 0x10000000)            # CLONE_NEWUSER
call("unshare", 0x00020000)            # CLONE_NEWNS
call("ptrace", 0, 0, 0, 0)             # PTRACE_TRACEME
call("mount", b"none", b"/tmp", b"tmpfs", 0, None)
call("syscall", 425, 8, None)          # io_uring_setup
call("syscall", 321, 0, None, 0)       # bpf
r = subprocess.run(["unshare", "--user", "true"], capture_output=True)
print("unshare(1)", "ALLOWED" if r.returncode == 0 else "refused")
# What code does need still works: threads, processes.
out = []
th = threading.Thread(target=lambda: out.append(1)); th.start(); th.join()
print("thread", out, "process", subprocess.run(["true"]).returncode)
`
	res := runCode(t, p, id, code, ExecOptions{MaxOutputChars: 10000})
	t.Logf("sandbox said:\n%s%s", res.Stdout, res.Stderr)
	if res.Status != StatusCompleted || strings.Contains(res.Stdout, "ALLOWED") || strings.Count(res.Stdout, "EPERM") != 6 ||
		!strings.Contains(res.Stdout, "unshare(1) refused") || !strings.Contains(res.Stdout, "thread [1] process 0") {
		t.Errorf("syscall filter: %+v", res)
	}
	b.check(t)
}
