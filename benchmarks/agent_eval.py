"""Evaluate how well the agent turns plain-English requests into the right tool call (issue 8).

Dry-run routing on the case set (no tool runs; each request asked in a fresh thread of one session,
with the case's lab state registered first), optionally the same through the `scratchlab ask --dry-run
--json` CLI for a sample, and optionally multi-step tasks run for real in a temporary workspace:

    .venv/bin/python benchmarks/agent_eval.py --model local:0.5b --split dev --limit 40
    .venv/bin/python benchmarks/agent_eval.py --model local:1.5b --split dev --multistep --cli 5
    .venv/bin/python benchmarks/agent_eval.py --model local:1.5b --split test        # held-out, run once

Writes benchmarks/results/agent_eval_<model>[_<split>].{json,md}, agent_eval_failures_<model>[_<split>].md,
and merges the summary into benchmarks/results/agent_eval.{json,md} (one section per model and split).
Scoring rules: `benchmarks/agent_scoring.py` (module docstring). Latency is wall-clock seconds per
request after one warm-up request (whose cold time is reported separately), until the action is
chosen: a tool call with all its arguments, or the first token of a reply or question (the rest of
which streams to the user); `total_seconds` per case also counts writing the whole reply.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agent_scoring as ev  # noqa: E402  (a sibling script, not a package)

from scratchlab.agent.state import RESULT_KEYS
from scratchlab.lab.atomic import atomic_write_json, atomic_write_text
from scratchlab.lab.registry import Registry
from scratchlab.lab.schema import ArtifactRow, JobRow, MetricRow
from scratchlab.lab.workspace import get_workspace

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data" / "commands.jsonl"
MULTISTEP_DATA = ROOT / "data" / "multistep.jsonl"
RESULTS = ROOT / "results"
WARMUP_REQUEST = "hi"
CLI_TIMEOUT_S = 600
DIR_PLACEHOLDER = "{dir}"


# ---- lab state -----------------------------------------------------------------------------------
def reset_state(registry: Registry, state: Sequence[Mapping[str, Any]] | None) -> None:
    """Empty the registry's artifacts, jobs and metrics, then register `state` in order.

        SQLite reuses row ids after the rows are deleted, so the i-th artifact gets "<kind>-<i+1>" and the
        j-th job "job-<j>", as `evaluation.state_ids` assumes. Entries of kind "job" create a job whose
        kind is the entry's name and whose status is the entry's status (default "running"); its "run" (or
    "artifact") names the artifact it trains, as a product job's artifact_id does.
    """
    registry.setup()
    with registry.engine.begin() as conn:
        for table in (ArtifactRow, JobRow, MetricRow):
            conn.execute(delete(table))
    made: dict[str, str] = {}  # artifact name -> id: a job of the lab's "run" trains that artifact
    for item in state or []:
        if item["kind"] == "job":
            job = registry.create_job(item.get("name", "gpt"), config=item.get("config", {}), total=100)
            cfg = item.get("config") or {}
            trains = made.get(str(cfg.get("run") or cfg.get("artifact") or ""))
            registry.update_job(job.id, status=item.get("status", "running"), artifact_id=trains)
        else:
            art = registry.add_artifact(
                item["kind"], item["name"], path="", config=item.get("config"), metrics=item.get("metrics")
            )
            made[item["name"]] = art.id
    got = [a.id for a in reversed(registry.list_artifacts())] + [j.id for j in reversed(registry.list_jobs())]
    want = [e["id"] for e in ev.state_ids(state) if e["kind"] != "job"] + [
        e["id"] for e in ev.state_ids(state) if e["kind"] == "job"
    ]
    if sorted(got) != sorted(want):
        raise RuntimeError(f"state ids {got} differ from the ids the scorer assumes {want}")


LAB_KINDS = {"tokenizers": "tokenizer", "runs": "run", "indexes": "index", "adapters": "adapter",
             "datasets": "dataset", "files": "file", "bases": "base", "ablations": "ablation", "jobs": "job"}  # fmt: skip


def lab_to_state(lab: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The `lab` form of a case ({"tokenizers": [name or {name, ...config}], "runs": [...], ...}) as
    the `state` list the registry and the scorer use. `memory` entries are not artifacts (see `set_memory`)."""
    out = []
    for key, items in (lab or {}).items():
        kind = LAB_KINDS.get(key)
        if kind is None:
            continue
        for item in items:
            if isinstance(item, str):
                out.append({"kind": kind, "name": item})
            else:
                cfg = {k: v for k, v in item.items() if k not in ("name", "status", "kind", "id")}
                entry = {"kind": kind, "name": item.get("name") or item.get("id") or kind, "config": cfg}
                results = {k: cfg.pop(k) for k in list(cfg) if k in RESULT_KEYS and kind != "job"}
                if results:  # a val loss is a run's result, as the product records it, not a setting
                    entry["metrics"] = results
                if kind == "job":
                    entry["status"] = item.get("status", "running")
                    entry["name"] = item.get("kind", "gpt")
                if item.get("id"):  # the id the case's writer gave it ("job-6"): the scorer takes it too
                    entry["alias"] = item["id"]
                out.append(entry)
    return out


def case_state(case: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(case.get("state") or lab_to_state(case.get("lab")))


def set_memory(session: Any, facts: Sequence[str]) -> None:
    """Long-term memory holds exactly `facts` (for cases whose lab lists what the user said before)."""
    from scratchlab.agent import memory

    store = getattr(session, "store", None)
    if store is None:  # a scripted session without long-term memory
        return
    for key, _ in memory.list_memories(store):
        memory.forget_memory(session.store, key)
    for fact in facts:
        memory.add_memory(store, fact)


def exclude_from_bank(session: Any, ids: Sequence[str]) -> None:
    """Leave the scored requests out of the example bank's votes (the bank holds the older splits)."""
    bank = getattr(getattr(session, "model", None), "bank", None)
    if bank is not None:
        bank.exclude(ids)


# ---- dry-run routing -----------------------------------------------------------------------------
def ask_case(session: Any, registry: Registry, case: Mapping[str, Any]) -> dict[str, Any]:
    """Register the case's state, ask its request as a dry run, and score the reply."""
    case = {**case, "state": case_state(case)}
    reset_state(registry, case["state"])
    set_memory(session, (case.get("lab") or {}).get("memory", []))
    exclude_from_bank(session, [case["id"]])
    t0 = time.perf_counter()
    reply = session.ask(case["request"], thread_id=None, dry_run=True)
    total = time.perf_counter() - t0
    decided = reply.get("decision_seconds", total) + (total - reply.get("seconds", total))  # + registry time
    result = ev.score_case(
        case, reply.get("tool_calls") or [], reply.get("answer", ""), seconds=round(decided, 3),
        reported_action=reply.get("action"),
    )  # fmt: skip
    result["total_seconds"] = round(total, 3)
    return result


def run_cases(
    session: Any,
    registry: Registry,
    cases: Sequence[Mapping[str, Any]],
    log: Callable[[str], None] = print,
    partial: Path | None = None,
) -> list[dict[str, Any]]:
    """Ask every case in turn; `log` gets one line per case.

    With `partial`, results already in that JSONL file (from an interrupted run) are reused, and each
    new result is appended to it as soon as it is scored.
    """
    done = load_partial(partial) if partial is not None else {}
    results = []
    for i, case in enumerate(cases, 1):
        if case["id"] in done:
            results.append(done[case["id"]])
            continue
        r = ask_case(session, registry, case)
        results.append(r)
        if partial is not None:
            with partial.open("a", encoding="utf-8") as f:
                f.write(json.dumps(r) + "\n")
        mark = "ok  " if r["ok"] else ("ARGS" if r["first_action_ok"] else "MISS")
        log(
            f"[{i:3d}/{len(cases)}] {mark} {r['seconds']:6.2f}s {r['id']:10s} {r['predicted_action']:22s} {case['request'][:60]}"
        )
    return results


def load_partial(partial: Path) -> dict[str, dict[str, Any]]:
    """Results saved by an interrupted run, by case id (empty when the file does not exist)."""
    done: dict[str, dict[str, Any]] = {}
    if partial.exists():
        for line in partial.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                done[r["id"]] = r
    return done


def stratified(cases: Sequence[Mapping[str, Any]], n: int) -> list[Mapping[str, Any]]:
    """`n` cases taken round-robin over the categories (file order within each), in that interleaved order,
    so that any prefix of an interrupted run is still a balanced sample."""
    by_cat: dict[str, list[Mapping[str, Any]]] = {}
    for c in cases:
        by_cat.setdefault(c["category"], []).append(c)
    picked: list[Mapping[str, Any]] = []
    depth = 0
    while len(picked) < min(n, len(cases)):
        for group in by_cat.values():
            if depth < len(group) and len(picked) < n:
                picked.append(group[depth])
        depth += 1
    return picked


# ---- the CLI path --------------------------------------------------------------------------------
def parse_cli_json(stdout: str) -> dict[str, Any]:
    """The JSON object printed by `scratchlab ask --json` (the last object that starts a line; may span lines).

    Raises:
        ValueError: no JSON object in the output.
    """
    decoder = json.JSONDecoder()
    found = None
    for m in re.finditer(r"(?m)^\{", stdout):
        try:
            obj, _ = decoder.raw_decode(stdout, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            found = obj
    if found is None:
        raise ValueError(f"no JSON object in `scratchlab ask` output: {stdout[-300:]!r}")
    return found


def cli_ask(home: Path, model: str | None, text: str) -> tuple[dict[str, Any], float]:
    """Run `scratchlab ask --dry-run --json TEXT` in a subprocess; returns (reply, wall seconds)."""
    env = dict(os.environ, SCRATCHLAB_HOME=str(home))
    if model:
        env["SCRATCHLAB_MODEL"] = model
    cmd = [sys.executable, "-m", "scratchlab", "--home", str(home), "ask", "--dry-run", "--json", text]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT_S)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"`scratchlab ask` exited {proc.returncode}: {proc.stderr[-500:]}")
    return parse_cli_json(proc.stdout), seconds


def run_cli_cases(
    home: Path, model: str | None, cases: Sequence[Mapping[str, Any]], log=print
) -> list[dict[str, Any]]:
    """Score `cases` through the CLI (one process per request, so each pays the model's start-up)."""
    registry = Registry.from_workspace(get_workspace(home).ensure())
    results = []
    for case in cases:
        reset_state(registry, case.get("state"))
        reply, seconds = cli_ask(home, model, case["request"])
        r = ev.score_case(
            case,
            reply.get("tool_calls") or [],
            reply.get("answer", ""),
            round(seconds, 3),
            reply.get("action"),
        )
        results.append(r)
        log(f"[cli] {'ok  ' if r['ok'] else 'FAIL'} {seconds:6.1f}s {r['id']:10s} {r['predicted_action']}")
    return results


# ---- multi-step tasks, run for real --------------------------------------------------------------
def load_tasks(path: Path) -> list[dict[str, Any]]:
    """Multi-step tasks: {"id", "request", "expected_tools", "files": {relpath: text}} per line."""
    tasks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            task = json.loads(line)
            for key in ("id", "request", "expected_tools"):
                if key not in task:
                    raise ev.CaseError(f"multi-step task {task.get('id', '?')}: missing {key!r}")
            tasks.append(task)
    return tasks


def executed_calls(reply: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Tool calls of a real run with their results when the reply carries them.

    Accepts results inline (`tool_calls[i]["result"]`) or as a parallel list `tool_results`.
    """
    calls = [dict(c) for c in reply.get("tool_calls") or []]
    results = reply.get("tool_results")
    if isinstance(results, list):
        for c, res in zip(calls, results, strict=False):
            c.setdefault("result", res)
    return calls


def run_turn(session: Any, text: str, thread_id: str) -> dict[str, Any]:
    """One real turn. With `session.stream` (LabSession), tool results are collected too; otherwise `ask`."""
    if not hasattr(session, "stream"):
        return session.ask(text, thread_id=thread_id, dry_run=False)
    calls, results, answer = [], [], ""
    for kind, data in session.stream(text, thread_id):
        if kind == "tool_call":
            calls.append(dict(data))
        elif kind == "tool_result":
            results.append(str(getattr(data, "content", data)))
        elif kind == "message":
            answer = str(getattr(data, "content", data))
        elif kind == "interrupt":
            answer = f"<interrupted: {data}>"
            break
    return {"answer": answer, "tool_calls": calls, "tool_results": results}


def run_multistep(
    session: Any, registry: Registry, tasks: Sequence[Mapping[str, Any]], workdir: Path, log=print
):
    """Run each task for real (auto-confirmed) in `workdir`, each with an empty registry and fresh thread."""
    results = []
    for task in tasks:
        task_dir = workdir / task["id"]
        for rel, text in (task.get("files") or {}).items():
            (task_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(task_dir / rel, text)
        request = task["request"].replace(DIR_PLACEHOLDER, str(task_dir))
        reset_state(registry, None)
        t0 = time.perf_counter()
        try:
            reply = run_turn(session, request, thread_id=f"eval-{task['id']}-{int(t0)}")
            error = None
        except Exception as e:  # a crash is a failed task; the report shows it
            reply, error = {"answer": "", "tool_calls": []}, f"{type(e).__name__}: {e}"
        seconds = round(time.perf_counter() - t0, 2)
        r = ev.score_multistep(task, executed_calls(reply), reply.get("answer", ""), seconds)
        r["request"] = request
        r["exception"] = error
        results.append(r)
        log(
            f"[multi] {'done' if r['completed'] else 'FAIL'} {seconds:6.1f}s {task['id']} {r['executed']} {error or ''}"
        )
    return results


def render_multistep(results: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "## Multi-step tasks (run for real)",
        "",
        "| id | completed | expected | executed | s |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['id']} | {'yes' if r['completed'] else 'no'} | {' > '.join(r['expected_tools'])} | "
            f"{' > '.join(r['executed']) or '-'}{' (' + r['exception'] + ')' if r.get('exception') else ''} | {r['seconds']} |"
        )
    return "\n".join(lines) + "\n"


# ---- output --------------------------------------------------------------------------------------
def slug(model: str | None, split: str) -> str:
    """File-name part for a model spec and split: "local:1.5b", "dev" -> "local-1.5b"."""
    name = re.sub(
        r"[^A-Za-z0-9.]+",
        "-",
        Path(model).stem if model and model.endswith(".gguf") else (model or "default"),
    )
    return name.strip("-") + ("" if split == "dev" else f"_{split}")


def write_results(out_dir: Path, key: str, payload: dict[str, Any]) -> list[Path]:
    """Write the per-run files and merge the summary into agent_eval.{json,md}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = payload["summary"]
    title = f"Agent routing: {payload['model']} on {payload['split']} ({payload['n_cases']} requests)"
    md = ev.render_markdown(summary, title=title)
    if payload.get("partial"):
        md += f"\nPartial run: {payload['partial']}.\n"
    if payload.get("cold_s") is not None:
        md += f"\nCold first request (warm-up, not in the table): {payload['cold_s']:.1f} s.\n"
    if payload.get("cli"):
        cli = ev.summarise(payload["cli"])["overall"]
        md += (f"\nThrough `scratchlab ask --dry-run --json` ({cli['n']} requests, one process each): first action "
               f"{ev._pct(cli['first_action'])}, action + args {ev._pct(cli['action_and_args'])}, "
               f"median {ev._secs(cli['median_s'])} s per process.\n")  # fmt: skip
    if payload.get("multistep"):
        md += "\n" + render_multistep(payload["multistep"])
    md += f"\nCommand: `{payload['command']}` (checkout {payload.get('git', 'unknown')})\n"
    paths = [
        out_dir / f"agent_eval_{key}.json",
        out_dir / f"agent_eval_{key}.md",
        out_dir / f"agent_eval_failures_{key}.md",
    ]
    atomic_write_json(paths[0], payload)
    atomic_write_text(paths[1], md)
    atomic_write_text(
        paths[2],
        ev.render_failures(payload["results"], title=f"Failures: {payload['model']} on {payload['split']}"),
    )
    combined_path = out_dir / "agent_eval.json"
    combined = json.loads(combined_path.read_text()) if combined_path.exists() else {}
    keep = ("model", "split", "n_cases", "summary", "command", "date", "cold_s", "partial")
    combined[key] = {k: payload.get(k) for k in keep}
    atomic_write_json(combined_path, combined)
    sections = [ev.render_markdown(v["summary"], title=f"{v['model']} on {v['split']} ({v['n_cases']} requests)")
                + (f"\nPartial run: {v['partial']}.\n" if v.get("partial") else "")
                + f"\nCommand: `{v['command']}` ({v['date']})\n" for _, v in sorted(combined.items())]  # fmt: skip
    atomic_write_text(
        out_dir / "agent_eval.md", "# Agent routing evaluation (issue 8)\n\n" + "\n".join(sections)
    )
    return [*paths, combined_path, out_dir / "agent_eval.md"]


# ---- main ----------------------------------------------------------------------------------------
def make_session(home: Path, model: str | None, n_threads: int | None = None) -> Any:
    """The real agent: `LabSession(home, model, auto_confirm=True)` (imported here: it loads a model)."""
    from scratchlab.agent.session import LabSession

    if n_threads and (model is None or model.startswith("local") or model.endswith(".gguf")):
        from scratchlab.agent.llm import get_chat_model

        chat = get_chat_model(model, workspace=get_workspace(home), n_threads=n_threads)
        return LabSession(home=str(home), model=chat, auto_confirm=True)
    return LabSession(home=str(home), model=model, auto_confirm=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--model",
        default=None,
        help="chat model spec: local, local:0.5b, local:1.5b, a .gguf path (default: the agent's default)",
    )
    p.add_argument(
        "--split",
        default="dev",
        choices=[*ev.SPLITS, "all"],
        help="which cases to run (test is held out: run it rarely)",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="run only N cases, taken round-robin over the categories"
    )
    p.add_argument(
        "--report-partial",
        action="store_true",
        help="only write the result files from a running/interrupted run's partial results (no model)",
    )
    p.add_argument("--n-threads", type=int, default=None, help="llama.cpp threads (default: the model's own)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse results of an interrupted run with the same model and split (kept in <out-dir>/*.partial.jsonl)",
    )
    p.add_argument(
        "--category", action="append", choices=ev.CATEGORIES, help="only these categories (repeatable)"
    )
    p.add_argument("--data", type=Path, default=DATA, help="case file (.jsonl)")
    p.add_argument(
        "--multistep", action="store_true", help="also run the multi-step tasks for real (tiny settings)"
    )
    p.add_argument(
        "--multistep-data", type=Path, default=MULTISTEP_DATA, help="multi-step task file (.jsonl)"
    )
    p.add_argument("--multistep-limit", type=int, default=None, help="run only the first N multi-step tasks")
    p.add_argument(
        "--no-routing", action="store_true", help="skip the dry-run routing cases (e.g. only --multistep)"
    )
    p.add_argument(
        "--cli",
        type=int,
        default=0,
        metavar="N",
        help="also score the first N cases through `scratchlab ask --dry-run --json`",
    )
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where to write results")
    p.add_argument("--home", type=Path, default=None, help="workspace to use (default: a temporary folder)")
    return p.parse_args(argv)


@functools.cache
def git_revision() -> str:
    """`git describe --always --dirty` of the checkout (the agent's prompts change between commits), read
    once: `main` reads it first, so a report names the code the run loaded, not a later commit."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report_partial(args: argparse.Namespace, argv, cases, key: str, partial: Path) -> dict[str, Any]:
    """Write the result files from the cases an unfinished run has scored so far (its run goes on)."""
    done = load_partial(partial)
    results = [done[c["id"]] for c in cases if c["id"] in done]
    payload = {
        "model": args.model or "default",
        "split": args.split,
        "n_cases": len(results),
        "partial": f"{len(results)} of {len(cases)} selected cases scored when this report was written",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": git_revision(),
        "command": "python benchmarks/agent_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cold_s": None,
        "summary": ev.summarise(results),
        "results": results,
        "multistep": None,
        "cli": None,
    }
    paths = write_results(args.out_dir, key, payload)
    print(ev.render_markdown(payload["summary"]))
    print("wrote " + ", ".join(str(p) for p in paths))
    return payload


def main(
    argv: Sequence[str] | None = None, session_factory: Callable[[Path, str | None], Any] | None = None
) -> dict[str, Any]:
    """Run the evaluation; returns the payload written to the results file."""
    git_revision()  # the code this process loads
    args = parse_args(argv)
    if session_factory is None:
        session_factory = functools.partial(make_session, n_threads=args.n_threads)
    cases = ev.load_cases(args.data, split=args.split, categories=args.category)
    if args.limit:
        cases = stratified(cases, args.limit)
    key = slug(args.model, args.split) if not args.no_routing else "multistep_" + slug(args.model, "dev")
    partial = args.out_dir / f"agent_eval_{key}.partial.jsonl"
    if not (args.resume or args.report_partial) and partial.exists():
        partial.unlink()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.report_partial:
        return report_partial(args, argv, cases, key, partial)
    with tempfile.TemporaryDirectory(prefix="scratchlab-eval-") as tmp:
        home = args.home or Path(tmp) / "home"
        registry = Registry.from_workspace(get_workspace(home).ensure())
        reset_state(registry, None)
        t0 = time.perf_counter()
        session = session_factory(home, args.model)
        session.ask(WARMUP_REQUEST, thread_id=None, dry_run=True)
        cold_s = round(time.perf_counter() - t0, 2)
        print(f"session ready and warmed up in {cold_s:.1f} s; {len(cases)} cases", flush=True)
        log = lambda line: print(line, flush=True)  # noqa: E731
        results = [] if args.no_routing else run_cases(session, registry, cases, log=log, partial=partial)
        multi = None
        if args.multistep:
            tasks = load_tasks(args.multistep_data)[: args.multistep_limit]
            multi = run_multistep(session, registry, tasks, Path(tmp) / "tasks", log=log)
        cli = run_cli_cases(home, args.model, cases[: args.cli], log=log) if args.cli else None
    payload = {
        "model": args.model or "default",
        "split": args.split,
        "n_cases": len(results),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": git_revision(),
        "command": "python benchmarks/agent_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cold_s": cold_s,
        "summary": ev.summarise(results, multistep=multi),
        "results": results,
        "multistep": multi,
        "cli": cli,
    }
    paths = write_results(args.out_dir, key, payload)
    partial.unlink(missing_ok=True)
    print(ev.render_markdown(payload["summary"]))
    print("wrote " + ", ".join(str(p) for p in paths))
    return payload


if __name__ == "__main__":
    main()
