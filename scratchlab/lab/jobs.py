"""Background jobs, the parent side: start long work in a child process, watch it, wait, cancel.

Parent side (REPL, CLI, tools)::

    job = start_job(ws, reg, "gpt", "scratchlab.training.trainer", config, run_dir=run_dir, artifact_id="run-3")
    job = wait_for_job(reg, job.id, on_progress=print)     # or leave it running and ask later
    cancel_job(reg, job.id)                                 # SIGTERM to its process group, then wait

The child is `python -m <module> --config <run_dir>/<job-id>.json --job-id <id> --home <root>`, started in
a new session (its own process group), so Ctrl-C in the terminal does not reach it; its stdout and
stderr go to `<run_dir>/<job-id>.log`. Inside the child, `scratchlab.lab.job_child.run_job_main`
reports progress and records done / failed / cancelled. A job whose process vanished (SIGKILL, OOM,
power loss) while marked running is detected by `refresh_job` and marked "failed" with a hint to resume; its last
checkpoint is intact because the engines write checkpoints atomically.

A job that fails says why in its log and its row: a full disk is named ("no space left on /mnt (3 MB
free, ...): free some MB and resume"), never reported as a crash. The child's last log line
(`FAILED_LOG_PREFIX`) is read back by `refresh_job` when the database could not be written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from scratchlab.lab import cancel
from scratchlab.lab.atomic import atomic_write_json
from scratchlab.lab.diskspace import NO_SPACE_MARKERS, free_bytes, no_space_message
from scratchlab.lab.job_child import (
    DEFAULT_RESUME_HINT,
    FAILED_LOG_PREFIX,
    JOB_META_KEY,
    job_meta,
    mark_artifact,
)
from scratchlab.lab.registry import Job, LabDatabaseError, Registry
from scratchlab.lab.schema import utcnow
from scratchlab.lab.workspace import Workspace

ACTIVE = ("queued", "running")
TERMINAL = ("done", "failed", "cancelled")
SPAWN_GRACE_S = 120.0  # a queued job without a pid after this long is considered lost
CANCEL_TIMEOUT_S = 30.0
DEAD_JOB_ERROR = "the job's process (pid {pid}) ended without reporting (killed or crashed). {hint}"
DIED_WITH_REASON_ERROR = "the job's process (pid {pid}) ended: {reason}"
DIED_ON_FULL_DISK_ERROR = (
    "the job's process (pid {pid}) ended without reporting, on a full disk: {reason}. {hint}"
)
FULL_DISK_BYTES = 1024**2  # less free than this where a job writes: it could not even write its log
LOG_SCAN_LINES = 200
_CHILDREN: dict[str, subprocess.Popen] = {}  # job id -> child started by this process (for reaping)


class JobError(RuntimeError):
    """A job could not be started or controlled; the message says why."""


def start_job(
    workspace: Workspace,
    registry: Registry,
    kind: str,
    module: str,
    config: dict[str, Any],
    *,
    run_dir: str | Path | None = None,
    artifact_id: str | None = None,
    total: int = 0,
    resume_hint: str | None = None,
    extra_args: list[str] | None = None,
) -> Job:
    """Start `python -m module` as a background job and return its (queued) `Job`.

    Args:
        workspace: the lab workspace (its root is passed to the child as `--home`).
        registry: where the job row lives.
        kind: job kind ("gpt", "lora", ...).
        module: importable module with a `--config/--job-id/--home` command line.
        config: JSON-serialisable config written to `<run_dir>/<job-id>.json` for the child.
        run_dir: folder for the config and the log (default: `config["out_dir"]` or `runs/<job-id>`).
        artifact_id: the artifact (e.g. a run) this job produces; metrics are logged under it.
        total: expected number of steps (for progress before the child reports).
        resume_hint: what to tell the user if the process dies.
        extra_args: more command-line arguments for the child.

    Raises:
        JobError: the child process could not be spawned.
    """
    job = registry.create_job(kind, config=config, total=total)
    run_dir = Path(run_dir or config.get("out_dir") or workspace.dir("runs") / job.id)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = atomic_write_json(run_dir / f"{job.id}.json", config)
    log_path = run_dir / f"{job.id}.log"
    meta = {"module": module, "run_dir": str(run_dir), "config_path": str(config_path), "log": str(log_path),
            "resume_hint": resume_hint or DEFAULT_RESUME_HINT}  # fmt: skip
    registry.update_job(job.id, artifact_id=artifact_id, config={**config, JOB_META_KEY: meta})
    cmd = [sys.executable, "-m", module, "--config", str(config_path), "--job-id", job.id,
           "--home", str(workspace.root), *(extra_args or [])]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SCRATCHLAB_HOME": str(workspace.root)}
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)  # fmt: skip
    except OSError as e:
        registry.update_job(job.id, status="failed", error=f"could not start {module}: {e}")
        raise JobError(f"could not start job {job.id} ({module}): {e}") from e
    _CHILDREN[job.id] = proc
    return registry.update_job(job.id, pid=proc.pid)


def _pid_alive(job: Job) -> bool:
    proc = _CHILDREN.get(job.id)
    if proc is not None:
        return proc.poll() is None
    if not job.pid:
        return False
    try:
        p = psutil.Process(job.pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = p.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return job.id in cmdline  # guards against pid reuse by an unrelated process


def refresh_job(registry: Registry, job_id: str) -> Job:
    """The job, after marking it failed if it is recorded as active but its process is gone."""
    job = registry.get_job(job_id)
    if job.status not in ACTIVE:
        return job
    if job.pid is None:
        created = job.created_at or utcnow()
        if (utcnow() - created).total_seconds() < SPAWN_GRACE_S:
            return job
    elif _pid_alive(job):
        return job
    job = registry.get_job(job_id)  # the child may have finished between the two reads
    if job.status in ACTIVE:
        error = dead_job_error(job)
        try:
            job = registry.update_job(job_id, status="failed", error=error, message="process died")
            mark_artifact(registry, job, "failed")
        except LabDatabaseError:  # e.g. the disk is full: report the truth without recording it
            job = dataclasses.replace(job, status="failed", error=error, message="process died")
    _CHILDREN.pop(job_id, None)
    return job


def dead_job_error(job: Job) -> str:
    """Why a job's process ended without recording its end: its own last word in the log (see
    `run_job_main`), a full disk named in the log or found where it writes, or else "killed or
    crashed"; with the resume hint."""
    meta = job_meta(job)
    hint = meta.get("resume_hint", DEFAULT_RESUME_HINT)
    tail = read_log(job, LOG_SCAN_LINES)
    for line in reversed(tail.splitlines()):
        if line.startswith(FAILED_LOG_PREFIX):
            return DIED_WITH_REASON_ERROR.format(pid=job.pid, reason=line[len(FAILED_LOG_PREFIX) :])
    where = meta.get("run_dir") or meta.get("log") or "."
    if any(m in tail.lower() for m in NO_SPACE_MARKERS):
        return DIED_WITH_REASON_ERROR.format(
            pid=job.pid, reason=f"{no_space_message(where, 'resume')}. {hint}"
        )
    free = free_bytes(where)
    if free is not None and free < FULL_DISK_BYTES:  # too full to write even a traceback to its log
        return DIED_ON_FULL_DISK_ERROR.format(
            pid=job.pid, reason=no_space_message(where, "resume"), hint=hint
        )
    return DEAD_JOB_ERROR.format(pid=job.pid, hint=hint)


def list_jobs(registry: Registry, limit: int = 20, status: str | None = None) -> list[Job]:
    """Newest jobs first, with dead active jobs marked failed."""
    jobs = registry.list_jobs(status=status, limit=limit)
    return [refresh_job(registry, j.id) if j.status in ACTIVE else j for j in jobs]


class JobLeftRunning(Exception):
    """`wait_for_job` stopped waiting because the turn was detached or cancelled; the job keeps running.

    Attributes:
        job: the job as last seen (still queued or running).
    """

    def __init__(self, job: Job):
        super().__init__(f"left running in the background as {job.id}")
        self.job = job


def wait_for_job(
    registry: Registry,
    job_id: str,
    on_progress: Callable[[Job], None] | None = None,
    poll_s: float = 0.5,
    timeout: float | None = None,
) -> Job:
    """Poll until the job ends (or `timeout` seconds pass); return its latest `Job`.

    `on_progress(job)` is called at every poll while the job is active and once at the end.
    Inside an agent turn (`scratchlab.lab.cancel.active`), a detach or cancel of the turn (Ctrl-C in the
    REPL) stops the wait at once, without touching the job.

    Raises:
        JobLeftRunning: the turn was detached or cancelled; the job keeps running in the background.
        LookupError: no such job.
    KeyboardInterrupt propagates (the caller decides whether to cancel the job).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    token = cancel.current()
    while True:
        job = refresh_job(registry, job_id)
        if on_progress is not None:
            on_progress(job)
        if job.status in TERMINAL:
            proc = _CHILDREN.pop(job_id, None)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            return job
        if token is not None and token.detached:
            raise JobLeftRunning(job)
        if deadline is not None and time.monotonic() >= deadline:
            return job
        if token is not None:
            token.wait_detached(poll_s)
        else:
            time.sleep(poll_s)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the child leads its own session/process group
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def cancel_job(registry: Registry, job_id: str, timeout: float = CANCEL_TIMEOUT_S) -> Job:
    """Ask a job to stop (SIGTERM to its process group), wait for it, SIGKILL after `timeout` seconds.

    A cooperative job saves a checkpoint and records "cancelled" itself; otherwise this marks it.
    Finished jobs are returned unchanged.

    Raises:
        LookupError: no such job.
    """
    job = refresh_job(registry, job_id)
    if job.status not in ACTIVE:
        return job
    if job.pid is None:
        job = registry.update_job(job_id, status="cancelled", message="cancelled before it started")
        mark_artifact(registry, job, "cancelled")
        return job
    _signal_group(job.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(job):
        time.sleep(0.1)
    note = ""
    if _pid_alive(job):
        _signal_group(job.pid, signal.SIGKILL)
        note = f"did not stop within {timeout:.0f}s and was killed; its last checkpoint is kept"
        time.sleep(0.2)
    proc = _CHILDREN.pop(job_id, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    job = registry.get_job(job_id)
    if job.status in ACTIVE:  # it died before recording its own end (e.g. still starting up)
        job = registry.update_job(job_id, status="cancelled", message=note or "cancelled", error=note)
        mark_artifact(registry, job, "cancelled")
    return job


def read_log(job: Job, tail: int = 40) -> str:
    """The last `tail` lines of a job's log ("" if it has none yet)."""
    path = job_meta(job).get("log")
    if not path or not Path(path).exists():
        return ""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[-tail:])


def job_elapsed(job: Job) -> float:
    """Seconds the job has run (so far, or in total)."""
    if job.started_at is None:
        return 0.0
    end = job.ended_at or utcnow()
    return max(0.0, (end - job.started_at).total_seconds())
