"""Sessions: a live Python interpreter inside the sandbox, so variables persist between calls.

    with Session(new_work_dir(ws.dir("sandbox"), "session")) as s:
        s.run("import numpy as np; x = np.arange(10)")
        s.run("x.sum()").stdout          # '45\\n' (a final expression is printed, as in a notebook)
        s.reset()                        # fresh interpreter, same work folder

The interpreter is `inside.py` in session mode (a kernel loop speaking JSON lines over stdin and
stdout, see its docstring) in one long-lived bubblewrap container with the same isolation as a
one-shot run. Per call: wall-clock timeout (on expiry the container is killed and a fresh one is
started; the reply says that the variables are gone), CPU seconds, output budget, disk check.
The interpreter exits by itself after `idle_timeout_s` without calls; the next call starts a new one
and says so. `SessionPool` keeps one session per key (the agent uses the conversation's thread_id).

Source: the request/reply shape of Jupyter's kernel protocol (execute_request / execute_reply),
reduced to JSON lines over pipes.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scratchlab.sandbox import policy
from scratchlab.sandbox.errors import SandboxError
from scratchlab.sandbox.limits import DEFAULT_IDLE_TIMEOUT_S, MB, Limits
from scratchlab.sandbox.result import OutputBuffer, RunResult, pump
from scratchlab.sandbox.runner import DISK_POLL_S, exit_code_of, kill_tree, spawn, work_dir_warning
from scratchlab.sandbox.workdir import (
    WorkDirWatch,
    changed_files,
    over_limits,
    prepare_work_dir,
    snapshot,
    usage,
)

_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawn")
START_TIMEOUT_S = 60.0  # the interpreter must say "ready" within this many seconds
RESTARTED_AFTER_TIMEOUT = (
    "[sandbox] timed out after {t:g} s: the session was killed and restarted; its variables are gone."
)
RESTARTED_AFTER_EXIT = (
    "[sandbox] the interpreter had exited ({why}); a fresh one was started, so earlier variables are gone."
)
DIED_DURING_CALL = (
    "[sandbox] the interpreter died during this call ({why}); the next call starts a fresh one."
)


class Session:
    """One persistent sandboxed interpreter bound to a work folder.

    Args:
        work_dir: host folder bound writable at /sandbox; kept across calls and restarts.
        limits: per-call limits (`timeout_s`, `cpu_s`, output) and per-process limits.
        ro_mounts: extra read-only mounts (see `policy.normalize_mounts`).
        python_path: folders, as the code sees them, added to `sys.path` (e.g. a mount of helper modules).
        idle_timeout_s: the interpreter exits after this many seconds without a call.
        unsafe_no_sandbox: run without bubblewrap (explicit opt-in; warns every time).

    Raises (from `start`/`run`):
        SandboxUnavailable: bwrap or user namespaces are missing.
        SandboxError: the interpreter did not start.
    """

    def __init__(
        self,
        work_dir: str | os.PathLike,
        *,
        limits: Limits | None = None,
        ro_mounts=None,
        python_path: list[str] | tuple[str, ...] = (),
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        unsafe_no_sandbox: bool = False,
    ):
        self.work_dir = Path(work_dir)
        self.python_path = list(python_path)
        self.limits = limits or Limits()
        self.mounts = policy.normalize_mounts(ro_mounts)
        self.idle_timeout_s = idle_timeout_s
        self.unsafe_no_sandbox = unsafe_no_sandbox
        self.proc = None
        self.last_used = time.monotonic()
        self.exit_reason: str | None = None  # why the previous interpreter ended, reported on restart
        self._replies: queue.Queue = queue.Queue()
        self._stderr = OutputBuffer(8_000)
        self._lock = threading.RLock()
        self._next_id = 0
        self.restarts = 0

    # ---- lifecycle ----
    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the interpreter (no-op if it is running). Blocks until it is ready."""
        with self._lock:
            if self.alive:
                return
            self.work_dir.mkdir(parents=True, exist_ok=True)
            config = {
                "mode": "session",
                "idle_timeout_s": self.idle_timeout_s,
                "python_path": self.python_path,
            }
            self._replies = queue.Queue()
            self._stderr = OutputBuffer(8_000)
            # spawn from one long-lived thread: bwrap's --die-with-parent fires when the *thread* that
            # started it exits, and callers (LangGraph tool threads) may be short-lived
            proc = _SPAWNER.submit(
                spawn,
                config,
                self.work_dir,
                self.limits,
                self.mounts,
                unsafe_no_sandbox=self.unsafe_no_sandbox,
            ).result()
            self.proc = proc
            threading.Thread(target=self._read_replies, args=(proc, self._replies), daemon=True).start()
            threading.Thread(target=pump, args=(proc.stderr.fileno(), self._stderr), daemon=True).start()
            try:
                first = self._replies.get(timeout=START_TIMEOUT_S)
            except queue.Empty:
                first = None
            if not first or not first.get("ready"):
                err = self._stderr.text().strip()
                self.close()
                raise SandboxError(f"the sandboxed interpreter did not start: {err or 'no answer'}")
            self.last_used = time.monotonic()

    @staticmethod
    def _read_replies(proc, replies: queue.Queue) -> None:
        for line in proc.stdout:
            try:
                replies.put(json.loads(line))
            except ValueError:
                continue
        replies.put(None)  # EOF: the interpreter is gone

    def close(self) -> None:
        """Stop the interpreter (its work folder stays)."""
        with self._lock:
            proc, self.proc = self.proc, None
            if proc is None:
                return
            if proc.poll() is None:
                try:
                    proc.stdin.write(b'{"op": "close"}\n')
                    proc.stdin.flush()
                    proc.wait(timeout=0.5)
                except (OSError, ValueError, Exception):  # noqa: BLE001 - closing must not fail
                    pass
            kill_tree(proc)
            try:
                proc.wait(timeout=5)
            except Exception:  # noqa: BLE001
                pass
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass

    def reset(self) -> None:
        """Throw the interpreter's state away and start a fresh one (files in the work folder stay)."""
        with self._lock:
            self.close()
            self.exit_reason = None
            self.start()

    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- calls ----
    def run(self, code: str, timeout_s: float | None = None) -> RunResult:
        """Execute `code` in the persistent interpreter.

        Args:
            code: Python source; if it ends in an expression, its repr is printed.
            timeout_s: wall-clock limit for this call (default `limits.timeout_s`).

        Returns:
            RunResult for this call (stdout/stderr of this call only; files new or changed by it).
        """
        with self._lock:
            notes = []
            if self.proc is not None and not self.alive:
                notes.append(RESTARTED_AFTER_EXIT.format(why=self._why_dead()))
                self.close()
            elif self.proc is None and self.exit_reason:
                notes.append(RESTARTED_AFTER_EXIT.format(why=self.exit_reason))
            if not self.alive:
                if self.restarts or notes:
                    self.restarts += 1
                self.start()
                self.exit_reason = None
            timeout_s = float(timeout_s or self.limits.timeout_s)
            before = snapshot(self.work_dir)
            self._next_id += 1
            request = {"id": self._next_id, "code": code}
            t0 = time.monotonic()
            try:
                self.proc.stdin.write((json.dumps(request) + "\n").encode())
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            reply, killed_by = self._await(self._next_id, t0 + timeout_s)
            duration = time.monotonic() - t0
            self.last_used = time.monotonic()
            result = RunResult(
                ok=False, exit_code=None, duration_s=round(duration, 4), work_dir=str(self.work_dir)
            )
            result.sandboxed = not self.unsafe_no_sandbox
            if self.unsafe_no_sandbox:
                result.warnings.append(policy.UNSAFE_WARNING)
            if reply is not None:
                result.exit_code = reply.get("exit_code", 1)
                result.stdout = reply.get("stdout", "")
                result.stderr = reply.get("stderr", "")
                result.killed_by = reply.get("killed_by")
                result.memory_exceeded = bool(reply.get("memory_exceeded"))
                result.truncated = bool(reply.get("truncated"))
                result.ok = bool(reply.get("ok")) and result.killed_by is None
            else:
                why = killed_by or self._why_dead()
                if killed_by == "timeout":
                    self.close()
                    self.restarts += 1
                    notes.append(RESTARTED_AFTER_TIMEOUT.format(t=timeout_s))
                    try:
                        self.start()
                    except SandboxError as e:
                        notes.append(f"[sandbox] restart failed: {e}")
                elif killed_by:
                    self.close()
                    self.exit_reason = f"killed: {killed_by} limit"
                    notes.append(DIED_DURING_CALL.format(why=f"{killed_by} limit"))
                else:
                    result.exit_code = self._exit_code()
                    tail = self._stderr.text().strip()
                    if tail:
                        result.stderr = tail + "\n"
                    self.close()
                    self.exit_reason = why
                    notes.append(DIED_DURING_CALL.format(why=why))
                    if "MemoryError" in tail or "Cannot allocate memory" in tail:
                        result.memory_exceeded, killed_by = True, "memory"
                result.killed_by = killed_by
                result.timed_out = killed_by == "timeout"
            if result.killed_by is None:
                over = over_limits(*usage(self.work_dir), self.limits.max_disk_mb * MB, self.limits.max_files)
                if over:
                    result.killed_by, result.ok = over, False
            if result.killed_by in ("disk", "files"):
                result.warnings.append(work_dir_warning(result.killed_by, self.limits))
            if notes:
                result.stderr = (
                    (result.stderr + ("\n" if result.stderr and not result.stderr.endswith("\n") else ""))
                    + "\n".join(notes)
                    + "\n"
                )
                result.warnings.extend(notes)
            result.files = changed_files(before, snapshot(self.work_dir))
            return result

    def _await(self, request_id: int, deadline: float):
        """Wait for the reply to `request_id`; returns (reply or None, killed_by or None)."""
        watch = WorkDirWatch(self.work_dir, self.limits.max_disk_mb * MB, self.limits.max_files, DISK_POLL_S)
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None, "timeout"
            try:
                reply = self._replies.get(timeout=min(DISK_POLL_S, deadline - now))
            except queue.Empty:
                over = watch.check()
                if over:
                    kill_tree(self.proc)
                    return None, over
                continue
            if reply is None:
                return None, None
            if reply.get("bye"):
                continue
            if reply.get("id") == request_id:
                return reply, None

    def _exit_code(self) -> int | None:
        if self.proc is None:
            return None
        try:
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            return None
        status = self.proc.returncode
        if status is None:
            return None
        if status < 0:
            return status
        return exit_code_of(status << 8, sandboxed=not self.unsafe_no_sandbox)

    def _why_dead(self) -> str:
        code = self._exit_code()
        if code is None:
            return "unknown reason"
        if code == 0:
            return "idle timeout or exit"
        return f"exit status {code}"


class SessionPool:
    """One `Session` per key (e.g. a conversation's thread_id), created on first use.

    Args:
        root: folder under which each session gets its work folder `<root>/session-<key>`.
        limits, ro_mounts, python_path, idle_timeout_s, unsafe_no_sandbox: passed to every `Session`.
        max_sessions: the least recently used session is closed beyond this many live ones.
    """

    def __init__(self, root, *, limits=None, ro_mounts=None, python_path=(), idle_timeout_s=DEFAULT_IDLE_TIMEOUT_S,
                 unsafe_no_sandbox=False, max_sessions: int = 4):  # fmt: skip
        self.root = Path(root)
        self.kw = dict(
            limits=limits,
            ro_mounts=ro_mounts,
            python_path=python_path,
            idle_timeout_s=idle_timeout_s,
            unsafe_no_sandbox=unsafe_no_sandbox,
        )
        self.max_sessions = max_sessions
        self.sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        atexit.register(self.close_all)

    def get(self, key: str) -> Session:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)[:64] or "default"
        with self._lock:
            s = self.sessions.get(safe)
            if s is None:
                s = Session(prepare_work_dir(self.root / f"session-{safe}"), **self.kw)
                self.sessions[safe] = s
            live = [x for x in self.sessions.values() if x.alive and x is not s]
            for old in sorted(live, key=lambda x: x.last_used)[: max(0, len(live) - self.max_sessions + 1)]:
                old.close()
                old.exit_reason = "closed to make room for another session"
            return s

    def close_all(self) -> None:
        with self._lock:
            for s in self.sessions.values():
                s.close()
