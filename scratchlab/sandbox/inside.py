"""The program that runs *inside* the sandbox: drop privileges, set limits, then run code.

It is started by `scratchlab.sandbox.runner` / `scratchlab.sandbox.session` as

    python -I -S /opt/scratchlab/inside.py <config: marshal, hex> [program args...]

and must use the standard library only (it runs before `site`, with the venv's packages added to
`sys.path` by hand). Two modes:

- ``run``: read the program's source from stdin until EOF, point stdin at /dev/null, and execute it
  as ``__main__`` in this interpreter (one process, no second start-up). Exit status is the
  program's.
- ``session``: a small kernel loop (like a notebook kernel). Requests arrive as JSON lines on the
  original stdin, replies leave as JSON lines on a private duplicate of the original stdout. For
  each call, fds 1 and 2 point at fresh files in the private /tmp, so output of the code *and* of
  any subprocess it starts is captured. Code runs in one persistent globals dict, so variables
  survive between calls; if the last statement is an expression its repr is printed. The loop exits
  after `idle_timeout_s` without a request.

Privilege drop: when bubblewrap is started by root, `runner` maps uid/gid 0 and 65534 into the new
user namespace and grants only CAP_SETUID/CAP_SETGID; this file then switches to 65534, which
clears every capability, before any user code runs. RLIMIT_NPROC is only enforced for a non-root
kernel uid, which is why this switch matters.
"""

import marshal
import os
import resource
import sys

# ast, ctypes, json, linecache, select, signal, traceback are imported where needed (each marked
# "lazy: start-up"): `import ast` alone costs ~15 ms, a tenth of a one-shot run's budget.

SANDBOX_UID = 65534
KEYCTL_SYSCALL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "i686": 288, "armv7l": 311, "ppc64le": 271,
                  "s390x": 280}  # fmt: skip
KEYCTL_JOIN_SESSION_KEYRING = 1
EFBIG = 27  # errno "File too large" (RLIMIT_FSIZE); the errno module is not worth an import here
MB = 1024 * 1024
TRUNCATION_MARKER = "\n[... {n} bytes of output dropped ...]\n"
TAIL_FRACTION = 0.25  # share of the output budget kept from the end of the output


class CPULimitExceeded(BaseException):
    """Raised in session code when its CPU-seconds budget for one call is spent."""


def drop_privileges():
    """Switch to SANDBOX_UID if started as uid 0 inside the user namespace (clears all capabilities)."""
    if os.getuid() == 0 or os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("scratchlab sandbox: refusing to run user code as uid 0")


def new_session_keyring():
    """Leave the parent's kernel session keyring (inherited across fork/exec; keys in it are readable).

    keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL) gives this process a fresh, empty anonymous keyring. Where
    keyctl is blocked (seccomp) or the architecture is unknown, the parent's keyring cannot be
    read through it either, or the caveat in the package docstring applies.
    """
    number = KEYCTL_SYSCALL.get(os.uname().machine)
    if number is None:
        return
    import ctypes  # lazy: start-up

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall(number, KEYCTL_JOIN_SESSION_KEYRING, None)


def set_limits(limits, session=False):
    """Apply the resource limits (dict of the `Limits` fields) to this process and its children."""

    def cap(kind, soft, hard=None):
        hard = soft if hard is None else hard
        cur_soft, cur_hard = resource.getrlimit(kind)
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
            soft = min(soft, hard)
        resource.setrlimit(kind, (soft, hard))

    if limits.get("memory_mb"):
        cap(resource.RLIMIT_AS, int(limits["memory_mb"]) * MB)
    if limits.get("max_file_mb"):
        cap(resource.RLIMIT_FSIZE, int(limits["max_file_mb"]) * MB)
    if limits.get("max_open_files"):
        cap(resource.RLIMIT_NOFILE, int(limits["max_open_files"]))
    if limits.get("max_procs"):
        cap(resource.RLIMIT_NPROC, int(limits["max_procs"]))
    cap(resource.RLIMIT_CORE, 0)
    if limits.get("cpu_s"):
        cpu = int(limits["cpu_s"])
        if session:
            total = int(limits.get("session_cpu_s") or cpu * 20)
            cap(resource.RLIMIT_CPU, min(cpu, total), total)
        else:
            cap(resource.RLIMIT_CPU, cpu, cpu + 1)


def seed_matplotlib_cache():
    """Copy the prebuilt read-only font cache into $MPLCONFIGDIR (saves matplotlib ~1.5 s per run)."""
    src, dest = "/opt/scratchlab/matplotlib", os.environ.get("MPLCONFIGDIR")
    if not dest or not os.path.isdir(src):
        return
    try:
        os.makedirs(dest, exist_ok=True)
        for name in os.listdir(src):
            if name.startswith("fontlist-") and name.endswith(".json"):
                with open(os.path.join(src, name), "rb") as f, open(os.path.join(dest, name), "wb") as g:
                    g.write(f.read())
    except OSError:
        pass


def setup_paths(config):
    for p in config.get("site_packages", []):
        if p not in sys.path:
            sys.path.append(p)
    for p in config.get("python_path", []):  # e.g. a read-only mount of helper modules
        if os.path.isdir(p) and p not in sys.path:
            sys.path.append(p)
    work = config.get("work_dir")
    if work and os.path.isdir(work):
        os.chdir(work)
        if work not in sys.path:
            sys.path.insert(0, work)


def read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def run_once(config):
    """Execute the source read from stdin as __main__; the exit status is the program's."""
    source = read_all(0).decode("utf-8", errors="replace")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    filename = config.get("filename") or "<sandbox>"
    sys.argv = [filename] + sys.argv[1:]
    main = {"__name__": "__main__", "__file__": filename, "__builtins__": __builtins__}
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError:
        import traceback  # lazy: start-up

        traceback.print_exc(limit=0)
        sys.exit(1)
    del sys.modules["__main__"]
    sys.modules["__main__"] = type(sys)("__main__")
    sys.modules["__main__"].__dict__.update(main)
    try:
        exec(code, sys.modules["__main__"].__dict__)
    except SystemExit:
        raise
    except BaseException as e:
        import linecache  # lazy: start-up
        import traceback  # lazy: start-up

        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
        traceback.print_exception(type(e), e, tb)
        sys.stderr.flush()
        sys.exit(1)


# ---- session kernel ---------------------------------------------------------------------------------
def _read_capped(path, budget):
    """Read a captured output file, keeping head and tail within `budget` bytes; (text, dropped)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return "", 0
    with open(path, "rb") as f:
        if size <= budget:
            return f.read().decode("utf-8", errors="replace"), 0
        tail_n = int(budget * TAIL_FRACTION)
        head = f.read(budget - tail_n)
        f.seek(size - tail_n)
        tail = f.read(tail_n)
    dropped = size - len(head) - len(tail)
    text = head.decode("utf-8", errors="replace") + TRUNCATION_MARKER.format(n=dropped)
    return text + tail.decode("utf-8", errors="replace"), dropped


def _compile_cell(source, filename):
    """Compile a cell; if it ends in an expression, also return code that evaluates it."""
    import ast  # lazy: start-up

    tree = ast.parse(source, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, filename, "exec", dont_inherit=True)
    tail = compile(last, filename, "eval", dont_inherit=True) if last is not None else None
    return body, tail


def _cpu_used():
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def _on_xcpu(signum, frame):
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft + 2 <= hard):
        resource.setrlimit(resource.RLIMIT_CPU, (soft + 2, hard))  # room to unwind
    raise CPULimitExceeded("CPU time limit exceeded")


def session_loop(config):
    import json  # lazy: start-up (a one-shot run never needs the session's modules)
    import linecache  # lazy: start-up
    import select  # lazy: start-up
    import signal  # lazy: start-up
    import time  # lazy: start-up
    import traceback  # lazy: start-up

    limits = config.get("limits", {})
    budget = int(limits.get("max_output_bytes") or 64_000)
    cpu_s = int(limits.get("cpu_s") or 0)
    idle = float(config.get("idle_timeout_s") or 0) or None
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    signal.signal(signal.SIGXCPU, _on_xcpu)
    out_path, err_path = "/tmp/.scratchlab-out", "/tmp/.scratchlab-err"
    if config.get("unsafe"):
        base = config.get("tmp_dir") or "/tmp"
        out_path, err_path = os.path.join(base, ".scratchlab-out"), os.path.join(base, ".scratchlab-err")
    user_globals = {"__name__": "__main__", "__builtins__": __builtins__}
    reader = os.fdopen(proto_in, "rb", buffering=0)
    pending = b""

    def send(obj):
        data = (json.dumps(obj) + "\n").encode()
        while data:
            n = os.write(proto_out, data)
            data = data[n:]

    send({"ready": True, "pid": os.getpid()})
    n_cell = 0
    while True:
        while b"\n" not in pending:
            ready, _, _ = select.select([proto_in], [], [], idle)
            if not ready:
                send({"bye": "idle"})
                return
            chunk = reader.read(1 << 16)
            if not chunk:
                return
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        request = json.loads(line)
        if request.get("op") == "close":
            return
        n_cell += 1
        filename = f"<cell {n_cell}>"
        source = request.get("code", "")
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        sys.stdout.flush()
        sys.stderr.flush()
        fo = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        fe = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fo, 1)
        os.dup2(fe, 2)
        os.close(fo)
        os.close(fe)
        if cpu_s:
            _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
            want = int(_cpu_used() + cpu_s + 0.999)  # whole seconds, at least cpu_s from now
            if hard != resource.RLIM_INFINITY:
                want = min(want, hard)
            resource.setrlimit(resource.RLIMIT_CPU, (want, hard))
        reply = {
            "id": request.get("id"),
            "ok": True,
            "exit_code": 0,
            "killed_by": None,
            "memory_exceeded": False,
        }
        t0 = time.monotonic()
        try:
            body, tail = _compile_cell(source, filename)
            exec(body, user_globals)
            if tail is not None:
                value = eval(tail, user_globals)
                if value is not None:
                    print(repr(value))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if e.code is not None and not isinstance(e.code, int):
                print(e.code, file=sys.stderr)
            reply.update(ok=code == 0, exit_code=code)
        except BaseException as e:  # noqa: BLE001 - report everything, keep the kernel alive
            tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
            if isinstance(e, SyntaxError):
                tb = None
            traceback.print_exception(type(e), e, tb)
            reply.update(ok=False, exit_code=1)
            if isinstance(e, MemoryError):
                reply.update(memory_exceeded=True, killed_by="memory")
            if isinstance(e, CPULimitExceeded):
                reply.update(killed_by="cpu")
            if isinstance(e, OSError) and e.errno == EFBIG:  # a file (or the captured output) hit max_file_mb
                reply.update(killed_by="file_size")
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except OSError:
                pass
        reply["duration_s"] = time.monotonic() - t0
        reply["stdout"], d_out = _read_capped(out_path, budget)
        reply["stderr"], d_err = _read_capped(err_path, budget)
        reply["truncated"] = bool(d_out or d_err)
        send(reply)


def main():
    config = marshal.loads(bytes.fromhex(sys.argv[1]))
    os.closerange(3, 65536)  # bwrap's handshake pipes (root path) must not reach user code
    if not config.get("unsafe"):
        drop_privileges()
        new_session_keyring()
    set_limits(config.get("limits", {}), session=config.get("mode") == "session")
    setup_paths(config)
    if not config.get("unsafe"):
        seed_matplotlib_cache()
    del sys.argv[1]
    if config.get("mode") == "session":
        session_loop(config)
    else:
        run_once(config)


if __name__ == "__main__":
    main()
