"""Record the local model's own score of every action, and the example bank's prior, per request.

(Recorded: the bank's classifier prior as it is now, and the nearest neighbours, so the older
nearest-neighbour vote can be compared with it offline.)

With these, the weight of the prior and the bank's temperature are tuned offline (no model in the
loop): `--tune` reads the file back and prints first-action accuracy for a grid of settings.

    .venv/bin/python benchmarks/action_scores.py --model local:1.5b --split dev --out /tmp/scores.jsonl
    .venv/bin/python benchmarks/action_scores.py --tune /tmp/scores.jsonl

Each request is scored in a fresh thread with its case's lab state, as `agent_eval.py` asks it; the
scored request is left out of the bank (leave-one-out). A name's score is the sum of its tokens'
log-probabilities after `{"action": "` (exact, over the token trie of all names).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agent_eval as harness  # noqa: E402
import agent_scoring as ev  # noqa: E402

from scratchlab.agent import router  # noqa: E402
from scratchlab.agent.bank import Bank  # noqa: E402
from scratchlab.agent.constrained import prefill  # noqa: E402


def logsoftmax_row(llm) -> np.ndarray:
    logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).astype(np.float64)
    m = logits.max()
    return logits - (m + np.log(np.exp(logits - m).sum()))


def name_scores(llm, prompt: str, names: list[str]) -> dict[str, float]:
    """log P(name | prompt) for every name, walking the names' token trie depth-first (each shared
    node's token is evaluated once; the KV cache is rewound to the node before each child). A name's
    tokens after the one that sets it apart are taken as certain, as `constrained.choose` does."""
    seqs = {n: llm.tokenize(f'{n}"'.encode(), add_bos=False, special=False) for n in names}
    prefill(llm, prompt)
    base = llm.n_tokens
    out: dict[str, float] = {}

    def walk(depth: int, live: list[str], acc: float) -> None:
        row = logsoftmax_row(llm)
        groups: dict[int, list[str]] = {}
        for n in live:
            if len(seqs[n]) == depth:
                out[n] = acc
            else:
                groups.setdefault(seqs[n][depth], []).append(n)
        for tok, members in groups.items():
            if len(members) == 1:  # the name is decided here; its remaining tokens are ~certain
                out[members[0]] = acc + row[tok]
                continue
            llm.n_tokens = base + depth
            llm.eval([tok])
            walk(depth + 1, members, acc + row[tok])

    walk(0, names, 0.0)
    return out


def record(args) -> None:
    cases = ev.load_cases(args.data, split=args.split)
    if args.limit:
        cases = harness.stratified(cases, args.limit)
    home = args.home or Path(tempfile.mkdtemp(prefix="scratchlab-scores-"))
    session = harness.make_session(home, args.model, n_threads=args.n_threads)
    model = session.model
    tools = [t for t in session.tools]
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.utils.function_calling import convert_to_openai_tool

    names = [convert_to_openai_tool(t)["function"]["name"] for t in tools] + ["answer", "clarify"]
    bank: Bank = model.bank
    with open(args.out, "w", encoding="utf-8") as f:
        for i, case in enumerate(cases, 1):
            state = harness.case_state(case)
            harness.reset_state(session.registry, state)
            msgs = [
                SystemMessage(session._fixed_prompt + "\n" + session.lab_state()),
                HumanMessage(case["request"]),
            ]
            model.warm_start(session._fixed_prompt)
            prompt = model._fit(msgs) + router.ACTION_PREFIX
            with __import__("scratchlab.agent.local_chat", fromlist=["LOCK"]).LOCK:
                scores = name_scores(model.llm, prompt, names)
            bank.exclude([case["id"]])
            near = [(e.action, s) for e, s in bank.nearest(router.normalise_request(case["request"]), 16)]
            prior_now = bank.action_prior(router.normalise_request(case["request"]), names)
            row = {"id": case["id"], "expected": case["expected"]["action"], "model": scores, "near": near,
                   "prior": prior_now}  # fmt: skip
            f.write(json.dumps(row) + "\n")
            f.flush()
            best = max(scores, key=scores.get)
            print(f"[{i}/{len(cases)}] {case['id']} expected {row['expected']} model {best}", flush=True)


def prior(near, names, k: int, temp: float) -> dict[str, float]:
    w = dict.fromkeys(names, 0.0)
    for a, s in near[:k]:
        if a in w and s >= 0.35:
            w[a] += math.exp((s - 1.0) / temp)
    total = sum(w.values())
    smooth = 0.02 * (total or 1.0)
    z = total + smooth * len(names)
    return {a: (v + smooth) / z for a, v in w.items()}


def tune(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print(f"{len(rows)} requests")
    recorded = [r for r in rows if "prior" in r]
    if recorded:  # the bank's own prior as recorded (the classifier): weight grid
        line = []
        for weight in (0.0, 0.5, 1.0, 2.0, 3.0, 100.0):
            ok = sum(
                max(r["model"], key=lambda n: r["model"][n] + weight * math.log(r["prior"][n]))
                == r["expected"]
                for r in recorded
            )
            line.append(f"w={weight:g}: {ok / len(recorded):.3f}")
        print("recorded prior  " + "  ".join(line))
    print("nearest-neighbour vote (k, temperature, weight):")
    for k in (4, 8, 16):
        for temp in (0.03, 0.05, 0.1, 0.2):
            line = []
            for weight in (0.0, 0.25, 0.5, 1.0, 2.0, 100.0):
                ok = 0
                for r in rows:
                    names = list(r["model"])
                    p = prior(r["near"], names, k, temp)
                    best = max(names, key=lambda n: r["model"][n] + weight * math.log(p[n]))
                    ok += best == r["expected"]
                line.append(f"w={weight:g}: {ok / len(rows):.3f}")
            print(f"k={k:2d} T={temp:.2f}  " + "  ".join(line))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="local:1.5b")
    p.add_argument("--split", default="dev")
    p.add_argument("--data", type=Path, default=harness.DATA)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--n-threads", type=int, default=None)
    p.add_argument("--home", type=Path, default=None, help="workspace to use (its models/ is reused)")
    p.add_argument("--out", type=Path, default=Path("action_scores.jsonl"))
    p.add_argument("--tune", type=Path, default=None, help="read a scores file and print the grid")
    args = p.parse_args()
    if args.tune:
        tune(args.tune)
    else:
        record(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
