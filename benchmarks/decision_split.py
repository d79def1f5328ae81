"""Where a local model's decision time goes (choosing the tool name vs decoding its arguments), and
what jump-forward decoding of the arguments saves.

    SCRATCHLAB_HOME=H python benchmarks/decision_split.py local:1.5b [N]    # -> results/decision_split.md

Runs the first N (default 24) requests of commands_test14.jsonl whose expected action is a tool with
JSON arguments, as dry runs after one warm turn, each request once with jump-forward decoding off
(`router.args_forcing` replaced by "never forced") and once on, in alternating order so that load
drifts hit both alike. Times `ChatLocalLlama._choose` (the tool name, scored with the bank's prior)
and `_complete` (the arguments under the schema's grammar) inside each decision, and checks that
both modes made the same calls. Run it alone on an idle machine; the load average is recorded.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from scratchlab.lab.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parent
MODES = ("off", "on")


def measure(spec: str, n: int) -> dict[str, dict[str, float]]:
    from scratchlab.agent import router
    from scratchlab.agent.llm import get_chat_model
    from scratchlab.agent.local_chat import ChatLocalLlama
    from scratchlab.agent.session import LabSession

    spent = {"_choose": 0.0, "_complete": 0.0}
    originals = {name: getattr(ChatLocalLlama, name) for name in spent}
    forcing = router.args_forcing

    def timed(name):
        def run(self, *a, **k):
            t = time.perf_counter()
            try:
                return originals[name](self, *a, **k)
            finally:
                spent[name] += time.perf_counter() - t

        return run

    cases = [json.loads(line) for line in open(ROOT / "data" / "commands_test14.jsonl")]
    reqs = [
        c["request"] for c in cases if c["expected"]["action"] not in ("answer", "clarify", "run_python")
    ][:n]
    totals = {m: {"decisions_s": 0.0, "tool_name_s": 0.0, "arguments_s": 0.0} for m in MODES}
    calls: dict[str, list] = {m: [] for m in MODES}
    for name in spent:
        setattr(ChatLocalLlama, name, timed(name))
    try:
        session = LabSession(home=os.environ.get("SCRATCHLAB_HOME"), model=get_chat_model(spec, n_threads=2),
                             auto_confirm=True)  # fmt: skip
        session.ask("hi", dry_run=True)  # loads the model and the catalogue state
        for i, req in enumerate(reqs):
            for mode in MODES[i % 2 :] + MODES[: i % 2]:
                router.args_forcing = forcing if mode == "on" else (lambda *a, **k: lambda text: "")
                spent.update({k: 0.0 for k in spent})
                turn = session.ask(req, dry_run=True)
                totals[mode]["decisions_s"] += turn["decision_seconds"]
                totals[mode]["tool_name_s"] += spent["_choose"]
                totals[mode]["arguments_s"] += spent["_complete"]
                calls[mode].append(turn["tool_calls"])
        session.close()
    finally:
        router.args_forcing = forcing
        for name, fn in originals.items():
            setattr(ChatLocalLlama, name, fn)
    same = sum(a == b for a, b in zip(calls["off"], calls["on"], strict=True))
    return {
        "n": len(reqs),
        "same": same,
        **{m: {k: round(v, 1) for k, v in totals[m].items()} for m in MODES},
    }


def main(argv: list[str]) -> int:
    spec = argv[0] if argv else "local:1.5b"
    n = int(argv[1]) if len(argv) > 1 else 24
    before = os.getloadavg()
    r = measure(spec, n)
    after = os.getloadavg()
    rows = [f"| {spec} | {m} | {r[m]['decisions_s']} | {r[m]['tool_name_s']} | {r[m]['arguments_s']} | "
            f"{r[m]['arguments_s'] / max(r[m]['decisions_s'], 1e-9):.0%} |" for m in MODES]  # fmt: skip
    saved = 1 - r["on"]["arguments_s"] / max(r["off"]["arguments_s"], 1e-9)
    text = "\n".join([
        f"# Decision time split ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
        f"The first {r['n']} tool requests of commands_test14.jsonl, dry runs, llama.cpp 2 threads, seconds summed; "
        "each request once per mode, in alternating order.", "",
        "| model | jump-forward | decisions | tool name | arguments | arguments share |", "|---|---|---|---|---|---|",
        *rows, "",
        f"Jump-forward saved {saved:.0%} of the argument time; {r['same']} of {r['n']} decisions made the same calls "
        f"both ways. Load average before {before[0]:.2f}, after {after[0]:.2f}.", "",
        f"Command: `python benchmarks/decision_split.py {spec} {n}`", "",
    ])  # fmt: skip
    print(text)
    atomic_write_text(ROOT / "results" / "decision_split.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
