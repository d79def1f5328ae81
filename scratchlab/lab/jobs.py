"""Background jobs: long work in a child process, with progress, metrics and status in lab.db.

Parent side (REPL, CLI, tools)::

    job = start_job(ws, reg, "gpt", "scratchlab.training.trainer", config, run_dir=run_dir, artifact_id="run-3")
    job = wait_for_job(reg, job.id, on_progress=print)     # or leave it running and ask later
    cancel_job(reg, job.id)                                 # SIGTERM to its process group, then wait

The child is `python -m <module> --config <run_dir>/<job-id>.json --job-id <id> --home <root>`, started in
a new session (its own process group), so Ctrl-C in the terminal does not reach it; its stdout and
stderr go to `<run_dir>/<job-id>.log`. Inside the child, the module calls `run_job_main`, which marks the
job running, gives the work function a `JobReporter` and records done / failed / cancelled::

    def main():                                   # in the engine module's __main__
        return run_job_main(job_id, home, work_fn, config)   # work_fn(config, reporter) -> dict

`JobReporter.update(step, total, message, **metrics)` writes the job's progress and metrics rows;
SIGINT/SIGTERM set `reporter.stop_requested`, which the work loop checks to save a checkpoint and
return early (status "cancelled"). A job whose process vanished (SIGKILL, OOM, power loss) while
marked running is detected by `refresh_job` and marked "failed" with a hint to resume; its last
checkpoint is intact because the engines write checkpoints atomically.

A job that fails says why in its log and its row: a full disk is named ("no space left on /mnt (3 MB
free, ...): free some MB and resume"), never reported as a crash. The child's last log line
(`FAILED_LOG_PREFIX`) is read back by `refresh_job` when the database could not be written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scratchlab.lab import cancel
from scratchlab.lab.atomic import atomic_write_json
from scratchlab.lab.diskspace import NO_SPACE_MARKERS, free_bytes, no_space_error, no_space_message
from scratchlab.lab.registry import Job, LabDatabaseError, Registry, utcnow
from scratchlab.lab.workspace import Workspace, get_workspace

ACTIVE = ("queued", "running")
TERMINAL = ("done", "failed", "cancelled")
JOB_META_KEY = "_job"  # job.config[JOB_META_KEY] = {"module", "run_dir", "config_path", "log", "resume_hint"}
HEARTBEAT_S = 10.0
SPAWN_GRACE_S = 120.0  # a queued job without a pid after this long is considered lost
CANCEL_TIMEOUT_S = 30.0
DEAD_JOB_ERROR = "the job's process (pid {pid}) ended without reporting (killed or crashed). {hint}"
DIED_WITH_REASON_ERROR = "the job's process (pid {pid}) ended: {reason}"
DIED_ON_FULL_DISK_ERROR = (
    "the job's process (pid {pid}) ended without reporting, on a full disk: {reason}. {hint}"
)
FULL_DISK_BYTES = 1024**2  # less free than this where a job writes: it could not even write its log
FAILED_LOG_PREFIX = "[job] failed: "  # the child's last word in its log, read back if lab.db was unwritable
LOG_SCAN_LINES = 200
DEFAULT_RESUME_HINT = "Its last checkpoint, if any, is intact."

_CHILDREN: dict[str, subprocess.Popen] = {}  # job id -> child started by this process (for reaping)


class JobError(RuntimeError):
    """A job could not be started or controlled; the message says why."""


def job_meta(job: Job) -> dict[str, Any]:
    """The launcher's bookkeeping for a job (module, run_dir, config_path, log, resume_hint)."""
    return dict(job.config.get(JOB_META_KEY) or {})


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
    import psutil

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
            _mark_artifact(registry, job, "failed")
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


def failure_message(exc: BaseException, job: Job) -> str:
    """One line on why `job` failed: a full disk is named (where, MB free, resume hint); anything else
    is "<ExceptionType>: <message>"."""
    meta = job_meta(job)
    where = meta.get("run_dir") or job.config.get("out_dir") or "."
    full = no_space_error(exc, where, retry="resume")
    if full:
        return f"{full}. {meta.get('resume_hint', DEFAULT_RESUME_HINT)}"
    return f"{type(exc).__name__}: {exc}"


def _mark_artifact(registry: Registry, job: Job, status: str, metrics: dict[str, Any] | None = None) -> None:
    """Record a job's outcome (and any scalar results) on the artifact it produces, if any."""
    if job.artifact_id:
        with contextlib.suppress(LookupError):
            registry.update_artifact(
                job.artifact_id, metrics={**(metrics or {}), "status": status, "job": job.id}
            )


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
        _mark_artifact(registry, job, "cancelled")
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
        _mark_artifact(registry, job, "cancelled")
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


# ---- child side ------------------------------------------------------------------------------------
class JobReporter:
    """Progress reporting and cooperative cancellation for the code running inside a job.

    Attributes:
        stop_requested: set by SIGINT/SIGTERM; the work loop should checkpoint and return.
    """

    def __init__(
        self, registry: Registry, job_id: str, run_id: str | None = None, install_signals: bool = True
    ):
        self.registry = registry
        self.job_id = job_id
        self.run_id = run_id or job_id
        self.stop_requested = False
        self._lock = threading.Lock()
        self._stop_heartbeat = threading.Event()
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        if self.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.stop_requested = True

    def _safe(self, fn: Callable[[], Any]) -> None:
        try:
            with self._lock:
                fn()
        except (LabDatabaseError, OSError) as e:  # a busy database must not kill a training run
            print(f"[job] could not record progress: {e}", file=sys.stderr, flush=True)
        except Exception as e:  # noqa: BLE001 - SQLAlchemy OperationalError etc.; progress is best effort
            if type(e).__module__.startswith("sqlalchemy"):
                print(f"[job] could not record progress: {e}", file=sys.stderr, flush=True)
            else:
                raise

    def update(self, step: int, total: int, message: str = "", **metrics: float) -> None:
        """Record progress (job row) and metrics (one row per value, under `run_id`)."""

        def write():
            self.registry.update_job(self.job_id, step=int(step), total=int(total), message=message)
            if metrics:
                self.registry.log_metrics(self.run_id, int(step), **{k: float(v) for k, v in metrics.items()})

        self._safe(write)

    def heartbeat(self) -> None:
        """Mark the job alive (update_job stamps heartbeat_at)."""
        self._safe(lambda: self.registry.update_job(self.job_id))

    def start_heartbeat(self, interval: float = HEARTBEAT_S) -> None:
        """Beat every `interval` seconds from a daemon thread (for steps slower than the reports)."""

        def loop():
            while not self._stop_heartbeat.wait(interval):
                self.heartbeat()

        threading.Thread(target=loop, name="job-heartbeat", daemon=True).start()

    def close(self) -> None:
        self._stop_heartbeat.set()


def run_job_main(
    job_id: str,
    home: str | None,
    work: Callable[[dict[str, Any], JobReporter], dict[str, Any]],
    config: dict[str, Any],
) -> int:
    """Run `work(config, reporter)` as job `job_id` and record its outcome. Returns the exit code.

    The result dict's "status" may be "cancelled"; an exception marks the job failed with its message
    (the traceback goes to the job log).
    """
    registry = Registry.from_workspace(get_workspace(home))
    job = registry.get_job(job_id)
    reporter = JobReporter(registry, job_id, run_id=job.artifact_id or job_id)
    registry.update_job(job_id, status="running", pid=os.getpid(), message="starting")
    reporter.start_heartbeat()
    try:
        result = work(config, reporter)
    except BaseException as e:  # noqa: BLE001 - record every failure, then exit non-zero
        traceback.print_exc()
        kind = "cancelled" if isinstance(e, KeyboardInterrupt) else "failed"
        msg = failure_message(e, job)
        if kind == "failed":
            print(
                f"{FAILED_LOG_PREFIX}{msg}", file=sys.stderr, flush=True
            )  # the log says why, whatever happens next
        try:
            _mark_artifact(registry, job, kind, {"error": msg[:500]})  # before the status, which waiters poll
            registry.update_job(job_id, status=kind, error=msg, message=msg[:200])
        except Exception as rec:  # noqa: BLE001 - lab.db unwritable (full disk): the log line above stands
            print(f"[job] could not record the failure in lab.db: {rec}", file=sys.stderr, flush=True)
        reporter.close()
        return 130 if kind == "cancelled" else 1
    reporter.close()
    status = "cancelled" if reporter.stop_requested or result.get("status") == "cancelled" else "done"
    message = "cancelled; checkpoint kept" if status == "cancelled" else "finished"
    result = _jsonable(result)
    # the artifact this job produced gets the scalar results as metrics (before the status waiters poll)
    scalars = {k: v for k, v in result.items() if isinstance(v, str | int | float | bool) or v is None}
    _mark_artifact(registry, job, status, scalars)
    registry.update_job(job_id, status=status, result=result, message=message)
    return 0


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    if isinstance(obj, dt.datetime):
        return obj.isoformat()
    return str(obj)
