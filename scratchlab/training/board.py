"""The run dashboard: the lab's metrics in TensorBoard.

    scratchlab board                    # export, start TensorBoard on http://127.0.0.1:6006, keep exporting
    python -m scratchlab.training.board --home ~/lab --port 6006      # the same, without the CLI
    export_board(workspace, registry)   # registry metrics -> <workspace>/board/<run-id>_<name>/ event files
    ensure_board(workspace)             # the board's URL, starting this module in the background if needed

The registry (SQLite) stays the one record of every run: jobs write their metrics rows there as before
(`JobReporter.update`), and this module copies them into TensorBoard event files with
`torch.utils.tensorboard.SummaryWriter`, incrementally (each run folder remembers the last metrics row it
exported). What each GPT run, LoRA adapter and ablation gets:
- scalars: `loss/train` and `loss/val` (evaluations), `loss/batch` (minibatch loss), `lr`,
  `tokens_per_sec`, and any other logged key under its own name;
- hyperparameters (the HParams tab): the scalar values of the artifact's config, against `loss/val`;
- text (`samples`): for a finished GPT run, a 200-token sample from its checkpoint (seed 0); for a LoRA
  adapter, the generations its job recorded.

Why TensorBoard rather than trackio or MLflow: see the README ("Run dashboard"). In short, it adds six
packages and no version change to this environment, starts in under a second, and its writer ships in
torch (`torch.utils.tensorboard`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scratchlab.lab.atomic import atomic_write_json
from scratchlab.lab.registry import Artifact, Job, Registry
from scratchlab.lab.schema import MetricRow
from scratchlab.lab.workspace import Workspace, get_workspace

BOARD_DIR = "board"
BOARD_KINDS = ("run", "adapter", "ablation")
STATE_FILE = ".scratchlab-export.json"  # per run folder: {"last_pk": int, "hparams": bool, "samples": bool}
BOARD_FILE = "board.json"  # in the board folder while a board serves: {"url", "pid", "tensorboard_pid"}
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6006
START_TIMEOUT_S = 60.0  # how long to wait for TensorBoard to answer (seconds)
SAMPLE_TOKENS = 200
TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "loss": "loss/batch"}  # registry key -> tag
TERMINAL = ("done", "cancelled", "failed")
MAX_RUNS = 200
REFRESH_S = 10.0  # how often `scratchlab board` exports new metrics rows (seconds)


class BoardError(RuntimeError):
    """TensorBoard could not be started or reached; the message says why."""


def board_dir(workspace: Workspace) -> Path:
    """`<workspace>/board` (made if missing), TensorBoard's log folder."""
    path = workspace.root / BOARD_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_folder_name(a: Artifact) -> str:
    """The TensorBoard run name of an artifact: "<id>_<name>", e.g. "run-3_shakes-4l"."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", a.name).strip("-.")
    return a.id if not name or name == a.id else f"{a.id}_{name}"


def _hparams(a: Artifact) -> dict[str, Any]:
    """The scalar values of an artifact's config (TensorBoard's HParams take numbers, strings, bools)."""
    out: dict[str, Any] = {"kind": a.kind}
    for k, v in sorted(a.config.items()):
        if k.startswith("_") or k.endswith(("_dir", "_path")) or v is None:
            continue
        if isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= 100):
            out[k] = v
    return out


def _latest_jobs(registry: Registry) -> dict[str, Job]:
    """artifact id -> the newest job that produced it."""
    jobs: dict[str, Job] = {}
    for j in registry.list_jobs(limit=None):  # newest first
        if j.artifact_id and j.artifact_id not in jobs:
            jobs[j.artifact_id] = j
    return jobs


def _samples_text(a: Artifact, job: Job | None) -> str | None:
    """Markdown text of an artifact's samples, or None when it has none (yet)."""
    result = (job.result or {}) if job is not None else {}
    if a.kind == "adapter" and result.get("samples"):
        shown = json.dumps(result["samples"][:5], indent=1, ensure_ascii=False, default=str)
        return f"```\n{shown}\n```"
    if a.kind == "run" and result.get("checkpoint"):
        from scratchlab.training.trainer import sample_from_checkpoint  # torch: only for a run's sample

        try:
            text = sample_from_checkpoint(a.path, "", SAMPLE_TOKENS, 0.8, None, None, 0)
        except (ValueError, OSError, LookupError) as e:
            return f"(no sample: {e})"
        return "```\n" + text.replace("```", "'''") + "\n```"
    return None


def export_run(registry: Registry, a: Artifact, job: Job | None, logdir: Path) -> int:
    """Append an artifact's new metrics rows (and, once, its hparams and samples) to its run folder.

    Returns:
        The number of metrics rows written.
    """
    from torch.utils.tensorboard import SummaryWriter  # torch + tensorboard: heavy, only when exporting
    from torch.utils.tensorboard.summary import hparams  # as above

    folder = logdir / run_folder_name(a)
    state_path = folder / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {"last_pk": 0}
    registry.setup()
    with Session(registry.engine) as s:  # read only: the rows appended since the last export, by primary key
        q = select(MetricRow.pk, MetricRow.step, MetricRow.key, MetricRow.value)
        q = q.where(MetricRow.run_id == a.id, MetricRow.pk > state["last_pk"]).order_by(MetricRow.pk)
        rows = list(s.execute(q))
    finished = job is not None and job.status in TERMINAL
    want_hparams = not state.get("hparams")
    want_samples = finished and not state.get("samples")
    if not rows and not want_hparams and not want_samples:
        return 0
    writer = SummaryWriter(log_dir=str(folder), flush_secs=3600)
    try:
        if want_hparams:
            exp, ssi, sei = hparams(_hparams(a), {"loss/val": None, "loss/train": None})
            for summary in (exp, ssi, sei):
                writer.file_writer.add_summary(summary)
            state["hparams"] = True
        for pk, step, key, value in rows:
            writer.add_scalar(TAGS.get(key, key), value, global_step=step)
            state["last_pk"] = pk
        if want_samples:
            text = _samples_text(a, job)
            if text is not None:
                last_step = rows[-1][1] if rows else int((job.result or {}).get("step") or job.step or 0)
                writer.add_text("samples", text, global_step=last_step)
            state["samples"] = True
        writer.flush()
    finally:
        writer.close()
    atomic_write_json(state_path, state)
    return len(rows)


def export_board(workspace: Workspace, registry: Registry) -> list[str]:
    """Export every GPT run, LoRA adapter and ablation with metrics to the board folder.

    Returns:
        The TensorBoard run names (folder names) on the board, newest first.
    """
    logdir = board_dir(workspace)
    jobs = _latest_jobs(registry)
    names = []
    for kind in BOARD_KINDS:
        for a in registry.list_artifacts(kind=kind, limit=MAX_RUNS):
            export_run(registry, a, jobs.get(a.id), logdir)
            if (logdir / run_folder_name(a)).exists():
                names.append(run_folder_name(a))
    return names


def _answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - our own localhost URL
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_tensorboard(logdir: Path, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
                      log_path: Path | None = None, detach: bool = False) -> tuple[subprocess.Popen, str]:  # fmt: skip
    """Start TensorBoard on `logdir` and wait until it answers.

    Args:
        logdir: the board folder.
        port: TCP port.
        host: address to bind; the default keeps the board on this machine.
        log_path: file for TensorBoard's output (default: discarded).
        detach: start it in its own session so it outlives this process (the agent tool does).

    Returns:
        (the process, its URL).

    Raises:
        BoardError: it exited or did not answer within START_TIMEOUT_S seconds.
    """
    url = f"http://{host}:{port}/"
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", host,
           "--port", str(port), "--reload_interval", "5"]  # fmt: skip
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=detach)  # fmt: skip
    finally:
        if log_path:
            out.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(url):
        if proc.poll() is not None:
            raise BoardError(
                f"TensorBoard exited with code {proc.returncode} (port {port} busy?); see {log_path}"
            )
        if time.monotonic() > deadline:
            proc.terminate()
            raise BoardError(f"TensorBoard did not answer on {url} within {START_TIMEOUT_S:.0f}s")
        time.sleep(0.2)
    return proc, url


def running_board(workspace: Workspace) -> str | None:
    """The URL of the board serving this workspace if it still answers, else None."""
    path = board_dir(workspace) / BOARD_FILE
    if not path.exists():
        return None
    with contextlib.suppress(ValueError, KeyError, OSError):
        info = json.loads(path.read_text())
        if _answers(info["url"]):
            return info["url"]
    return None


def pick_port(preferred: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> int:
    """`preferred` if it is free on `host`, else a free port the OS picks."""
    for port in (preferred, 0):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as TensorBoard binds: TIME_WAIT is free
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise BoardError(f"no free TCP port on {host}")


def serve_board(workspace: Workspace, registry: Registry, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
                refresh_s: float = REFRESH_S, on_ready=None, max_seconds: float | None = None) -> None:  # fmt: skip
    """Export, start TensorBoard, and keep exporting new metrics every `refresh_s` seconds.

    Runs until interrupted (Ctrl-C or SIGTERM) or `max_seconds` pass; then stops TensorBoard and forgets
    the board. `on_ready(url, run_names)` is called once TensorBoard answers.

    Raises:
        BoardError: TensorBoard could not be started.
    """
    logdir = board_dir(workspace)
    names = export_board(workspace, registry)
    proc, url = start_tensorboard(logdir, port, host, log_path=logdir / "tensorboard.log")
    atomic_write_json(logdir / BOARD_FILE, {"url": url, "pid": os.getpid(), "tensorboard_pid": proc.pid})

    def on_term(signum, frame):
        raise KeyboardInterrupt

    old = (
        signal.signal(signal.SIGTERM, on_term)
        if threading.current_thread() is threading.main_thread()
        else None
    )
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        if on_ready is not None:
            on_ready(url, names)
        while deadline is None or time.monotonic() < deadline:
            time.sleep(
                refresh_s if deadline is None else max(0.0, min(refresh_s, deadline - time.monotonic()))
            )
            if proc.poll() is not None:
                raise BoardError(
                    f"TensorBoard exited with code {proc.returncode}; see {logdir / 'tensorboard.log'}"
                )
            export_board(workspace, registry)
    except KeyboardInterrupt:
        pass
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            (logdir / BOARD_FILE).unlink()
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def ensure_board(workspace: Workspace, port: int = DEFAULT_PORT) -> str:
    """The URL of the workspace's board, starting `python -m scratchlab.training.board` detached if none answers.

    Raises:
        BoardError: the board could not be started.
    """
    url = running_board(workspace)
    if url:
        return url
    logdir = board_dir(workspace)
    cmd = [
        sys.executable,
        "-m",
        "scratchlab",
        "--home",
        str(workspace.root),
        "board",
        "--port",
        str(pick_port(port)),
    ]
    with open(logdir / "board.log", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while (url := running_board(workspace)) is None:
        if proc.poll() is not None:
            raise BoardError(
                f"scratchlab board exited with code {proc.returncode}; see {logdir / 'board.log'}"
            )
        if time.monotonic() > deadline:
            proc.terminate()
            raise BoardError(
                f"the board did not start within {START_TIMEOUT_S:.0f}s; see {logdir / 'board.log'}"
            )
        time.sleep(0.3)
    return url


def stop_board(workspace: Workspace) -> bool:
    """Stop the board serving this workspace (SIGTERM; it stops its TensorBoard). True if one was signalled."""
    path = board_dir(workspace) / BOARD_FILE
    with contextlib.suppress(ValueError, KeyError, OSError):
        os.kill(int(json.loads(path.read_text())["pid"]), signal.SIGTERM)
        return True
    return False


def histories(registry: Registry, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Evaluation curves from the registry: {label: {"eval": [{"step", "train_loss", "val_loss"}]}}."""
    out: dict[str, dict[str, Any]] = {}
    for rid in run_ids:
        a = registry.get_artifact(rid)
        by_step: dict[int, dict[str, float]] = {}
        for step, key, value in registry.metrics(a.id):
            if key in ("train_loss", "val_loss"):
                by_step.setdefault(step, {})[key] = value
        ev = [{"step": s, **v} for s, v in sorted(by_step.items()) if {"train_loss", "val_loss"} <= set(v)]
        out[f"{a.name} ({a.id})"] = {"eval": ev}
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m scratchlab.training.board`: serve the board until SIGTERM or Ctrl-C."""
    p = argparse.ArgumentParser(description="Serve the lab's runs in TensorBoard (exported from lab.db).")
    p.add_argument(
        "--home", default=None, help="Workspace folder (default: $SCRATCHLAB_HOME or the user data dir)."
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port for TensorBoard.")
    p.add_argument("--host", default=DEFAULT_HOST, help="Address to bind (default: this machine only).")
    p.add_argument("--refresh", type=float, default=REFRESH_S, help="Seconds between exports of new metrics.")
    args = p.parse_args(argv)
    ws = get_workspace(args.home)

    def ready(url: str, names: list[str]) -> None:
        print(f"TensorBoard at {url} ({len(names)} runs)", flush=True)

    serve_board(ws, Registry.from_workspace(ws), args.port, args.host, args.refresh, on_ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
