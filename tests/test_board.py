"""The run dashboard: registry metrics -> TensorBoard event files, the show_curves tool, and the page
itself in headless Chromium (run names in the DOM, a screenshot)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from scratchlab.lab.registry import Registry  # noqa: E402
from scratchlab.training import board  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=15000", "--window-size=1400,900"]  # fmt: skip


def _fake_run(reg: Registry, name: str, kind: str = "run", steps: int = 3, status: str = "done"):
    """An artifact with a finished job and eval metrics rows, as a training job leaves them."""
    a = reg.add_artifact(kind, name, "", config={"n_layer": 2, "lr": 1e-3, "dataset": "shakespeare"})
    job = reg.create_job(kind)
    result = {"samples": [{"prompt": "Q", "after": "A"}]} if kind == "adapter" else {}
    reg.update_job(job.id, artifact_id=a.id, status=status, result=result)
    for i in range(1, steps + 1):
        reg.log_metrics(a.id, i * 10, train_loss=4.0 - i * 0.5, val_loss=4.1 - i * 0.5)
        reg.log_metrics(a.id, i * 10, lr=1e-3, tokens_per_sec=1000.0 + i)
    return a


def _events(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_export_scalars_hparams_samples_incrementally(workspace, registry):
    run = _fake_run(registry, "tiny-a")
    adapter = _fake_run(registry, "qa-r4", kind="adapter", steps=2)
    names = board.export_board(workspace, registry)
    assert names == ["run-1_tiny-a", "adapter-2_qa-r4"]

    acc = _events(board.board_dir(workspace) / "run-1_tiny-a")
    tags = set(acc.Tags()["scalars"])
    assert {"loss/train", "loss/val", "lr", "tokens_per_sec"} <= tags
    assert [(e.step, round(e.value, 3)) for e in acc.Scalars("loss/val")] == [(10, 3.6), (20, 3.1), (30, 2.6)]
    plugins = acc.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in plugins and "_hparams_/session_start_info" in plugins
    start = plugins["_hparams_/session_start_info"]
    assert b"n_layer" in start and b"shakespeare" in start

    text = _events(board.board_dir(workspace) / "adapter-2_qa-r4").Tensors("samples/text_summary")
    assert "after" in text[0].tensor_proto.string_val[0].decode()

    # a second export writes only the rows logged since the first
    registry.log_metrics(run.id, 40, val_loss=2.0)
    board.export_board(workspace, registry)
    vals = [
        (e.step, round(e.value, 3))
        for e in _events(board.board_dir(workspace) / "run-1_tiny-a").Scalars("loss/val")
    ]
    assert vals == [(10, 3.6), (20, 3.1), (30, 2.6), (40, 2.0)]
    assert json.loads((board.board_dir(workspace) / "adapter-2_qa-r4" / board.STATE_FILE).read_text())[
        "samples"
    ]
    assert adapter.id == "adapter-2"


def test_show_curves_tool_gives_url_and_png(tool_ctx, registry, monkeypatch):
    from scratchlab.tools.board import make_tools

    (show_curves,) = make_tools(tool_ctx)
    assert show_curves.invoke({}).startswith("Error: no runs with logged losses yet")
    _fake_run(registry, "tiny-a")
    _fake_run(registry, "tiny-b")
    monkeypatch.setattr(board, "ensure_board", lambda ws, port=board.DEFAULT_PORT: "http://127.0.0.1:6006/")
    out = show_curves.invoke({})
    assert out.startswith("Dashboard: http://127.0.0.1:6006/ (2 runs)")
    assert "tiny-b (run-2), tiny-a (run-1)" in out
    png = Path(out.split("dashed): ")[1].split(" (")[0])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert registry.get_artifact("curves-run-2-run-1", kind="plot").path == str(png)
    assert "Error: at most" in show_curves.invoke({"runs": [f"run-{i}" for i in range(9)]})


@pytest.mark.slow
def test_board_page_in_headless_chromium(workspace, registry, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (`make install` installs Debian's chromium)")
    _fake_run(registry, "shakes-2l")
    _fake_run(registry, "shakes-4l")
    port = board.pick_port(6006)
    proc = subprocess.Popen([sys.executable, "-m", "scratchlab", "--home", str(workspace.root), "board",
                             "--port", str(port), "--refresh", "2"], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while board.running_board(workspace) is None:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the board did not start"
            time.sleep(0.3)
        url = f"http://127.0.0.1:{port}/#timeseries"
        assert board.running_board(workspace) == f"http://127.0.0.1:{port}/"
        profile = tmp_path / "chromium-profile"
        run = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        # TensorBoard lists the runs first and draws their tag cards later (its loader reads the event
        # files on its own schedule): a busy machine can dump the page between the two, so try again
        for _ in range(4):
            dom = subprocess.run(
                [*run, "--dump-dom", url], capture_output=True, text=True, timeout=120
            ).stdout
            if "loss/val" in dom:
                break
            time.sleep(5)
        assert "run-1_shakes-2l" in dom and "run-2_shakes-4l" in dom
        assert "loss/val" in dom
        shot = tmp_path / "board.png"
        subprocess.run([*run, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not (board.board_dir(workspace) / board.BOARD_FILE).exists(), "the board forgets itself on exit"


def test_cli_export_only_lists_the_runs(workspace, registry):
    _fake_run(registry, "tiny-a")
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCRATCHLAB_HOME": str(workspace.root)}
    r = subprocess.run([sys.executable, "-m", "scratchlab", "board", "--export-only"], capture_output=True,
                       text=True, env=env, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "run-1_tiny-a" in r.stdout
    assert any((board.board_dir(workspace) / "run-1_tiny-a").glob("events.out.tfevents.*"))
    r = subprocess.run([sys.executable, "-m", "scratchlab", "board", "--stop"], capture_output=True, text=True,
                       env=env, timeout=120)  # fmt: skip
    assert r.returncode == 0 and "no board is running" in r.stdout
