"""Write the single requests of scored eval splits into the example bank (`bank/unseen_once.jsonl`).

A split counts as unseen only for its first run; after that it is dev data, and its labelled requests
are worth more in the bank, where the action classifier learns from them, than left aside. Measured
before this file existed, from the 1.5B's recorded action scores (`benchmarks/action_scores.py`): with
each of test11-16 held out in turn and the other splits of test9-16 added to the bank, the action the
model and the prior choose (weight 2) was right on 322 of 360 requests, against 316 with the bank
alone (stop 37).

    .venv/bin/python benchmarks/bank_from_splits.py benchmarks/data/commands_test{9,10,11,12,13,14,15,16}.jsonl

Each row keeps the request, the expected action and the literal arguments (a `{"contains": s}` match
becomes `s`; other matchers are left out), with the case id, so an evaluation of that split leaves
the request out of the bank (`Bank.exclude`). Rows are marked `"flagged": false`: a split labels no
`carry`/`lab`/`kept` flag, so these rows stay out of the flag classifiers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agent_scoring as ev  # noqa: E402

from scratchlab.agent.bank import BANK_DIR  # noqa: E402
from scratchlab.lab.atomic import atomic_write_text  # noqa: E402

OUT = BANK_DIR / "unseen_once.jsonl"


def literal_args(args: dict) -> dict:
    """The expected arguments a request states as values: literals, and the text of a `contains` match."""
    out = {}
    for k, v in (args or {}).items():
        if isinstance(v, dict):
            if isinstance(v.get("contains"), str):
                out[k] = v["contains"]
        elif not (isinstance(v, list) and any(isinstance(x, dict) for x in v)):
            out[k] = v
    return out


def rows(paths: list[Path]) -> list[dict]:
    out = []
    for path in paths:
        for case in ev.load_cases(path, split="all"):
            row = {"id": case["id"], "request": case["request"], "action": case["expected"]["action"]}
            if args := literal_args(case["expected"].get("args", {})):
                row["args"] = args
            out.append({**row, "flagged": False})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("splits", nargs="+", type=Path, help="scored split files (commands_testN.jsonl)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    out = rows(args.splits)
    ids = [r["id"] for r in out]
    if len(set(ids)) != len(ids):
        raise SystemExit("two cases share an id; give each split file once")
    atomic_write_text(args.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out))
    print(f"{len(out)} requests from {len(args.splits)} splits -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
