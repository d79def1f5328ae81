"""The child side of a background job: report progress, stop on a signal, record the outcome.

Inside the child process that `scratchlab.lab.jobs.start_job` launched, the engine module's
`__main__` calls `run_job_main`, which marks the job running, gives the work function a
`JobReporter` and records done / failed / cancelled::

    def main(argv=None):                          # in the engine module's __main__
        return job_main(argv, prog="python -m pkg.engine", what="Train X.", config_name="XConfig",
                        work=work_fn, alone=run_in_foreground)  # work_fn(config, reporter) -> dict

`JobReporter.update(step, total, message, **metrics)` writes the job's progress and metrics rows;
SIGINT/SIGTERM set `reporter.stop_requested`, which the work loop checks to save a checkpoint and
return early (status "cancelled"). A failure is named in the log (`FAILED_LOG_PREFIX`, which the
parent reads back when lab.db could not be written) and in the job row; a full disk is said as such.
The bookkeeping the parent keeps in the job's config (`JOB_META_KEY`) is read here with `job_meta`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scratchlab.lab.diskspace import no_space_error
from scratchlab.lab.registry import Job, LabDatabaseError, Registry
from scratchlab.lab.workspace import get_workspace

JOB_META_KEY = "_job"  # job.config[JOB_META_KEY] = {"module", "run_dir", "config_path", "log", "resume_hint"}
HEARTBEAT_S = 10.0
FAILED_LOG_PREFIX = "[job] failed: "  # the child's last word in its log, read back if lab.db was unwritable
DEFAULT_RESUME_HINT = "Its last checkpoint, if any, is intact."


def job_meta(job: Job) -> dict[str, Any]:
    """The launcher's bookkeeping for a job (module, run_dir, config_path, log, resume_hint)."""
    return dict(job.config.get(JOB_META_KEY) or {})


def failure_message(exc: BaseException, job: Job) -> str:
    """One line on why `job` failed: a full disk is named (where, MB free, resume hint); anything else
    is "<ExceptionType>: <message>"."""
    meta = job_meta(job)
    where = meta.get("run_dir") or job.config.get("out_dir") or "."
    full = no_space_error(exc, where, retry="resume")
    if full:
        return f"{full}. {meta.get('resume_hint', DEFAULT_RESUME_HINT)}"
    return f"{type(exc).__name__}: {exc}"


def mark_artifact(registry: Registry, job: Job, status: str, metrics: dict[str, Any] | None = None) -> None:
    """Record a job's outcome (and any scalar results) on the artifact it produces, if any."""
    if job.artifact_id:
        with contextlib.suppress(LookupError):
            registry.update_artifact(
                job.artifact_id, metrics={**(metrics or {}), "status": status, "job": job.id}
            )


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
            mark_artifact(registry, job, kind, {"error": msg[:500]})  # before the status, which waiters poll
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
    mark_artifact(registry, job, status, scalars)
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


def job_main(
    argv: list[str] | None,
    *,
    prog: str,
    what: str,
    config_name: str,
    work: Callable[[dict[str, Any], JobReporter], dict[str, Any]],
    alone: Callable[[dict[str, Any]], int],
    flags: Sequence[tuple[str, str]] = (),
) -> int:
    """The command line of an engine's job process: `python -m <engine> --config cfg.json [--job-id ID
    --home DIR]`. With --job-id, `work` runs as that job (`run_job_main`); without, `alone(config)` runs
    in the foreground, prints its result and returns the exit code.

    Args:
        flags: extra on/off options as (name, help); a given one sets `config[name] = True`
            ("--resume" -> config["resume"]).
    """
    p = argparse.ArgumentParser(prog=prog, description=what)
    p.add_argument("--config", required=True, help=f"path of a JSON {config_name}")
    p.add_argument(
        "--job-id", default=None, help="lab job id to report progress to (set by scratchlab.lab.jobs)"
    )
    p.add_argument("--home", default=None, help="workspace root holding lab.db (with --job-id)")
    for name, help_text in flags:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, action="store_true", help=help_text)
    args = p.parse_args(argv)
    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    config.update({name: True for name, _ in flags if getattr(args, name)})
    if args.job_id:
        return run_job_main(args.job_id, args.home, work, config)
    return alone(config)
