"""A screenshot of the run dashboard (`scratchlab board`) in headless Chromium, for the docs (issue 18).

    .venv/bin/python benchmarks/board_screenshot.py          # -> benchmarks/results/board.png

Two GPT runs and a LoRA adapter are registered in a fresh workspace with loss curves as a training
job logs them (metrics rows: train/val loss, lr, tokens/s every 50 steps; no training is run, so the
curves are synthetic and the picture is about the dashboard, not the models), then `scratchlab board`
serves them and Chromium saves the Time Series page. The same flow is asserted in
`tests/test_board.py::test_board_page_in_headless_chromium`.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratchlab.lab.registry import Registry
from scratchlab.lab.workspace import get_workspace
from scratchlab.training import board

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=20000", "--window-size=1400,1000"]  # fmt: skip
RUNS = [("run", "shakes-2l", 2, 1.95), ("run", "shakes-4l", 4, 1.70), ("adapter", "qa-lora-r8", 2, 1.20)]


def register(reg: Registry) -> None:
    for kind, name, n_layer, floor in RUNS:
        a = reg.add_artifact(
            kind, name, "", config={"n_layer": n_layer, "lr": 1e-3, "dataset": "shakespeare"}
        )
        job = reg.create_job(kind)
        reg.update_job(job.id, artifact_id=a.id, status="done", result={})
        for i in range(1, 41):
            step = i * 50
            train = floor + 2.4 * math.exp(-step / 450) + 0.03 * math.sin(i)
            reg.log_metrics(a.id, step, train_loss=train, val_loss=train + 0.04 + step / 40000)
            lr = 1e-3 * 0.5 * (1 + math.cos(math.pi * step / 2000))
            reg.log_metrics(a.id, step, lr=lr, tokens_per_sec=9000.0 / n_layer + 50 * math.sin(i))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=RESULTS / "board.png", help="Where to save the PNG.")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (`make install` installs Debian's chromium)")
    home = Path(tempfile.mkdtemp(prefix="sl-board-")) / "home"
    ws = get_workspace(home)
    reg = Registry.from_workspace(ws)
    reg.setup()
    register(reg)
    port = board.pick_port(6006)
    proc = subprocess.Popen([sys.executable, "-m", "scratchlab", "--home", str(home), "board", "--port", str(port)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while board.running_board(ws) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("the board did not start")
            time.sleep(0.3)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        run = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={home / 'chromium'}", f"--screenshot={args.out}"]
        subprocess.run(
            [*run, f"http://127.0.0.1:{port}/#timeseries"], capture_output=True, timeout=180, check=True
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
