# The Python side of a sandbox session: run by the sandbox init as an
# unprivileged user. It pre-imports the configured modules, sets its resource
# limits (so that no Go code runs between setrlimit and the untrusted code),
# then executes code blocks received on fd 3 in one globals dict and answers on
# fd 4. Messages are a 4-byte big-endian length followed by UTF-8 JSON.
import ast, json, os, resource, signal, struct, sys, traceback

CMD_FD, RES_FD = 3, 4
CFG = json.loads(sys.argv[1])
PID = os.getpid()

for _m in CFG.get("preload", []):
    try:
        __import__(_m)
    except Exception:
        pass

# The protocol fds move out of the way; forked children lose them.
_cmd = os.dup(CMD_FD)
_res = os.dup(RES_FD)
os.close(CMD_FD)
os.close(RES_FD)
os.set_inheritable(_cmd, False)
os.set_inheritable(_res, False)


def _in_child():
    global _cmd, _res
    try:
        os.close(_cmd)
        os.close(_res)
    except OSError:
        pass
    _cmd = _res = -1


os.register_at_fork(after_in_child=_in_child)

_out = os.memfd_create("stdout", 0)
_err = os.memfd_create("stderr", 0)


def _lim(name, soft, hard=None):
    if hard is None:
        hard = soft
    if soft and soft > 0:
        resource.setrlimit(getattr(resource, name), (soft, hard))


_cpu_hard = CFG.get("cpu", 0)
_lim("RLIMIT_AS", CFG.get("as", 0))
_lim("RLIMIT_FSIZE", CFG.get("fsize", 0))
_lim("RLIMIT_NPROC", CFG.get("nproc", 0))
_lim("RLIMIT_CPU", _cpu_hard)
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _seccomp(prog):
    """Install the seccomp filter (struct sock_filter entries) on every
    thread of this process; it is inherited by all children."""
    import ctypes
    buf = ctypes.create_string_buffer(prog, len(prog))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fp = Fprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    zero = ctypes.c_ulong(0)
    if libc.prctl(38, ctypes.c_ulong(1), zero, zero, zero) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)
    if libc.syscall(ctypes.c_long(317), ctypes.c_ulong(1), ctypes.c_ulong(1), ctypes.byref(fp)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER)")


if CFG.get("seccomp"):
    _seccomp(bytes.fromhex(CFG["seccomp"]))


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


def _killall():
    """Kill every other process of the sandbox but the init, and wait until
    they are gone (the init reaps orphans, we reap our children)."""
    import time
    for _ in range(400):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        _reap()
        if not [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, PID)]:
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


main()
