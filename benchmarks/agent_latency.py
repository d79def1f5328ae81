"""Agent latency on the local models: time to first token and whole-turn latency.

    .venv/bin/python benchmarks/agent_latency.py                 # both models, 10 warm turns each
    .venv/bin/python benchmarks/agent_latency.py --models 0.5b --n 5

For each model: a cold turn in a fresh process (model load + system prompt, with and without the saved
prompt state), then `--n` warm turns of a tool-using request (list_artifacts -> result -> answer) and of a
chit-chat request, each in a new thread. Reports medians. Results: benchmarks/results/agent_latency.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TOOL_REQUEST = "what have I built so far?"
CHAT_REQUEST = "hi, what can you do?"


def make_home(models_dir: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="sl-bench-"))
    (home / "models").symlink_to(models_dir)
    return home


def med(xs: list) -> float | None:
    """Median of the non-None values, or None."""
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if vals else None


def timed_turn(lab, text: str) -> dict:
    from scratchlab.agent.memory import new_thread_id

    t0 = time.perf_counter()
    first_event = first_token = None
    calls = []
    for kind, data in lab.stream(text, new_thread_id()):
        now = time.perf_counter() - t0
        first_event = first_event if first_event is not None else now
        if kind == "token" and first_token is None:
            first_token = now
        if kind == "tool_call":
            calls.append(data["name"])
    return {
        "seconds": time.perf_counter() - t0,
        "first_event_s": first_event,
        "first_token_s": first_token,
        "tool_calls": calls,
    }


def child(model: str, home: str, n: int, clear_state: bool) -> dict:
    from scratchlab.agent.session import LabSession

    if clear_state:
        for f in Path(home, "models").glob("prefix-*.npz"):
            f.unlink()
    t0 = time.perf_counter()
    lab = LabSession(home=home, model=f"local:{model}", auto_confirm=True)
    _ = lab.model.llm  # load weights
    load_s = time.perf_counter() - t0
    cold = timed_turn(lab, TOOL_REQUEST)
    out = {
        "model": model,
        "load_s": load_s,
        "cold_turn": cold,
        "cold_total_s": load_s + cold["seconds"],
        "state_cleared": clear_state,
    }
    if n:
        tool = [timed_turn(lab, TOOL_REQUEST) for _ in range(n)]
        chat = [timed_turn(lab, CHAT_REQUEST) for _ in range(n)]
        out["warm_tool_turn_median_s"] = med([t["seconds"] for t in tool])
        out["warm_tool_first_token_median_s"] = med([t["first_token_s"] for t in tool])
        out["warm_tool_first_event_median_s"] = med([t["first_event_s"] for t in tool])
        out["warm_chat_turn_median_s"] = med([t["seconds"] for t in chat])
        out["warm_chat_first_token_median_s"] = med([t["first_token_s"] for t in chat])
        out["tool_calls_seen"] = sorted({c for t in tool for c in t["tool_calls"]})
        out["warm_tool_turns"] = tool
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["0.5b", "1.5b"], help="local model keys")
    ap.add_argument("--n", type=int, default=10, help="warm turns per request kind")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--home", help=argparse.SUPPRESS)
    ap.add_argument("--clear-state", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.models[0], args.home, args.n, args.clear_state)))
        return
    from scratchlab.lab.workspace import get_workspace

    models_dir = get_workspace().dir("models")
    results = {"loadavg_start": os.getloadavg(), "cpu_count": os.cpu_count(), "models": {}}
    for m in args.models:
        home = make_home(models_dir)
        runs = {}
        for label, clear, n in (
            ("cold_no_saved_state", True, 0),
            ("cold_saved_state_and_warm", False, args.n),
        ):
            cmd = [sys.executable, __file__, "--child", "--models", m, "--home", str(home), "--n", str(n)]
            if clear:
                cmd.append("--clear-state")
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[label] = json.loads(proc.stdout.strip().splitlines()[-1])
        results["models"][m] = runs
        print(
            m,
            json.dumps(
                {k: v for k, v in runs["cold_saved_state_and_warm"].items() if k != "warm_tool_turns"}
            ),
            flush=True,
        )
    results["loadavg_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "agent_latency.json").write_text(json.dumps(results, indent=2))
    lines = ["# Agent latency (local models, this machine)", "",
             f"cores: {results['cpu_count']}, load average at start {results['loadavg_start']}", "",
             "| model | cold, no saved state (s) | cold, saved state (s) | warm tool turn median (s) | warm tool first token (s) | warm chat turn median (s) | warm chat first token (s) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip

    def fmt(x):
        return f"{x:.2f}" if isinstance(x, float) else "-"

    for m, runs in results["models"].items():
        w = runs["cold_saved_state_and_warm"]
        lines.append(
            f"| {m} | {fmt(runs['cold_no_saved_state']['cold_total_s'])} | {fmt(w['cold_total_s'])} | "
            f"{fmt(w.get('warm_tool_turn_median_s'))} | {fmt(w.get('warm_tool_first_token_median_s'))} | "
            f"{fmt(w.get('warm_chat_turn_median_s'))} | {fmt(w.get('warm_chat_first_token_median_s'))} |"
        )
    lines += [
        "",
        f"tool request: {TOOL_REQUEST!r}; chat request: {CHAT_REQUEST!r}; n={args.n} warm turns each.",
    ]
    (RESULTS / "agent_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
