"""Multi-turn conversations, run for real: does every turn that leans on earlier turns go right? (issue 15)

Each conversation runs in one thread of a fresh workspace, every tool for real (auto-confirmed, tiny
settings), so "it", "the same but 8 heads", "what was its val loss?" meet real artifacts and results:

    .venv/bin/python benchmarks/agent_conversations.py --model local:1.5b --data benchmarks/data/conversations_dev.jsonl

Conversation format (one per line)::

    {"id": "cd-01", "split": "dev", "lab": {...}, "turns": [
        {"user": "train a 400-token tokenizer on shakespeare", "expect": {"action": "train_tokenizer", "args": {...}}},
        {"user": "now a 2-layer GPT with it", "expect": {"action": "train_gpt", "args": {"tokenizer": "@1"}}},
        {"user": "did that GPT use my new tokenizer?", "expect": {"action": "answer", "answer_contains": [["yes"]]}}]}

`expect` may be a list (a multi-step turn: one expectation per tool call, in order). "@N" in an
expected argument is any artifact that turn N created (name or id). `answer_contains` is a list of
groups; each group is a list of alternatives, one of which must be in the final answer (any case).
Argument matching follows `benchmarks/agent_scoring.py`.

A turn is right when its first calls have the expected tools and key arguments (or, for `answer` /
`clarify`, no tool was called) and the answer holds every group. The report also counts, over the
whole run, numbers in replies after tool results that are in neither the results nor the request
(`scratchlab.agent.grounding`).

Writes benchmarks/results/agent_conversations_<model>_<split>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agent_eval as harness  # noqa: E402  (sibling scripts)
import agent_scoring as ev  # noqa: E402

from scratchlab.agent.grounding import source_values, unsupported_numbers  # noqa: E402
from scratchlab.lab.atomic import atomic_write_json, atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
REPO = ROOT.parent


def load_conversations(path: Path) -> list[dict[str, Any]]:
    convs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                c = json.loads(line)
            except json.JSONDecodeError as e:
                raise ev.CaseError(f"{path}:{n}: not valid JSON ({e})") from e
            if "turns" not in c or "id" not in c:
                raise ev.CaseError(f"{path}:{n}: a conversation needs 'id' and 'turns'")
            convs.append(c)
    return convs


def turn_ids(conv: Mapping[str, Any]) -> list[str]:
    """The ids of a conversation's turns as the example bank holds them ("c16-02-t3")."""
    return [f"{conv['id']}-t{i}" for i in range(1, len(conv["turns"]) + 1)]


def resolve_refs(spec: Any, made: Mapping[int, list[str]]) -> Any:
    """Replace "@N" in an expected value by the names and ids turn N created ({"one_of": [...]})."""
    if isinstance(spec, str) and spec.startswith("@") and spec[1:].isdigit():
        names = made.get(int(spec[1:]), [])
        return {"one_of": names or [f"<nothing made by turn {spec[1:]}>"]}
    if isinstance(spec, dict):
        return {k: resolve_refs(v, made) for k, v in spec.items()}
    if isinstance(spec, list):
        return [resolve_refs(v, made) for v in spec]
    return spec


def score_turn(expect: Any, reply: Mapping[str, Any], made: Mapping[int, list[str]]) -> dict[str, Any]:
    """Score one turn: expected steps against the calls made, and the answer's required words."""
    steps = expect if isinstance(expect, list) else [expect]
    calls = reply.get("tool_calls") or []
    answer = reply.get("answer", "") or ""
    errors = []
    for i, step in enumerate(steps):
        action = step["action"]
        if action in (ev.ANSWER, ev.CLARIFY):
            got = ev.predicted_action(calls[i:], answer, action, reply.get("action"))
            if got != action:
                errors.append(f"step {i + 1}: expected {action}, got {got}")
        else:
            if i >= len(calls) or calls[i]["name"] != action:
                got = calls[i]["name"] if i < len(calls) else "no call"
                errors.append(f"step {i + 1}: expected {action}, got {got}")
                continue
            args = resolve_refs(step.get("args") or {}, made)
            case = {
                "id": "turn",
                "category": "reference",
                "request": "",
                "expected": {"action": action, "args": args},
            }
            r = ev.score_case(case, [calls[i]], answer)
            if r["arg_errors"]:
                errors.append(f"step {i + 1} args: {json.dumps(r['arg_errors'], default=str)[:300]}")
        for group in step.get("answer_contains") or []:
            if not any(alt.lower() in answer.lower() for alt in group):
                errors.append(f"answer lacks one of {group}")
    return {"ok": not errors, "errors": errors}


def run_conversation(session: Any, conv: Mapping[str, Any], log=print) -> dict[str, Any]:
    registry = session.registry
    harness.reset_state(registry, harness.lab_to_state(conv.get("lab")))
    harness.set_memory(session, (conv.get("lab") or {}).get("memory", []))
    thread = f"conv-{conv['id']}-{int(time.time())}"
    made: dict[int, list[str]] = {}
    turns, ungrounded, ungrounded_later = [], 0, 0
    said: list[str] = []
    seen_results: list[str] = []
    for n, turn in enumerate(conv["turns"], 1):
        before = {a.id for a in registry.list_artifacts(limit=500)}
        t0 = time.perf_counter()
        try:
            reply = harness.run_turn(session, turn["user"], thread)
            error = None
        except Exception as e:  # a crash fails the turn; the report shows it
            reply, error = {"answer": "", "tool_calls": [], "tool_results": []}, f"{type(e).__name__}: {e}"
        seconds = round(time.perf_counter() - t0, 2)
        new = [a for a in registry.list_artifacts(limit=500) if a.id not in before and a.kind != "plot"]
        made[n] = [x for a in new for x in (a.name, a.id)]
        r = score_turn(turn["expect"], reply, made)
        if error:
            r["ok"], r["errors"] = False, [*r["errors"], error]
        bad, later = [], []
        if reply.get("tool_results"):
            values = source_values([turn["user"], *reply["tool_results"]])
            bad = unsupported_numbers(reply.get("answer", ""), values)
            ungrounded += len(bad)
        elif seen_results:  # an answer on a later turn: only what the conversation said or showed, or
            # the lab's records hold (the agent answers questions about runs from them)
            records = [json.dumps({"config": a.config, "metrics": a.metrics}, default=str)
                       for a in registry.list_artifacts(limit=500)]  # fmt: skip
            values = source_values([*said, turn["user"], *seen_results, *records])
            later = unsupported_numbers(reply.get("answer", ""), values)
            ungrounded_later += len(later)
        said.append(turn["user"])
        seen_results += reply.get("tool_results") or []
        turns.append({"turn": n, "user": turn["user"], "expect": turn["expect"], "ok": r["ok"], "errors": r["errors"],
                      "calls": reply.get("tool_calls"), "answer": (reply.get("answer") or "")[:300],
                      "results": [t[:200] for t in reply.get("tool_results") or []], "ungrounded": bad, "ungrounded_later": later,
                      "seconds": seconds})  # fmt: skip
        log(
            f"  {'ok  ' if r['ok'] else 'MISS'} {seconds:6.1f}s {conv['id']} t{n} {turn['user'][:60]}  {'; '.join(r['errors'])[:160]}"
        )
    return {"id": conv["id"], "split": conv.get("split"), "turns": turns, "ungrounded_numbers": ungrounded,
            "ungrounded_later": ungrounded_later}  # fmt: skip


def summarise(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    turns = [t for c in results for t in c["turns"]]
    later = [t for c in results for t in c["turns"] if t["turn"] > 1]
    return {
        "conversations": len(results),
        "turns": len(turns),
        "turns_right": sum(t["ok"] for t in turns),
        "turn_accuracy": round(sum(t["ok"] for t in turns) / max(1, len(turns)), 3),
        "later_turns_right": f"{sum(t['ok'] for t in later)}/{len(later)}",
        "conversations_all_right": sum(all(t["ok"] for t in c["turns"]) for c in results),
        "ungrounded_numbers": sum(c["ungrounded_numbers"] for c in results),
        # numbers in answers on turns without a tool that no earlier request or result of the conversation holds
        # (general knowledge counts here too: read them in the report)
        "ungrounded_later": sum(c.get("ungrounded_later", 0) for c in results),
        "median_turn_s": sorted(t["seconds"] for t in turns)[len(turns) // 2] if turns else None,
    }


def render(summary: Mapping[str, Any], results: Sequence[Mapping[str, Any]], title: str, command: str) -> str:
    lines = [f"# {title}", "", f"Command: `{command}`", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary.items()]
    lines += ["", "## Turns that went wrong", ""]
    for c in results:
        for t in c["turns"]:
            if not t["ok"] or t["ungrounded"] or t.get("ungrounded_later"):
                lines.append(f"- {c['id']} t{t['turn']} `{t['user']}`: {'; '.join(t['errors']) or 'ungrounded numbers'}"
                             f" (calls: {json.dumps(t['calls'])[:300]}; answer: {t['answer'][:160]!r};"
                             f" ungrounded: {t['ungrounded']}; later: {t.get('ungrounded_later', [])})")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default=None, help="chat model spec (default: the agent's default)")
    p.add_argument("--data", type=Path, required=True, help="conversation file (.jsonl)")
    p.add_argument("--limit", type=int, default=None, help="only the first N conversations")
    p.add_argument("--only", action="append", default=[], help="only this conversation id (repeatable)")
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where to write results")
    p.add_argument("--home", type=Path, default=None, help="workspace (default: a temporary folder)")
    args = p.parse_args(argv)
    harness.git_revision()  # the code this process loads, not the head when the report is written
    convs = load_conversations(args.data)
    if args.only:
        convs = [c for c in convs if c["id"] in args.only]
    convs = convs[: args.limit] if args.limit else convs
    home = args.home or Path(tempfile.mkdtemp(prefix="scratchlab-conv-"))
    session = harness.make_session(home, args.model)
    harness.exclude_from_bank(session, [i for c in convs for i in turn_ids(c)])  # a scored split's turns
    workdir = home / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    import os

    cwd = os.getcwd()
    os.chdir(REPO)  # relative paths in the conversations ("../shared/seeds") are relative to the checkout
    try:
        for conv in convs:
            print(f"[{conv['id']}] {len(conv['turns'])} turns", flush=True)
            results.append(run_conversation(session, conv, log=lambda s: print(s, flush=True)))
    finally:
        os.chdir(cwd)
        from scratchlab.training.board import stop_board

        stop_board(session.workspace)  # a show_curves turn starts a dashboard; it must not outlive the run
    summary = summarise(results)
    split = convs[0].get("split", "dev") if convs else "none"
    model = (args.model or "default").replace(":", "-")
    rev = harness.git_revision()
    command = "python benchmarks/agent_conversations.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    payload = {"model": args.model, "split": split, "revision": rev, "date": time.strftime("%Y-%m-%d %H:%M"),
               "command": command, "summary": summary, "results": results}  # fmt: skip
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"agent_conversations_{model}_{split}"
    atomic_write_json(args.out_dir / f"{stem}.json", payload)
    atomic_write_text(
        args.out_dir / f"{stem}.md",
        render(summary, results, f"Conversations: {model} on {split} at {rev}", command),
    )
    print(json.dumps(summary, indent=1))
    if args.home is None:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
