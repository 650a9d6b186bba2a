# The Python side of the sandbox: a fork server ("zygote") and the sessions it
# forks.
#
# The zygote is started once per pool by the sandbox init, inside the pool's
# namespaces (its read-only root is already built). It imports the preload
# modules, freezes their objects out of the garbage collector (so that forked
# sessions keep sharing their pages) and then forks one session per request
# received on fd 3 (a SOCK_SEQPACKET socket to the supervisor; each request
# carries three descriptors: commands in, results out, and the session's
# control socket). It never runs untrusted code.
#
# A session is three processes:
#   A  forked by the zygote: enters new user, mount, network, IPC, UTS and pid
#      namespaces (the zygote writes its id maps), mounts its private /tmp and
#      /dev/shm, forks B and exits;
#   B  PID 1 of the session's pid namespace: mounts its /proc, sends a pidfd of
#      itself to the supervisor on the control socket (the supervisor kills the
#      session through it and may move it into a cgroup first), forks C and
#      reaps every process of the session; when C ends it reports C's wait
#      status on the control socket and exits, and the kernel kills whatever
#      else is left in the namespace;
#   C  the worker, an unprivileged uid: sets its resource limits and its
#      seccomp filter, then executes code blocks received on the command pipe
#      in one globals dict and answers on the result pipe.
# Messages on the pipes are a 4-byte big-endian length followed by UTF-8 JSON.
import ast, ctypes, gc, json, os, resource, selectors, signal, socket, struct, sys, traceback

CFG = json.loads(sys.argv[1])
ZYGOTE_FD = 3
ISOLATED = bool(CFG.get("isolated"))
NESTED = bool(CFG.get("nested"))

for _m in CFG.get("preload", []):
    try:
        __import__(_m)
    except Exception:
        pass

libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 4, 38, 36
SYS_PIDFD_OPEN, SYS_SECCOMP, SYS_CAPSET = 434, 317, 126
SANDBOX_ID = 1000

# Signals the init ignores (a pid namespace's init only gets the signals it
# handles) and whose dispositions the worker gets back.
_SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
            signal.SIGPIPE, signal.SIGALRM, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGXCPU,
            signal.SIGXFSZ]
_DISPOSITIONS = {s: signal.getsignal(s) for s in _SIGNALS}


def _check(r, what):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def _prctl(op, arg):
    z = ctypes.c_ulong(0)
    _check(libc.prctl(op, ctypes.c_ulong(arg), z, z, z), "prctl(%d)" % op)


def _mount(src, target, fstype, flags, data):
    _check(libc.mount(src.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
                      data.encode() if data else None), "mount " + target)


# ---------------------------------------------------------------- the zygote

def zygote():
    zs = socket.socket(fileno=ZYGOTE_FD)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # sessions' first process is reaped by the kernel
    # Everything imported so far is shared with the sessions: keep the
    # collector from touching (and so copying) its pages.
    gc.collect()
    gc.freeze()
    sel = selectors.DefaultSelector()
    sel.register(zs, selectors.EVENT_READ, None)
    pending = {}  # sync socket -> pid of a session waiting for its id maps
    # Forking is only safe from one thread (the preload modules should not
    # start any); the supervisor warns otherwise.
    zs.send(json.dumps({"ready": True, "threads": len(os.listdir("/proc/self/task"))}).encode())
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    msg, fds, _, _ = socket.recv_fds(zs, 4096, 4)
                except OSError:
                    os._exit(0)
                if not msg:
                    os._exit(0)  # the supervisor went away
                _spawn(zs, sel, pending, fds)
            else:
                sync = key.fileobj
                sel.unregister(sync)
                pid = pending.pop(sync)
                try:
                    if sync.recv(1) == b"u":
                        _write_maps(pid)
                        sync.send(b"m")
                except OSError:
                    pass  # the session died; its supervisor hears it on the control socket
                sync.close()


def _spawn(zs, sel, pending, fds):
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return
    sync = mine = None
    if ISOLATED:
        sync, mine = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        pid = os.fork()
    except OSError:
        pid = -1
    if pid == 0:
        try:
            # Drop every descriptor of the zygote but this session's.
            sel.close()
            zs.detach()
            for s in pending:
                s.detach()
            keep = set(fds) | {0, 1, 2}
            if mine is not None:
                sync.detach()
                keep.add(mine.fileno())
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                if fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            _session(fds, mine)
        except BaseException as e:
            _fail(fds[2], "session setup: %s" % _describe(e))
        os._exit(111)
    for fd in fds:
        os.close(fd)
    if mine is not None:
        mine.close()
        if pid > 0:
            pending[sync] = pid
            sel.register(sync, selectors.EVENT_READ, pid)
        else:
            sync.close()


def _write_maps(pid):
    # The session's root (0) is the zygote's uid, its code's uid (1000) the
    # pool's unprivileged one. With a single host uid (nested), both
    # are that uid and the worker drops its capabilities instead.
    m = "%d 0 1\n" % SANDBOX_ID if NESTED else "0 0 1\n%d %d 1\n" % (SANDBOX_ID, SANDBOX_ID)
    for name in ("uid_map", "gid_map"):
        with open("/proc/%d/%s" % (pid, name), "w") as f:
            f.write(m)


def _describe(e):
    return "".join(traceback.format_exception_only(type(e), e)).strip()


def _fail(ctl_fd, text):
    try:
        os.write(ctl_fd, b"error " + text.encode("utf-8", "replace")[:4000])
    except OSError:
        pass


# ---------------------------------------------------------- a session: A and B

def _session(fds, sync):
    """Process A: set up the session's namespaces and start its init."""
    cmd, res, ctl = fds
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if not ISOLATED:
        # No namespaces: this process is the session's init itself.
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        _init(cmd, res, ctl)
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID), "unshare")
    sync.send(b"u")
    if sync.recv(1) != b"m":
        raise RuntimeError("the zygote did not write the id maps")
    sync.close()
    flags = MS_NOSUID | MS_NODEV
    _mount("sandbox-tmp", "/tmp", "tmpfs", flags, "size=%d,nr_inodes=16384,mode=1777" % CFG["tmp"])
    _mount("sandbox-shm", "/dev/shm", "tmpfs", flags, "size=8m,nr_inodes=1024,mode=1777")
    os.chdir("/tmp")
    if os.fork() == 0:
        try:
            _init(cmd, res, ctl)
        except BaseException as e:
            _fail(ctl, "session init: %s" % _describe(e))
        os._exit(111)
    os._exit(0)


def _init(cmd, res, ctl):
    """Process B: the session's init."""
    for s in _SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    # Not dumpable: the worker may not read this process's memory or files.
    _prctl(PR_SET_DUMPABLE, 0)
    if ISOLATED:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    pidfd = libc.syscall(ctypes.c_long(SYS_PIDFD_OPEN), ctypes.c_long(os.getpid()), ctypes.c_long(0))
    if pidfd < 0:
        _check(-1, "pidfd_open")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=os.dup(ctl))
    socket.send_fds(c, [b"pid"], [pidfd])
    os.close(pidfd)
    if CFG.get("wait"):
        # The supervisor moves this process into the session's cgroup first.
        if c.recv(16) != b"go":
            os._exit(0)
    c.close()
    pid = os.fork()
    if pid == 0:
        try:
            _worker(cmd, res, ctl)
        except BaseException as e:
            _fail(ctl, "worker setup: %s" % _describe(e))
        os._exit(111)
    os.close(cmd)
    os.close(res)
    while True:
        try:
            wpid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if wpid == pid:
            try:
                os.write(ctl, b"exit %d" % status)
            except OSError:
                pass
            os._exit(0)


# ---------------------------------------------------------------- the worker: C

_cmd = _res = _out = _err = -1
_cpu_hard = 0
PID = 0


def _lim(name, soft, hard=None):
    if hard is None:
        hard = soft
    if soft and soft > 0:
        resource.setrlimit(getattr(resource, name), (soft, hard))


def _drop_privileges():
    if NESTED:
        # One host uid: this process keeps its uid and drops every
        # capability it got with the user namespace.
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        data = (ctypes.c_uint32 * 6)()
        _check(libc.syscall(ctypes.c_long(SYS_CAPSET), ctypes.byref(Header(0x20080522, 0)), data), "capset")
        return
    os.setgroups([])
    os.setresgid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID)
    os.setresuid(SANDBOX_ID, SANDBOX_ID, SANDBOX_ID)  # from root: drops all capabilities


def _seccomp(prog):
    """Install the seccomp filter (struct sock_filter entries) on every
    thread of this process; it is inherited by all children."""
    buf = ctypes.create_string_buffer(prog, len(prog))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fp = Fprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)
    _check(libc.syscall(ctypes.c_long(SYS_SECCOMP), ctypes.c_ulong(1), ctypes.c_ulong(1), ctypes.byref(fp)), "seccomp")


def _worker(cmd, res, ctl):
    global _cmd, _res, _out, _err, _cpu_hard, PID
    PID = os.getpid()
    for s, d in _DISPOSITIONS.items():
        signal.signal(s, d)
    if ISOLATED:
        _drop_privileges()
    _prctl(PR_SET_DUMPABLE, 1)
    _cmd, _res = cmd, res
    os.set_inheritable(_cmd, False)
    os.set_inheritable(_res, False)
    os.register_at_fork(after_in_child=_in_child)
    _out = os.memfd_create("stdout", 0)
    _err = os.memfd_create("stderr", 0)
    _cpu_hard = CFG.get("cpu", 0)
    _lim("RLIMIT_AS", CFG.get("as", 0))
    _lim("RLIMIT_FSIZE", CFG.get("fsize", 0))
    _lim("RLIMIT_NPROC", CFG.get("nproc", 0))
    _lim("RLIMIT_CPU", _cpu_hard)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if CFG.get("seccomp"):
        _seccomp(bytes.fromhex(CFG["seccomp"]))
    # Forked sessions start with the zygote's random state: draw anew.
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random.seed()
        except Exception:
            pass
    os.close(ctl)
    main()


def _in_child():
    """Processes the code forks lose the protocol descriptors."""
    global _cmd, _res
    try:
        os.close(_cmd)
        os.close(_res)
    except OSError:
        pass
    _cmd = _res = -1


class SandboxTimeout(BaseException):
    """Raised in the running block when its time is up."""


def _alarm(signum, frame):
    raise SandboxTimeout()


def _readn(n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(_cmd, n - len(buf))
        if not chunk:
            os._exit(0)
        buf += chunk
    return buf


def _send(obj):
    data = json.dumps(obj).encode("utf-8", "replace")
    data = struct.pack(">I", len(data)) + data
    while data:
        n = os.write(_res, data)
        data = data[n:]


def _take(fd, limit):
    """Return the first limit characters written to memfd fd (and whether
    there was more), then empty it."""
    size = os.lseek(fd, 0, os.SEEK_END)
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, min(size, 4 * limit + 4)) if limit > 0 else b""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    text = raw.decode("utf-8", "replace")
    cut = size > len(raw) or len(text) > limit
    return text[:limit], cut


def _std():
    os.dup2(_out, 1)
    os.dup2(_err, 2)
    _flush()  # what an earlier block left buffered goes, then is dropped
    os.ftruncate(_out, 0)
    os.lseek(_out, 0, os.SEEK_SET)
    os.ftruncate(_err, 0)
    os.lseek(_err, 0, os.SEEK_SET)
    for name, fd in (("stdout", 1), ("stderr", 2)):
        f = getattr(sys, name, None)
        if f is None or f.closed or getattr(f, "fileno", lambda: -1)() != fd:
            f = open(fd, "w", closefd=False, encoding="utf-8", errors="backslashreplace")
            setattr(sys, name, f)
        sys.__dict__["__" + name + "__"] = f


def _flush():
    for name in ("stdout", "stderr"):
        f = getattr(sys, name, None)
        try:
            if f is not None and not f.closed:
                f.flush()
        except BaseException:
            pass


def _tb(e):
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
        tb = tb.tb_next
    if isinstance(e, SyntaxError) or tb is None:
        lines = traceback.format_exception_only(type(e), e)
        if not isinstance(e, SyntaxError):
            lines = ["Traceback (most recent call last):\n"] + lines
        return "".join(lines)
    return "".join(traceback.format_exception(type(e), e, tb))


def _reap():
    """Collect exited children: zombies count against RLIMIT_NPROC."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _others():
    """The session's other processes (not its init, not this worker)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) in (1, PID):
            continue
        if not ISOLATED:
            # No pid namespace: only this session's process group.
            try:
                with open("/proc/%s/stat" % p) as f:
                    st = f.read()
                if int(st[st.rindex(")") + 2:].split()[2]) != os.getpgrp() or int(p) == os.getppid():
                    continue
            except (OSError, ValueError):
                continue
        out.append(int(p))
    return out


def _killall():
    """Kill every other process of the sandbox but the init, and wait until
    they are gone (the init reaps orphans, we reap our children)."""
    import time
    for _ in range(400):
        try:
            if ISOLATED:
                os.kill(-1, signal.SIGKILL)
            else:
                for p in _others():
                    os.kill(p, signal.SIGKILL)
        except OSError:
            pass
        _reap()
        if not _others():
            return
        time.sleep(0.005)


def _run(code, ipython, g):
    tree = ast.parse(code, "<cell>", "exec")
    last = None
    # Like IPython: a last bare expression is echoed, unless followed by ";".
    if ipython and tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, "<cell>", "exec"), g)
    if last is not None:
        v = eval(compile(last, "<cell>", "eval"), g)
        if v is not None:
            print(repr(v))


class _Stdin:
    def __init__(self, text):
        import io
        self.f = io.StringIO(text)

    def __getattr__(self, k):
        return getattr(self.f, k)

    def __iter__(self):
        return iter(self.f)


def main():
    g = {"__name__": "__main__", "__builtins__": __builtins__}
    _send({"ready": True, "pid": PID})
    while True:
        (n,) = struct.unpack(">I", _readn(4))
        req = json.loads(_readn(n))
        if req.get("exit"):
            os._exit(0)
        timeout = float(req.get("timeout") or 0)
        limit = int(req.get("max") or 0)
        ipython = req.get("mode", "ipython") == "ipython"
        status, tb = "completed", ""
        try:
            _std()
            sys.stdin = _Stdin(req.get("stdin") or "")
            signal.signal(signal.SIGALRM, _alarm)
            signal.signal(signal.SIGXCPU, _alarm)
            if _cpu_hard > 0 and timeout > 0:
                ru = resource.getrusage(resource.RUSAGE_SELF)
                used = int(ru.ru_utime + ru.ru_stime) + 1
                soft = min(used + int(timeout) + 1, _cpu_hard)
                resource.setrlimit(resource.RLIMIT_CPU, (soft, _cpu_hard))
            if timeout > 0:
                signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                _run(req["code"], ipython, g)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except SandboxTimeout:
            status = "timeout"
        except SystemExit as e:
            if e.code not in (None, 0):
                status, tb = "error", _tb(e)
        except BaseException as e:
            status = "error"
            try:
                tb = _tb(e)
            except BaseException:
                tb = "%s: %s\n" % (type(e).__name__, e)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if os.getpid() != PID:
                os._exit(0)  # a forked child finished the block: it must not answer
            if status == "timeout":
                _killall()  # stop whatever the block started (fork bombs, spinners)
            else:
                _reap()
            _flush()
            if tb:
                if ipython:
                    os.write(_out, tb.encode("utf-8", "replace"))
                else:
                    os.write(_err, tb.encode("utf-8", "replace"))
        except SandboxTimeout:
            status = "timeout"
        except BaseException:
            pass
        out, out_cut = _take(_out, limit)
        err, err_cut = _take(_err, limit)
        _send({"status": status, "stdout": out, "stderr": err, "stdout_cut": out_cut, "stderr_cut": err_cut})


zygote()
