"""`scratchlab ask` latency: the first call (no server) against the second (attached to a server), issue 18.

    .venv/bin/python benchmarks/ask_latency.py --models-dir ~/.local/share/scratchlab/models
    .venv/bin/python benchmarks/ask_latency.py --models-dir /path/to/models --model local:0.5b --n 5

Wall time of the whole command, process start included, of `scratchlab --model M ask --dry-run --json Q`
(`--dry-run` stops once the agent has chosen its action: the command's end is the decision), each on a
new thread, in a fresh workspace whose `models/` links to `--models-dir` (the GGUF and its saved prompt
state). Rows, each `--n` times:
1. no server: every ask loads the model (`SCRATCHLAB_NO_SERVER=1`);
2. `ask --keep-alive` with no server running (it starts a detached `scratchlab serve` and asks through
   it), then the second ask right after it (attached); the server is stopped between repetitions;
3. `scratchlab serve` already running and warm: the ask attaches;
4. process start alone (`scratchlab --help`), and the client's import time (`python -X importtime`).
Run it alone on an idle machine: the load average before and after is recorded.
Results: benchmarks/results/ask_latency.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]
QUESTION = "list my runs"
SERVE_WAIT_S = 600


def make_home(models_dir: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="sl-ask-")) / "home"
    home.mkdir()
    (home / "models").symlink_to(models_dir.resolve())
    return home


def env_for(home: Path, model: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "SCRATCHLAB_HOME": str(home), "SCRATCHLAB_MODEL": model, "PYTHONPATH": str(REPO)}
    env.pop("SCRATCHLAB_NO_SERVER", None)
    env.update(extra)
    return env


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of `cmd` (it must succeed)."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=SERVE_WAIT_S)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return seconds


def ask_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "scratchlab", "ask", "--dry-run", "--json", *extra, QUESTION]


def stop_server(home: Path) -> None:
    """SIGTERM the workspace's server and wait until it has removed serve.json."""
    path = home / "serve.json"
    if not path.exists():
        return
    pid = json.loads(path.read_text())["pid"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def wait_for_server(home: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVE_WAIT_S
    while not (home / "serve.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"scratchlab serve did not start: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)


def client_import_s(env: dict[str, str]) -> float:
    """Cumulative import time of `scratchlab.cli.main` (seconds), from `python -X importtime`."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import scratchlab.cli.main"], env=env,
                       capture_output=True, text=True, check=True)  # fmt: skip
    for line in r.stderr.splitlines():
        if line.rstrip().endswith("| scratchlab.cli.main"):
            return int(line.split("|")[1]) / 1e6
    raise RuntimeError("scratchlab.cli.main not in the importtime output")


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models-dir", type=Path, required=True, help="Folder with the GGUF (workspace models/)."
    )
    ap.add_argument("--model", default="local:1.5b", help="Model spec (local:1.5b, local:0.5b, ...).")
    ap.add_argument("--n", type=int, default=5, help="Repetitions per row (the table gives the median).")
    args = ap.parse_args()
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    home = make_home(args.models_dir)
    rows: dict[str, list[float]] = {}

    # 1. no server: each ask loads the model
    env = env_for(home, args.model, SCRATCHLAB_NO_SERVER="1")
    timed(ask_cmd(), env)  # once untimed: registry, bank and prompt-state caches as a user would have them
    rows["no server: every ask loads the model (first call)"] = [timed(ask_cmd(), env) for _ in range(args.n)]

    # 2. ask --keep-alive (starts the server) then the second ask, attached
    env = env_for(home, args.model)
    first, second = [], []
    for _ in range(args.n):
        stop_server(home)
        first.append(timed(ask_cmd("--keep-alive"), env))
        second.append(timed(ask_cmd(), env))
    stop_server(home)
    rows["`ask --keep-alive`, no server yet (starts one: first call)"] = first
    rows["the ask right after it (attached: second call)"] = second

    # 3. `scratchlab serve` running and warm
    proc = subprocess.Popen([sys.executable, "-m", "scratchlab", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for_server(home, proc)
        timed(ask_cmd(), env)  # the server's first turn
        rows["`scratchlab serve` running and warm (attached)"] = [
            timed(ask_cmd(), env) for _ in range(args.n)
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    # 4. process start alone
    rows["process start only (`scratchlab --help`)"] = [
        timed([sys.executable, "-m", "scratchlab", "--help"], env) for _ in range(args.n)
    ]
    imports = med([client_import_s(env) for _ in range(args.n)])
    load_after = os.getloadavg()

    result = {
        "started": started, "model": args.model, "n": args.n, "question": QUESTION,
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "load_before": load_before, "load_after": load_after, "client_import_s": imports,
        "rows": {k: {"runs": v, "median": med(v)} for k, v in rows.items()},
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ask_latency.json").write_text(json.dumps(result, indent=2))
    runs = " | ".join(f"run {i + 1}" for i in range(args.n))
    lines = [
        "# `scratchlab ask`: first call (no server) and second call (attached to a server), issue 18\n",
        f"{started}, {result['machine']}, model {args.model}, load average before "
        f"{', '.join(f'{x:.2f}' for x in load_before)} and after {', '.join(f'{x:.2f}' for x in load_after)}. "
        f'Wall time of `scratchlab ask --dry-run --json "{QUESTION}"` (the command ends at the decision), '
        "process start included, each on a new thread. Produced by "
        f"`python benchmarks/ask_latency.py --models-dir DIR --model {args.model} --n {args.n}`.\n",
        f"| call | {runs} | median |",
        "|---|" + "---:|" * (args.n + 1),
    ]
    for name, v in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{x:.2f} s" for x in v) + f" | **{med(v):.2f} s** |")
    second_med = med(rows["the ask right after it (attached: second call)"])
    lines += [
        "",
        f"Client import time (`python -X importtime -c 'import scratchlab.cli.main'`, median): {imports:.2f} s; "
        "an attached ask imports neither torch, LangGraph, llama_cpp nor SQLAlchemy.",
        f"Target (issue 18): the second ask in a row reaches its decision in <= 3 s, process start included: "
        f"{'met' if second_med <= 3 else 'NOT met'} ({second_med:.2f} s median).",
    ]
    (RESULTS / "ask_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
