"""One-shot sandboxed runs: start bubblewrap, feed it the code, watch the limits, report as JSON.

    from scratchlab.sandbox import run_code, new_work_dir
    work = new_work_dir(workspace.dir("sandbox"))
    result = run_code("import numpy as np; print(np.arange(3).sum())", work, limits=Limits(timeout_s=10))
    result.ok, result.stdout, result.files, result.to_json()

Each run is its own bwrap process (see `policy.bwrap_argv`). The parent reads stdout/stderr
incrementally (head and tail kept, the middle dropped with a marker), polls the size of the work
folder, and on a timeout or limit kills bwrap, whose pid-namespace init takes every process of the
run with it. Results are a dataclass that converts to and from JSON; nothing is ever pickled.

Source: the one-process-per-run design of nanochat's `execution.py` and OpenAI human-eval's
`execution.py`, with bubblewrap (bwrap(1)) in place of their in-process guards.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from scratchlab.sandbox import policy
from scratchlab.sandbox.errors import SandboxError, SandboxUnavailable, UnsafeSandboxWarning
from scratchlab.sandbox.limits import MB, OUTPUT_KILL_FACTOR, Limits
from scratchlab.sandbox.policy import SANDBOX_UID, UNSAFE_WARNING, Mount
from scratchlab.sandbox.result import MEMORY_MARKERS, FileInfo, OutputBuffer, RunResult, classify, pump
from scratchlab.sandbox.workdir import (
    WorkDirWatch,
    changed_files,
    new_work_dir,
    over_limits,
    prepare_work_dir,
    snapshot,
    usage,
)

DISK_POLL_S = 0.1  # how often the work folder's size is measured during a run, seconds
HANDSHAKE_TIMEOUT_S = 20.0

__all__ = ["FileInfo", "RunResult", "kill_tree", "new_work_dir", "run_code", "spawn"]


# ---- starting the sandbox --------------------------------------------------------------------------------
def work_dir_warning(killed_by: str, limits: Limits) -> str:
    """The warning for a work folder over its "disk" (MiB) or "files" (count) limit."""
    if killed_by == "files":
        return f"the work folder exceeded its limit of {limits.max_files} files and folders"
    return f"the work folder exceeded its {limits.max_disk_mb} MiB disk limit"


def require_sandbox() -> str:
    """Return the bwrap path, or raise `SandboxUnavailable` saying how to fix this machine."""
    bwrap = policy.find_bwrap()
    if bwrap is None:
        raise SandboxUnavailable(policy.FIX_BWRAP_MISSING)
    reason = policy.probe(bwrap)
    if reason:
        raise SandboxUnavailable(reason)
    return bwrap


def _read_info(fd: int, proc: subprocess.Popen) -> dict:
    data = b""
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        try:
            return json.loads(data)
        except ValueError:
            continue
    proc.kill()
    _, err = proc.communicate(timeout=5)
    raise SandboxError(
        f"bubblewrap failed to start: {(err or b'').decode(errors='replace').strip() or 'no answer'}"
    )


def spawn(
    config: dict,
    work_dir: str | os.PathLike,
    limits: Limits,
    mounts: list[Mount],
    *,
    unsafe_no_sandbox: bool = False,
) -> subprocess.Popen:
    """Start `inside.py` with `config` in the sandbox; stdin/stdout/stderr are binary pipes.

    The process is the leader of a new session/process group, so `kill_tree` reaches everything.

    Raises:
        SandboxUnavailable: bwrap or user namespaces are missing (message says how to fix it).
        SandboxError: bwrap did not start.
    """
    config = {**config, "limits": limits.to_dict(), "site_packages": policy.python_layout()["site_packages"]}
    pipes = dict(
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    if unsafe_no_sandbox:
        warnings.warn(UNSAFE_WARNING, UnsafeSandboxWarning, stacklevel=3)
        tmp = Path(work_dir) / policy.UNSAFE_TMP_NAME
        tmp.mkdir(exist_ok=True)
        config.update(unsafe=True, work_dir=str(work_dir), tmp_dir=str(tmp))
        env = {
            **policy.ENV_ALLOW,
            "HOME": str(work_dir),
            "TMPDIR": str(tmp),
            "MPLCONFIGDIR": str(tmp / "mpl"),
        }
        argv = [
            sys.executable,
            *policy.PYTHON_FLAGS,
            str(policy.HOST_INSIDE_SCRIPT),
            *policy.inside_args(config),
        ]
        return subprocess.Popen(argv, cwd=str(work_dir), env=env, **pipes)

    bwrap = require_sandbox()
    config["work_dir"] = policy.WORK_DIR
    prepare_work_dir(work_dir)
    if not policy.is_root():
        argv = policy.bwrap_argv(bwrap, work_dir, limits, mounts, config, as_root=False)
        return subprocess.Popen(argv, env=dict(policy.ENV_ALLOW), **pipes)
    # Root: map uid 0 (for bwrap's own set-up) and SANDBOX_UID into the new user namespace ourselves;
    # inside.py then switches to SANDBOX_UID, so the code runs as a non-root kernel uid.
    info_r, info_w = os.pipe()
    block_r, block_w = os.pipe()
    try:
        argv = policy.bwrap_argv(
            bwrap, work_dir, limits, mounts, config, as_root=True, info_fd=info_w, block_fd=block_r
        )
        proc = subprocess.Popen(
            argv, env=dict(policy.ENV_ALLOW), pass_fds=(info_w, block_r), extra_groups=[], **pipes
        )
        os.close(info_w)
        os.close(block_r)
        info_w = block_r = -1
        info = _read_info(info_r, proc)
        child = int(info["child-pid"])
        mapping = f"0 0 1\n{SANDBOX_UID} {SANDBOX_UID} 1\n"
        try:
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{child}/{name}", "w") as f:
                    f.write(mapping)
        except OSError as e:
            proc.kill()
            raise SandboxError(f"could not map the sandbox user namespace: {e}") from e
        os.write(block_w, b"1")
        return proc
    finally:
        for fd in (info_r, info_w, block_r, block_w):
            if fd >= 0:
                os.close(fd)


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the run: bwrap's pid-namespace init dies and the kernel kills every process inside.

    The process leads its own process group (`start_new_session`), so one `killpg` reaches it and
    its children. It never reaps the process (no `Popen.poll`/`kill`, which call waitpid): whoever
    waits for it (`run_code`'s `os.wait4` thread, a session's `proc.wait`) still gets its status.
    """
    if proc.returncode is not None:
        return  # already reaped: its pid (and group id) may belong to someone else now
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def exit_code_of(status: int, sandboxed: bool) -> int:
    """Normalise a wait status: the program's code, or -N for signal N (bwrap reports 128+N)."""
    code = os.waitstatus_to_exitcode(status)
    if sandboxed and 128 < code <= 128 + 64:
        return -(code - 128)
    return code


# ---- one-shot run ----------------------------------------------------------------------------------------
def run_code(
    code: str,
    work_dir: str | os.PathLike,
    *,
    limits: Limits | None = None,
    ro_mounts=None,
    filename: str = "<sandbox>",
    argv: list[str] | tuple[str, ...] = (),
    python_path: list[str] | tuple[str, ...] = (),
    unsafe_no_sandbox: bool = False,
) -> RunResult:
    """Run `code` once in a fresh sandbox whose only writable folder is `work_dir`.

    Args:
        code: Python source (str).
        work_dir: host folder bound writable at /sandbox (created if missing); the code's cwd and HOME.
        limits: resource limits (default `Limits()`).
        ro_mounts: extra read-only mounts, see `policy.normalize_mounts`.
        filename: the name shown in tracebacks (e.g. the script's name).
        argv: sys.argv[1:] for the program.
        python_path: folders, as the code sees them (e.g. a read-only mount), added to `sys.path`.
        unsafe_no_sandbox: run without bubblewrap (explicit opt-in; warns every time).

    Returns:
        RunResult.

    Raises:
        SandboxUnavailable: bwrap or user namespaces are missing (the message says how to fix it).
        SandboxConfigError: a limit or mount is invalid.
    """
    limits = limits or Limits()
    mounts = policy.normalize_mounts(ro_mounts)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    before = snapshot(work_dir)
    config = {"mode": "run", "filename": filename, "argv": list(argv), "python_path": list(python_path)}
    t0 = time.monotonic()
    proc = spawn(config, work_dir, limits, mounts, unsafe_no_sandbox=unsafe_no_sandbox)
    out, err = OutputBuffer(limits.max_output_bytes), OutputBuffer(limits.max_output_bytes)
    pumps = [
        threading.Thread(target=pump, args=(proc.stdout.fileno(), out), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr.fileno(), err), daemon=True),
    ]
    for t in pumps:
        t.start()

    def feed() -> None:
        try:
            proc.stdin.write(code.encode("utf-8"))
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    threading.Thread(target=feed, daemon=True).start()
    waited: dict = {}
    done = threading.Event()

    def wait() -> None:
        try:
            _, status, rusage = os.wait4(proc.pid, 0)
        except ChildProcessError:  # reaped elsewhere (never by us; see kill_tree): status unknown
            done.set()
            return
        waited.update(status=status, rusage=rusage)
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    killed_by = None
    deadline = t0 + limits.timeout_s
    max_disk = limits.max_disk_mb * MB
    output_cap = limits.max_output_bytes * OUTPUT_KILL_FACTOR
    watch = WorkDirWatch(work_dir, max_disk, limits.max_files, DISK_POLL_S)
    while not done.wait(min(DISK_POLL_S, max(0.0, deadline - time.monotonic()))):
        now = time.monotonic()
        if now >= deadline:
            killed_by = "timeout"
        elif out.total + err.total > output_cap:
            killed_by = "output"
        else:
            killed_by = watch.check()
        if killed_by:
            kill_tree(proc)
            done.wait(10)
            break
    for t in pumps:
        t.join(timeout=5)
    duration = time.monotonic() - t0
    for stream in (proc.stdout, proc.stderr):
        stream.close()
    status = waited.get("status", 0)
    rusage = waited.get("rusage")
    exit_code = exit_code_of(status, sandboxed=not unsafe_no_sandbox) if waited else None
    stderr = err.text()
    result = RunResult(
        ok=False,
        exit_code=exit_code,
        stdout=out.text(),
        stderr=stderr,
        duration_s=round(duration, 4),
        work_dir=str(work_dir),
        truncated=out.dropped > 0 or err.dropped > 0,
        sandboxed=not unsafe_no_sandbox,
    )
    if unsafe_no_sandbox:
        result.warnings.append(UNSAFE_WARNING)
    cpu_used = (rusage.ru_utime + rusage.ru_stime) if rusage else 0.0
    result.killed_by = killed_by or classify(exit_code, stderr, cpu_used, limits)
    result.timed_out = result.killed_by == "timeout"
    result.memory_exceeded = result.killed_by == "memory" or (
        exit_code not in (0, None) and any(m in stderr for m in MEMORY_MARKERS)
    )
    if result.killed_by is None:
        result.killed_by = over_limits(*usage(work_dir), max_disk, limits.max_files)
    if result.killed_by in ("disk", "files"):
        result.warnings.append(work_dir_warning(result.killed_by, limits))
    if result.truncated:
        result.warnings.append(f"output was truncated to {limits.max_output_bytes} bytes per stream")
    result.files = changed_files(before, snapshot(work_dir))
    result.ok = exit_code == 0 and result.killed_by is None
    return result
