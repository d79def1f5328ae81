"""Write the single requests of scored eval splits into the example bank (`bank/unseen_once.jsonl`).

A split counts as unseen only for its first run; after that it is dev data, and its labelled requests
are worth more in the bank, where the action classifier learns from them, than left aside. Measured
before this file existed, from the 1.5B's recorded action scores (`benchmarks/action_scores.py`): with
each of test11-16 held out in turn and the other splits of test9-16 added to the bank, the action the
model and the prior choose (weight 2) was right on 322 of 360 requests, against 316 with the bank
alone (stop 37).

    .venv/bin/python benchmarks/bank_from_splits.py benchmarks/data/commands_test{9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29}.jsonl \
        benchmarks/data/conversations_test{9,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29}.jsonl

A conversation's turn joins as its request with its first expected action: "what's it up to?" after a
training is job_status. The bank's prior alone, each of the conversation splits test11-16 held out
in turn, named the turn's action on 260 of 273 turns with the other splits' turns in the bank, against
236 without them (`/tmp` script, stop 37; no model).

Each row keeps the request, the expected action and the literal arguments (a `{"contains": s}` match
becomes `s`; other matchers are left out), with the case id, so an evaluation of that split leaves
the request out of the bank (`Bank.exclude`). Rows are marked `"flagged": false`: a split labels no
`carry`/`lab`/`kept` flag, so these rows stay out of the flag classifiers. The one exception is a
later conversation turn whose expected numbers its request does not write (`carries`): it repeats an
earlier call, and joins as a `carry` example.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agent_conversations as conv_eval  # noqa: E402
import agent_scoring as ev  # noqa: E402

from scratchlab.agent import router  # noqa: E402
from scratchlab.agent.bank import BANK_DIR, number_contexts  # noqa: E402
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


def literal(args: dict) -> dict:
    """`literal_args` without the conversation's references to what its turns made ("@1")."""
    return {k: v for k, v in literal_args(args).items() if not (isinstance(v, str) and v.startswith("@"))
            and not (isinstance(v, list) and any(isinstance(x, str) and x.startswith("@") for x in v))}  # fmt: skip


def carries(request: str, args: dict, earlier: list[dict]) -> bool:
    """True when a later conversation turn's expected arguments hold a number its request does not
    write, while no earlier turn kept a memory: the turn repeats an earlier call's settings ("now a
    regular GPT with identical dimensions, 150 steps" after an ablation of 1 layer, 2 heads, 32 wide).
    With a `remember` before it, such a number may be a kept preference instead, so no label."""
    if not earlier or any(e.get("action") == "remember" for e in earlier):
        return False
    text = router.normalise_request(request)
    said = router.numbers_in(text) | {v for v, _ in number_contexts(text)}  # "one-block" says 1
    values = [v for v in args.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    unsaid = [v for v in values if float(v) not in said]
    return len(unsaid) >= 2 or any(v != 0 for v in unsaid)  # a lone 0 is a gloss ("greedy"), no repeat


def rows(paths: list[Path]) -> list[dict]:
    """Bank rows from single-request files and conversation files (`conversations_*.jsonl`: a turn
    is a request labelled with its first expected action, its id `agent_conversations.turn_ids`)."""
    out = []
    for path in paths:
        carried = set()
        if path.name.startswith("conversations"):
            labelled = []
            for conv in conv_eval.load_conversations(path):
                earlier: list[dict] = []
                for tid, turn in zip(conv_eval.turn_ids(conv), conv["turns"], strict=True):
                    first = turn["expect"][0] if isinstance(turn["expect"], list) else turn["expect"]
                    labelled.append((tid, turn["user"], first))
                    if carries(turn["user"], literal(first.get("args", {})), earlier):
                        carried.add(tid)
                    earlier.append(first)
        else:
            labelled = [(c["id"], c["request"], c["expected"]) for c in ev.load_cases(path, split="all")]
        for cid, request, expected in labelled:
            row = {"id": cid, "request": request, "action": expected["action"]}
            if args := literal(expected.get("args", {})):
                row["args"] = args
            # a derived repeat teaches the carry flag (and, as a negative, lab and kept); others no flag
            out.append({**row, "carry": True} if cid in carried else {**row, "flagged": False})
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
