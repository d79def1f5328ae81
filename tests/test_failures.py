"""Honest failure messages and exit codes (issue 16, problems 5 and 7).

A full disk is simulated by making writes raise `OSError(errno.ENOSPC)` (or torch's errno-less
"file write failed" with the free space reported as zero); nothing here needs root or a small disk.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from scratchlab.cli import common
from scratchlab.cli.main import app
from scratchlab.lab import diskspace
from scratchlab.lab.job_child import FAILED_LOG_PREFIX, JOB_META_KEY, run_job_main
from scratchlab.lab.jobs import refresh_job

ENOSPC = OSError(errno.ENOSPC, "No space left on device")
TORCH_ENOSPC_END = RuntimeError(
    "basic_ios::clear: iostream error"
)  # torch.save when the zip's end does not fit
TORCH_ENOSPC = RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/3: file write failed")  # fmt: skip


@pytest.fixture
def keep_signals():
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in old.items():
        signal.signal(s, h)


def _job_in(registry, tmp_path, resume_hint="Resume it with `scratchlab gpt resume run-1`."):
    run_dir = tmp_path / "runs" / "run-1"
    run_dir.mkdir(parents=True)
    meta = {"run_dir": str(run_dir), "log": str(run_dir / "job-1.log"), "resume_hint": resume_hint}
    job = registry.create_job("gpt", config={"out_dir": str(run_dir), JOB_META_KEY: meta})
    art = registry.add_artifact("run", "r", run_dir)
    registry.update_job(job.id, artifact_id=art.id)
    return job, art, run_dir


@pytest.mark.parametrize(
    "exc", [ENOSPC, TORCH_ENOSPC, TORCH_ENOSPC_END], ids=["oserror", "torch", "torch-end"]
)
def test_job_that_runs_out_of_space_says_so_in_row_and_log(workspace, registry, tmp_path, capsys, keep_signals,
                                                            monkeypatch, exc):  # fmt: skip
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: 3 * diskspace.MB)
    job, art, run_dir = _job_in(registry, tmp_path)

    def work(config, reporter):
        raise exc

    assert run_job_main(job.id, str(workspace.root), work, {}) == 1
    job = registry.get_job(job.id)
    assert job.status == "failed"
    assert job.error.startswith(
        f"no space left on {diskspace.mount_point(run_dir)} (3 MB free, writing {run_dir})"
    )
    assert "free some MB and resume. Resume it with `scratchlab gpt resume run-1`" in job.error
    assert FAILED_LOG_PREFIX + job.error in capsys.readouterr().err
    assert registry.get_artifact(art.id).metrics["status"] == "failed"


def test_torch_write_failure_with_free_space_is_not_called_a_full_disk(workspace, registry, tmp_path, keep_signals,
                                                                       monkeypatch):  # fmt: skip
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: 50 * 1024 * diskspace.MB)
    job, _, _ = _job_in(registry, tmp_path)

    def work(config, reporter):
        raise TORCH_ENOSPC

    run_job_main(job.id, str(workspace.root), work, {})
    assert registry.get_job(job.id).error.startswith("RuntimeError: [enforce fail")


def test_job_that_could_not_record_its_failure_is_explained_from_its_log(workspace, registry, tmp_path):
    """The issue's case: the disk was full, so lab.db could not be written either, and the job was
    reported as "ended without reporting (killed or crashed)"."""
    job, _, run_dir = _job_in(registry, tmp_path)
    reason = f"no space left on / (0 MB free, writing {run_dir}): free some MB and resume"
    (run_dir / "job-1.log").write_text(f"Traceback ...\nOSError: [Errno 28]\n{FAILED_LOG_PREFIX}{reason}\n")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    registry.update_job(job.id, status="running", pid=proc.pid)
    job = refresh_job(registry, job.id)
    assert job.status == "failed" and job.error == f"the job's process (pid {proc.pid}) ended: {reason}"
    assert "killed or crashed" not in job.error


def test_job_log_with_a_raw_enospc_traceback_is_named(workspace, registry, tmp_path):
    job, _, run_dir = _job_in(registry, tmp_path)
    (run_dir / "job-1.log").write_text("sqlite3.OperationalError: database or disk is full\n")
    registry.update_job(job.id, status="running", pid=2**22 + 12345)  # no such process
    job = refresh_job(registry, job.id)
    assert "no space left on" in job.error and "Resume it with `scratchlab gpt resume run-1`" in job.error


def test_job_that_died_silently_on_a_full_disk_is_not_called_a_crash(
    workspace, registry, tmp_path, monkeypatch
):
    """Measured on a full 64 MB tmpfs: the child could not write even a traceback; its log is empty."""
    from scratchlab.lab import jobs

    job, _, run_dir = _job_in(registry, tmp_path)
    (run_dir / "job-1.log").write_text("")
    registry.update_job(job.id, status="running", pid=2**22 + 12345)  # no such process
    monkeypatch.setattr(jobs, "free_bytes", lambda path: 0)
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: 0)
    job = refresh_job(registry, job.id)
    assert job.error.startswith(
        f"the job's process (pid {2**22 + 12345}) ended without reporting, on a full disk: no space left on"
    )
    assert (
        "killed or crashed" not in job.error and "Resume it with `scratchlab gpt resume run-1`" in job.error
    )


def test_tokenizer_train_out_of_space_is_named_and_leaves_no_folder(workspace, monkeypatch, tmp_path):
    from scratchlab.models import bpe_io

    monkeypatch.setattr(common.err_console, "width", 400)
    data = tmp_path / "d.txt"
    data.write_text("hello world, hello there. " * 50)

    def full(*args, **kwargs):
        raise ENOSPC

    monkeypatch.setattr(bpe_io, "atomic_write_text", full)
    r = CliRunner().invoke(app, ["--home", str(workspace.root), "tokenizer", "train", "-i", str(data),
                                 "-v", "300", "-n", "tk", "--json"])  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "no space left on" in r.output and "train the tokenizer again" in r.output
    assert "Traceback" not in r.output and "Errno" not in r.output
    assert not (workspace.root / "tokenizers" / "tk").exists()
    r = CliRunner().invoke(app, ["--home", str(workspace.root), "tokenizer", "list"])
    assert r.exit_code == 0 and "no tokenizers yet" in r.output


def test_binary_training_text_is_refused_with_its_type(tmp_path):
    from scratchlab.datasets import DatasetError, load_text

    cases = {
        "img.txt": (b"\x89PNG\r\n\x1a\n" + os.urandom(2000), "a PNG image"),
        "ckpt.txt": (b"PK\x03\x04" + os.urandom(2000), "a zip archive"),
        "blob.txt": (b"abc\x00def" * 100, "NUL bytes"),
        "noise.txt": (bytes(range(128, 256)) * 20, "mostly invalid UTF-8"),
    }
    for name, (data, kind) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DatasetError, match=f"{name} is not text: it looks like .*{kind}"):
            load_text(tmp_path / name)
    (tmp_path / "latin.txt").write_bytes("café crème, naïve façade. ".encode("latin-1") * 40)
    assert load_text(tmp_path / "latin.txt").startswith("caf")  # a few bad bytes are still text


@pytest.fixture(scope="module")
def small_bpe():
    from scratchlab.models.bpe import train_tokenizer

    return train_tokenizer("héllo wörld, grüße 😀 and more text to merge. " * 30, 320, name="small")


@pytest.mark.parametrize(
    "text", ["\udcff", "a\ud800b", "x\udc80\udcffy", "\ud83d\ude00 joined pair", "ok \ud83d", "plain"]
)
def test_encode_replaces_surrogates_like_tiktoken(small_bpe, text):
    """`tokenizer encode` on undecodable argv bytes raised UnicodeEncodeError; tiktoken gives U+FFFD."""
    ref = small_bpe.to_tiktoken()  # tiktoken's own Encoding over the same merges
    assert small_bpe.encode(text) == ref.encode(text)
    assert small_bpe.encode_ordinary(text) == ref.encode_ordinary(text)


def test_cli_encode_of_invalid_utf8_argument(workspace, registry, small_bpe):
    small_bpe.save(workspace.dir("tokenizers") / "small")
    registry.add_artifact("tokenizer", "small", workspace.dir("tokenizers") / "small")
    r = CliRunner().invoke(app, ["--home", str(workspace.root), "tokenizer", "encode", "--json", "a\udcffb"])
    assert r.exit_code == 0, r.output
    assert small_bpe.decode(json.loads(r.output)["ids"]) == "a\ufffdb"


def test_kill_tree_never_reaps_so_the_waiter_gets_the_status():
    """The runner's wait4 thread raced kill_tree (Popen.kill -> poll -> waitpid): ChildProcessError."""
    import psutil

    from scratchlab.sandbox.runner import kill_tree

    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    kill_tree(proc)
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)
    kill_tree(proc)  # again, on a dead but unreaped process, as the run loop may
    _, status, _ = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL
    proc.returncode = -signal.SIGKILL
    kill_tree(proc)  # reaped: must not signal a pid that may be reused


def test_gpt_resume_of_a_truncated_checkpoint_fails_with_a_way_out(
    workspace, registry, tool_ctx, monkeypatch
):
    """`gpt resume` exited 0 when its job failed, and a truncated ckpt.pt said only "Invalid argument"."""
    monkeypatch.setattr(common.console, "width", 400)
    run_dir = workspace.dir("runs") / "run-1"
    run_dir.mkdir()
    (run_dir / "ckpt.pt").write_bytes(
        b"PK\x03\x04" + b"\x00" * 100
    )  # the first bytes of a torch zip, then cut
    art = registry.add_artifact("run", "cut", run_dir, config={"out_dir": str(run_dir), "dataset": "shakespeare",
                                                               "tokenizer": "char", "max_iters": 10})  # fmt: skip
    r = CliRunner().invoke(app, ["--home", str(workspace.root), "gpt", "resume", art.id, "--json"])
    assert r.exit_code == 1, r.output
    job = registry.list_jobs()[0]
    assert job.status == "failed"
    assert "is truncated or damaged" in job.error and "delete it and train the run again" in job.error


def test_database_failure_mid_command_prints_the_diagnosis_not_a_traceback(workspace, monkeypatch, capsys):
    from scratchlab.cli.main import main
    from scratchlab.lab.registry import LabDatabaseError, Registry

    def full(self, *a, **kw):
        raise LabDatabaseError(
            "The lab database lab.db could not be written: no space left on /x (0 MB free)"
        )

    monkeypatch.setattr(Registry, "list_artifacts", full)
    monkeypatch.setattr(sys, "argv", ["scratchlab", "--home", str(workspace.root), "artifacts"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error: The lab database lab.db could not be written: no space left on /x" in err
    assert "Traceback" not in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_assembling_model_weights_on_a_full_disk_says_so(tmp_path, monkeypatch):
    """Writing the 1 GB GGUF into a nearly full workspace gave a raw `OSError: [Errno 28]`."""
    import contextlib
    from pathlib import Path

    from scratchlab.models import weights

    part = tmp_path / "part"
    part.write_bytes(b"x" * (2 * 1024**2))
    monkeypatch.setitem(weights.SPECS, "tiny", weights.GGUFSpec("tiny", "tiny.gguf", ("m",), None, "Tiny"))
    monkeypatch.setattr(weights, "_part_paths", lambda spec: [part])

    @contextlib.contextmanager
    def full_disk(path):
        yield Path("/dev/full")  # every write there fails with ENOSPC

    monkeypatch.setattr(weights, "atomic_path", full_disk)
    with pytest.raises(
        weights.WeightsError, match=r"cannot assemble Tiny: no space left on .*free at least 3 MB and start"
    ):
        weights.gguf_path("tiny", tmp_path / "models")
