"""Background jobs: start/wait, progress + metrics rows, cancel keeps a checkpoint, SIGKILL -> failed -> resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scratchlab.lab.job_child import JobReporter, run_job_main
from scratchlab.lab.jobs import (
    cancel_job,
    list_jobs,
    read_log,
    refresh_job,
    start_job,
    wait_for_job,
)
from scratchlab.training.data import prepare_dataset
from scratchlab.training.trainer import load_checkpoint

TEXT = "".join(
    f"All the world's a stage, and all the men and women merely players {i % 5}.\n" for i in range(200)
)
MODULE = "scratchlab.training.trainer"


@pytest.fixture
def data_dir(tmp_path):
    src = tmp_path / "c.txt"
    src.write_text(TEXT)
    prepare_dataset(str(src), "char", tmp_path / "data")
    return str(tmp_path / "data")


def conf(data_dir, out, **kw):
    return {"out_dir": str(out), "data_dir": data_dir, "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16,
            "batch_size": 4, "max_iters": 30, "eval_interval": 10, "eval_iters": 1, "log_interval": 1,
            "num_threads": 1, **kw}  # fmt: skip


def wait_until(pred, timeout=90.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_job_runs_to_done_with_progress_and_metrics(workspace, registry, data_dir):
    run = registry.add_artifact("run", "j1", "")
    seen = []
    job = start_job(workspace, registry, "gpt", MODULE, conf(data_dir, workspace.root / "runs" / "r1"),
                    artifact_id=run.id, total=30)  # fmt: skip
    assert job.status == "queued" and job.pid
    job = wait_for_job(registry, job.id, on_progress=seen.append, poll_s=0.1, timeout=120)
    assert job.status == "done", read_log(job)
    assert job.result["step"] == 30 and job.result["status"] == "done"
    assert job.started_at and job.ended_at and job.step == 30
    assert seen and seen[-1].status == "done"
    keys = {k for _, k, _ in registry.metrics(run.id)}
    assert {"val_loss", "train_loss", "loss"} <= keys
    art = registry.get_artifact(run.id)
    assert art.metrics["status"] == "done" and art.metrics["val_loss"] == pytest.approx(
        job.result["val_loss"]
    )
    assert Path(workspace.root / "runs" / "r1" / f"{job.id}.log").exists()


@pytest.mark.slow
def test_cancel_stops_cleanly_and_keeps_checkpoint(workspace, registry, data_dir):
    out = workspace.root / "runs" / "r2"
    job = start_job(
        workspace, registry, "gpt", MODULE, conf(data_dir, out, max_iters=100000, eval_interval=50)
    )
    assert wait_until(lambda: registry.get_job(job.id).step >= 60), read_log(registry.get_job(job.id))
    job = cancel_job(registry, job.id, timeout=60)
    assert job.status == "cancelled", (job.error, read_log(job))
    step = job.result["step"]
    assert step >= 60
    assert load_checkpoint(out / "ckpt.pt")["step"] == step  # saved at the stop, not only at the last eval
    assert cancel_job(registry, job.id).status == "cancelled"  # idempotent


@pytest.mark.slow
def test_sigkilled_job_is_detected_and_resumes(workspace, registry, data_dir):
    out = workspace.root / "runs" / "r3"
    c = conf(data_dir, out, max_iters=100000, eval_interval=20)
    job = start_job(workspace, registry, "gpt", MODULE, c)
    assert wait_until(lambda: (out / "ckpt.pt").exists() and registry.get_job(job.id).step >= 45)
    os.killpg(job.pid, signal.SIGKILL)
    job = wait_for_job(registry, job.id, poll_s=0.1, timeout=30)
    assert job.status == "failed" and "killed or crashed" in job.error
    saved = load_checkpoint(out / "ckpt.pt")["step"]
    assert saved >= 40 and saved % 20 == 0
    resumed = start_job(workspace, registry, "gpt", MODULE, {**c, "max_iters": saved + 10, "resume": True})
    resumed = wait_for_job(registry, resumed.id, poll_s=0.1, timeout=120)
    assert resumed.status == "done", read_log(resumed)
    assert resumed.result["step"] == saved + 10


def test_job_that_cannot_start_is_marked_failed(workspace, registry, tmp_path):
    job = start_job(workspace, registry, "gpt", "scratchlab.no_such_module", {"out_dir": str(tmp_path / "x")})
    job = wait_for_job(registry, job.id, poll_s=0.1, timeout=60)
    assert job.status == "failed" and "ended without reporting" in job.error
    assert "No module named" in read_log(job)


def test_failing_work_records_error_and_traceback(workspace, registry, capsys):
    job = registry.create_job("demo", config={})
    art = registry.add_artifact("run", "boom", "")
    registry.update_job(job.id, artifact_id=art.id)

    def work(config, reporter):
        raise ValueError("dataset 'missing.txt' not found")

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert run_job_main(job.id, str(workspace.root), work, {}) == 1
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    job = registry.get_job(job.id)
    assert job.status == "failed" and "missing.txt" in job.error
    assert "Traceback" in capsys.readouterr().err
    assert registry.get_artifact(art.id).metrics["status"] == "failed"


def test_dead_job_without_process_is_marked_failed(registry):
    job = registry.create_job("gpt", config={})
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    proc_pid = proc.pid
    registry.update_job(job.id, status="running", pid=proc_pid)
    job = refresh_job(registry, job.id)
    assert job.status == "failed" and str(proc_pid) in job.error
    assert [j.id for j in list_jobs(registry)] == [job.id]


def test_reporter_and_run_job_main_in_process(workspace, registry):
    job = registry.create_job("demo", config={})

    def work(config, reporter):
        assert isinstance(reporter, JobReporter)
        reporter.update(1, 2, "half", loss=1.5)
        reporter.stop_requested = True
        return {"status": "cancelled", "x": config["x"]}

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert run_job_main(job.id, str(workspace.root), work, {"x": 3}) == 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    job = registry.get_job(job.id)
    assert job.status == "cancelled" and job.result == {"status": "cancelled", "x": 3}
    assert registry.metrics(job.id) == [(1, "loss", 1.5)]
