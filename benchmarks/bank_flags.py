"""The bank's flags (`carry`: the request repeats an earlier call; `lab`: it asks about the lab's
records) on dev conversation turns: the old neighbour vote against the classifier `Bank.flag` uses.

    .venv/bin/python benchmarks/bank_flags.py          # writes benchmarks/results/bank_flags.{md,json}

Labels come from the conversation files' expectations, not from the bank:
- a tool turn repeats an earlier call when its expected arguments keep a value of the last expected
  call of the same tool that the turn's own words do not state;
- a turn expecting `answer` is a question about the lab (every answer turn in these files asks about
  runs, tokenizers, adapters or results).
The neighbour vote is the one `Bank.flag` used before stop 24: the share of the 8 nearest examples
(cosine >= 0.35) with the flag, weighted by exp((cos - 1) / 0.05), set at >= 0.5. The classifier is
`Bank.flag` (logistic regression, classes balanced), set at >= 0.5. Quality only: load does not matter.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scratchlab.agent.bank import Bank  # noqa: E402

FILES = ("conversations_dev.jsonl", "conversations_test9.jsonl")
OUT = ROOT / "benchmarks" / "results" / "bank_flags"


def states(text: str, value) -> bool:
    if isinstance(value, str):
        return value.lower() in text.lower() or value.startswith("@")
    s = f"{value:g}" if isinstance(value, float) else str(value)
    return re.search(rf"(?<![\d.]){re.escape(s)}(?!\d)", text.lower()) is not None


def turns() -> list[dict]:
    out = []
    for name in FILES:
        for line in (ROOT / "benchmarks" / "data" / name).read_text().splitlines():
            conv = json.loads(line)
            last: dict[str, dict] = {}
            for t in conv["turns"]:
                e = t["expect"][0] if isinstance(t["expect"], list) else t["expect"]
                action, args = e.get("action"), e.get("args") or {}
                prev = last.get(action, {})
                carry = any(k in prev and prev[k] == v and not states(t["user"], v) for k, v in args.items())
                out.append({"conv": conv["id"], "text": t["user"], "action": action, "carry": carry,
                            "lab": action == "answer"})  # fmt: skip
                if action and action != "answer":
                    last[action] = args
    return out


def vote(bank: Bank, text: str, name: str) -> float:
    num = den = 0.0
    for ex, sim in bank.nearest(text, 8):
        w = math.exp((sim - 1.0) / 0.05)
        den += w
        num += w * bool(getattr(ex, name))
    return num / den if den else 0.0


def main() -> int:
    bank = Bank()
    rows = turns()
    result: dict = {"turns": len(rows)}
    lines = ["# Bank flags: neighbour vote vs classifier (dev conversation turns)", "",
             "Command: `.venv/bin/python benchmarks/bank_flags.py`. Turns of "
             + ", ".join(f"`{f}`" for f in FILES) + "; both are dev (their failures were studied).", "",
             "| flag | turns scored | with the flag | method | found | false alarms | missed |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for flag, scope in (("carry", lambda r: r["action"] not in (None, "answer")), ("lab", lambda r: True)):
        scored = [r for r in rows if scope(r)]
        for method, fn in (
            ("neighbour vote", lambda t, f=flag: vote(bank, t, f)),
            ("classifier", lambda t, f=flag: bank.flag(t, f)),
        ):
            hit = [fn(r["text"]) >= 0.5 for r in scored]
            tp = sum(h and r[flag] for h, r in zip(hit, scored, strict=True))
            fp = sum(h and not r[flag] for h, r in zip(hit, scored, strict=True))
            pos = sum(r[flag] for r in scored)
            result[f"{flag}/{method}"] = {
                "scored": len(scored),
                "positives": pos,
                "found": tp,
                "false_alarms": fp,
            }
            lines.append(f"| {flag} | {len(scored)} | {pos} | {method} | {tp} | {fp} | {pos - tp} |")
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
