"""Where a local model's decision time goes: choosing the tool name vs decoding its arguments, with
jump-forward decoding of the arguments off and on.

    SCRATCHLAB_HOME=H python benchmarks/decision_split.py local:0.5b local:1.5b    # -> results/decision_split.md

Runs the first 13 requests of commands_test10.jsonl (its `command` category) as dry runs after one warm
turn, and times `ChatLocalLlama._choose` (the tool name, scored with the bank's prior) and `_complete`
(the arguments under the schema's grammar) inside each decision. Each model runs twice in one process,
first with jump-forward decoding and the request as a draft off (`router.args_forcing` and
`copy_draft` replaced by "never"), then on; the
calls of the two runs are compared (jump-forward should not change them). Run it alone on an idle
machine; the load average is recorded.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from scratchlab.lab.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parent
N = 13


def split(spec: str, jump_forward: bool) -> dict[str, Any]:
    from scratchlab.agent import local_chat, router
    from scratchlab.agent.llm import get_chat_model
    from scratchlab.agent.local_chat import ChatLocalLlama
    from scratchlab.agent.session import LabSession

    spent = {"_choose": 0.0, "_complete": 0.0}
    originals = {name: getattr(ChatLocalLlama, name) for name in spent}

    def timed(name):
        def run(self, *a, **k):
            t = time.perf_counter()
            try:
                return originals[name](self, *a, **k)
            finally:
                spent[name] += time.perf_counter() - t

        return run

    for name in spent:
        setattr(ChatLocalLlama, name, timed(name))
    forcing, drafting = router.args_forcing, local_chat.copy_draft
    if not jump_forward:
        router.args_forcing = local_chat.copy_draft = lambda *a, **k: lambda text: ""
    try:
        reqs = [json.loads(line)["request"] for line in open(ROOT / "data" / "commands_test10.jsonl")][:N]
        session = LabSession(home=os.environ.get("SCRATCHLAB_HOME"), model=get_chat_model(spec, n_threads=2),
                             auto_confirm=True)  # fmt: skip
        session.ask("hi", dry_run=True)  # loads the model and the catalogue state
        spent.update({k: 0.0 for k in spent})
        turns = [session.ask(r, dry_run=True) for r in reqs]
        session.close()
    finally:
        router.args_forcing, local_chat.copy_draft = forcing, drafting
        for name, fn in originals.items():
            setattr(ChatLocalLlama, name, fn)
    total = sum(t["decision_seconds"] for t in turns)
    return {"decisions_s": round(total, 1), "tool_name_s": round(spent["_choose"], 1),
            "arguments_s": round(spent["_complete"], 1), "calls": [t["tool_calls"] for t in turns]}  # fmt: skip


def main(argv: list[str]) -> int:
    rows, same = [], []
    for spec in argv or ["local:0.5b", "local:1.5b"]:
        calls = []
        for jump in (False, True):
            before = os.getloadavg()[0]
            r = split(spec, jump)
            calls.append(r["calls"])
            rows.append(f"| {spec} | {'on' if jump else 'off'} | {r['decisions_s']} | {r['tool_name_s']} | {r['arguments_s']} | "
                        f"{r['arguments_s'] / max(r['decisions_s'], 1e-9):.0%} | {before:.2f} -> {os.getloadavg()[0]:.2f} |")  # fmt: skip
            print(rows[-1], flush=True)
        differ = [i for i, (a, b) in enumerate(zip(*calls, strict=True)) if a != b]
        same.append(f"- {spec}: {N - len(differ)} of {N} decisions made the same calls with jump-forward on"
                    + "".join(f"; #{i}: {json.dumps(calls[0][i])} -> {json.dumps(calls[1][i])}" for i in differ))  # fmt: skip
    text = "\n".join([
        f"# Decision time split ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
        f"{N} commands of commands_test10.jsonl, dry runs, llama.cpp 2 threads, seconds summed over the {N}.", "",
        "| model | jump-forward | decisions | tool name | arguments | arguments share | load (1 min) |",
        "|---|---|---|---|---|---|---|", *rows, "", *same, "", "Command: `python benchmarks/decision_split.py " + " ".join(argv) + "`", "",
    ])  # fmt: skip
    atomic_write_text(ROOT / "results" / "decision_split.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
