"""Scoring of the agent's routing: did a request get the right first action and the right key arguments?

Pure functions, no model and no I/O beyond reading a case file, so they are fast to test and can be
reused by any harness (`benchmarks/agent_eval.py` drives the real agent through them).

    cases = load_cases("benchmarks/data/commands.jsonl", split="dev")
    r = score_case(cases[0], [{"name": "train_gpt", "args": {"n_layer": 4}}], "", seconds=1.2)
    table = summarise([r, ...]);  print(render_markdown(table))

Case format (one JSON object per line)::

    {"id": "cmd-013", "category": "command", "split": "dev",
     "request": "train a 4-layer GPT on shakespeare for 2000 steps",
     "expected": {"action": "train_gpt", "args": {"dataset": "shakespeare", "n_layer": 4, "max_iters": 2000}},
     "state": [{"kind": "tokenizer", "name": "bpe512-shakespeare"}],      # optional lab state
     "expected_tools": ["train_tokenizer", "train_gpt"]}                   # optional, multi-step plans

`expected.action` is a tool name, "answer" (reply without a tool) or "clarify" (ask for a missing
required detail). `expected.args` lists only the key arguments the request states or implies. A value
is either a literal, compared after `normalise_value`, or a matcher dict:
`{"contains": "QLoRA"}` / `{"contains": ["6", "head"]}` (every substring, case-insensitive),
`{"contains_any": [...]}`, `{"one_of": [...]}` (any literal), `{"present": true}` (any non-empty value).

Argument rules:
- An argument the agent left out takes the tool's default (`TOOL_DEFAULTS`), so "sample from the last
  run" is right whether the agent writes `run="last"` or omits it.
- Strings compare case-insensitively with surrounding quotes and whitespace removed; values that look
  like paths compare by basename ("../shared/seeds" == "seeds"); counts are parsed ("2k" == 2000);
  numbers compare with a relative tolerance of 1e-6; `switches` and `special_tokens` compare as sets,
  other lists in order.
- Artifact references resolve through the case's `state`: the harness registers state entries in order
  into an empty registry, so the i-th entry gets the id "<kind>-<i+1>" (jobs: "job-<j>", counted among
  jobs). A name, its id and, for the newest artifact of the argument's kind, "last" are all equal.

Predicted action (how a reply is classified):
1. The reply made tool calls: the first call's name.
2. No tool call and the harness reported the action (`action="clarify"` from the agent's own marker), or
   the answer starts with a clarify marker (`CLARIFY_MARKERS`): "clarify".
3. No tool call and the answer contains "?": "clarify" when the case expects "clarify", else
   "answer". A chit-chat reply often ends with a question ("Hi! What shall we build?"), so a question
   mark alone is not held against an "answer" case; nor does it make a clarify case wrong.
4. Otherwise "answer".

Source: the measurement protocol in ../shared/notes/agent-routing.md (first action, action + key args,
chit-chat -> answer, warm median / p90 latency), extended with per-category tables.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ANSWER = "answer"
CLARIFY = "clarify"
CATEGORIES = (
    "command", "paraphrase", "shorthand", "multistep", "chitchat", "general", "underspecified",
    "adversarial", "reference", "memory",
)  # fmt: skip
SPLITS = (
    "dev",
    "test",
    "test2",
    "test3",
    "test4",
    "test5",
    "test6",
    "test7",
    "test8",
    "test9",
    "test10",
    "test11",
    "test12",
    "test13",
    "test14",
    "test15",
    "test16",
    "test17",
    "test18",
    "test19",
    "test20",
    "test21",
    "test22",
    "test23",
    "test24",
    "test25",
    "test26",
    "test27",
    "test28",
    "test29",
)  # test2-test8: each written before any run of the code it first scored
NO_TOOL_CATEGORIES = ("chitchat", "general")
CLARIFY_CATEGORIES = ("underspecified",)
CLARIFY_MARKERS = ('{"action": "clarify"}', "[clarify]", "clarify:")
CLARIFY_TOOL_NAMES = ("clarify", "ask_user")
LATEST_REFS = ("last", "latest", "newest", "recent", "most recent")
UNORDERED_LIST_ARGS = ("switches", "special_tokens", "search")  # a sweep space is keyed by setting: no order
SPEC_LIST_ARGS = ("search",)  # sweep search specs: a setting under any of its names
REL_TOL = 1e-6
ANSWER_SNIPPET_CHARS = 160
TARGETS = {"first_action": 0.90, "action_and_args": 0.85, "no_tool": 0.95, "median_s": 4.0, "multistep": 0.80}


def schema_defaults() -> dict[str, dict[str, Any]]:
    """{tool: {argument: default}} read from the tools' own pydantic schemas (None: no default)."""
    from pydantic_core import PydanticUndefined

    from scratchlab.tools import all_tools

    out: dict[str, dict[str, Any]] = {}
    for tool in all_tools(workspace=tempfile.mkdtemp(prefix="scratchlab-schema-")):
        fields = tool.args_schema.model_fields
        out[tool.name] = {}
        for name, f in fields.items():
            if f.default_factory is not None:
                default = f.default_factory()
            else:
                default = None if f.default is PydanticUndefined else f.default
            out[tool.name][name] = default
    return out


TOOL_DEFAULTS: dict[str, dict[str, Any]] = schema_defaults()


def effective_args(tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """`args` as the tool will run them: through its pydantic schema, so a value one argument derives
    from another counts ("num_merges": 200 is vocab_size 456). Unchanged when they do not validate."""
    from scratchlab.tools import all_tools

    global _SCHEMAS
    if _SCHEMAS is None:
        _SCHEMAS = {
            t.name: t.args_schema for t in all_tools(workspace=tempfile.mkdtemp(prefix="scratchlab-schema-"))
        }
    try:
        model = _SCHEMAS[tool].model_validate(dict(args))
    except (KeyError, ValueError):
        return dict(args)
    return {
        **args,
        **{k: v for k, v in model.model_dump().items() if k in args or v != TOOL_DEFAULTS[tool].get(k)},
    }


_SCHEMAS: dict[str, Any] | None = None
ACTIONS = (*TOOL_DEFAULTS, ANSWER, CLARIFY)
# Which artifact kinds an argument refers to, for "last" and id <-> name resolution.
REF_ARG_KINDS: dict[str, tuple[str, ...]] = {
    "tokenizer": ("tokenizer",), "run": ("run",), "base": ("run", "base"), "index": ("index",),
    "adapter": ("adapter",), "job_id": ("job",),
}  # fmt: skip
MATCHER_KEYS = ("contains", "contains_any", "one_of", "present")

_COUNT_RE = re.compile(r"^([-+]?\d+(?:\.\d+)?)\s*([kmb])$")
_COUNT_WORDS = (" steps", " step", " iterations", " iters", " tokens", " merges", " layers", " heads")
_SUFFIX = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


class CaseError(ValueError):
    """A case in the evaluation set is malformed; the message names the case and the problem."""


# ---- loading and validation ---------------------------------------------------------------------
def validate_case(case: Mapping[str, Any]) -> None:
    """Check one case's shape.

    Raises:
        CaseError: missing id/request/expected, unknown category, action, split or argument name,
            or a required argument listed as absent for a tool action.
    """
    cid = case.get("id", "<no id>")
    for key in ("id", "category", "request", "expected"):
        if key not in case:
            raise CaseError(f"case {cid}: missing key {key!r}")
    if case["category"] not in CATEGORIES:
        raise CaseError(f"case {cid}: unknown category {case['category']!r}; expected one of {CATEGORIES}")
    if case.get("split", "dev") not in SPLITS:
        raise CaseError(f"case {cid}: unknown split {case['split']!r}; expected one of {SPLITS}")
    action = case["expected"].get("action")
    if action not in ACTIONS:
        raise CaseError(
            f"case {cid}: unknown expected action {action!r}; expected a tool name, 'answer' or 'clarify'"
        )
    args = case["expected"].get("args", {}) or {}
    if not isinstance(args, dict):
        raise CaseError(f"case {cid}: expected.args must be an object, got {type(args).__name__}")
    if action in TOOL_DEFAULTS:
        unknown = set(args) - set(TOOL_DEFAULTS[action])
        if unknown:
            raise CaseError(f"case {cid}: {action} has no argument(s) {sorted(unknown)}")
    elif args:
        raise CaseError(f"case {cid}: action {action!r} takes no args, got {sorted(args)}")
    for name, spec in args.items():
        if isinstance(spec, dict) and not set(spec) <= set(MATCHER_KEYS):
            raise CaseError(f"case {cid}: arg {name!r} matcher {spec} must use keys from {MATCHER_KEYS}")
    for tool in case.get("expected_tools", []) or []:
        if tool not in TOOL_DEFAULTS:
            raise CaseError(f"case {cid}: unknown tool {tool!r} in expected_tools")


def load_cases(
    path: str | Path, split: str = "all", categories: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Read and validate a JSONL case file.

    Args:
        path: the .jsonl file.
        split: "dev", "test" or "all". Cases without a split are "dev".
        categories: keep only these categories (None: all).

    Returns:
        The selected cases, in file order.

    Raises:
        CaseError: a line is not JSON, a case is malformed, or two cases share an id.
        FileNotFoundError: the file does not exist.
    """
    if split not in (*SPLITS, "all"):
        raise CaseError(f"unknown split {split!r}; expected dev, test or all")
    cases, seen = [], set()
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as e:
            raise CaseError(f"{path}:{lineno}: not valid JSON ({e})") from e
        validate_case(case)
        if case["id"] in seen:
            raise CaseError(f"{path}:{lineno}: duplicate case id {case['id']!r}")
        seen.add(case["id"])
        if split != "all" and case.get("split", "dev") != split:
            continue
        if categories and case["category"] not in categories:
            continue
        cases.append(case)
    return cases


# ---- normalisation ------------------------------------------------------------------------------
def parse_number(value: Any) -> Any:
    """Numbers from shorthand: "2k" -> 2000, "1.5k" -> 1500, "1,000" -> 1000, "3e-4" -> 0.0003, "2000 steps" -> 2000.

    Returns the value unchanged when it is not a number (or is a bool).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if not isinstance(value, str):
        return value
    s = value.strip().lower().replace(",", "").replace("_", "")
    for word in _COUNT_WORDS:
        s = s.removesuffix(word)
    m = _COUNT_RE.match(s)
    if m:
        return int(round(float(m.group(1)) * _SUFFIX[m.group(2)]))
    try:
        f = float(s)
    except ValueError:
        return value
    if math.isnan(f) or math.isinf(f):
        return value
    return int(f) if f.is_integer() else f


def normalise_value(value: Any) -> Any:
    """Canonical form of an argument value for comparison.

    Strings: quotes and surrounding whitespace stripped, lower-cased, inner whitespace collapsed; a
    string that looks like a path (contains "/" or "\\") becomes its basename; "true"/"false" become
    bools; numeric strings become numbers (see `parse_number`); a "key=v1,v2" spec of numbers gets
    their canonical spelling. Lists are normalised item by item.
    """
    if isinstance(value, list | tuple):
        return [normalise_value(v) for v in value]
    if isinstance(value, str):
        s = " ".join(value.strip().strip("'\"`").split())
        if s.lower() in ("true", "false"):
            return s.lower() == "true"
        num = parse_number(s)
        if not isinstance(num, str):
            return num
        key, eq, values = s.partition("=")
        nums = (
            [parse_number(v.strip()) for v in values.split(",")] if eq and key.strip().isidentifier() else []
        )
        if nums and not any(isinstance(n, str) for n in nums):  # "lr=1e-3,3e-3" is "lr=0.001,0.003"
            return f"{key.strip().lower()}=" + ",".join(f"{float(n):g}" for n in nums)
        if "/" in s or "\\" in s:
            s = s.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or s
        return s.lower()
    return parse_number(value)


def _canonical_specs(specs: Any) -> Any:
    """Search specs ('learning_rate', 'vocab=256,512') as the sweep engine reads them: each setting
    under the name it gives it (`sweep_space.ALIASES`: 'lr', 'vocab_size=256,512'), and the values of
    one setting written as several specs joined ('dropout=0', 'dropout=0.3' -> 'dropout=0,0.3', as
    `sweep_space.parse_space` joins them)."""
    from scratchlab.training.sweep_space import ALIASES

    if not isinstance(specs, list):
        return specs
    out: list[Any] = []
    values_of: dict[str, int] = {}  # setting -> its 'name=v1,v2' spec's place in `out`
    for spec in specs:
        if isinstance(spec, str):
            key, eq, values = spec.partition("=")
            key = ALIASES.get(key.strip(), key.strip())
            if eq and ".." not in values and key in values_of:
                out[values_of[key]] += "," + values
                continue
            if eq and ".." not in values:
                values_of[key] = len(out)
            spec = key + eq + values
        out.append(spec)
    return out


def values_equal(expected: Any, got: Any) -> bool:
    """Compare two normalised scalars or lists (numbers with a relative tolerance)."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(expected, bool) and isinstance(got, bool) and expected == got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return math.isclose(expected, got, rel_tol=REL_TOL, abs_tol=1e-12)
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(
            values_equal(a, b) for a, b in zip(expected, got, strict=True)
        )
    return expected == got


# ---- lab state ----------------------------------------------------------------------------------
def state_ids(state: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """The (kind, name, id) of each state entry as the harness registers them into an empty registry.

    Artifacts share one id counter ("tokenizer-1", "run-2", ...); jobs have their own ("job-1", ...).
    An id the case's lab declares for an entry ("job-6") is kept as its `alias`.
    """
    out, n_art, n_job = [], 0, 0
    for item in state or []:
        kind, name = str(item["kind"]), str(item.get("name", item["kind"]))
        if kind == "job":
            n_job += 1
            out.append({"kind": kind, "name": name, "id": f"job-{n_job}"})
        else:
            n_art += 1
            out.append({"kind": kind, "name": name, "id": f"{kind}-{n_art}"})
        if item.get("alias"):  # an id the case's lab declared, which the harness does not give
            out[-1]["alias"] = str(item["alias"])
    return out


def reference_aliases(arg: str, value: Any, state: Sequence[Mapping[str, Any]] | None) -> set[Any]:
    """Every normalised spelling that refers to the same artifact as `value` for argument `arg`."""
    v = normalise_value(value)
    aliases = {v} if not isinstance(v, list) else set()
    kinds = REF_ARG_KINDS.get(arg)
    if not kinds or not isinstance(v, str):
        return aliases
    entries = [e for e in state_ids(state) if e["kind"] in kinds]
    newest = entries[-1] if entries else None
    if v in LATEST_REFS:
        aliases |= set(LATEST_REFS)
        if newest:
            aliases |= {normalise_value(newest["name"]), normalise_value(newest["id"])}
    for e in entries:
        names = {normalise_value(e["name"]), normalise_value(e["id"])} | (
            {normalise_value(e["alias"])} if e.get("alias") else set()
        )
        if v in names:
            aliases |= names
            if e is newest:
                aliases |= set(LATEST_REFS)
    return aliases


# ---- argument matching --------------------------------------------------------------------------
def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(map(str, value)).lower()
    return "" if value is None else str(value).lower()


def match_arg(arg: str, spec: Any, got: Any, state: Sequence[Mapping[str, Any]] | None = None) -> bool:
    """Does the predicted value `got` (None when absent and without default) satisfy `spec`?"""
    if isinstance(spec, dict):
        if "present" in spec:
            return (got not in (None, "", [], {})) == bool(spec["present"])
        if "contains" in spec:
            needles = spec["contains"] if isinstance(spec["contains"], list) else [spec["contains"]]
            return got is not None and all(str(n).lower() in _text(got) for n in needles)
        if "contains_any" in spec:
            return got is not None and any(str(n).lower() in _text(got) for n in spec["contains_any"])
        if "one_of" in spec:
            return any(match_arg(arg, option, got, state) for option in spec["one_of"])
        raise CaseError(f"arg {arg!r}: unknown matcher {spec}")
    if spec is None:
        return got is None
    if got is None:
        return False
    if isinstance(spec, list) and any(isinstance(s, dict) for s in spec):  # ["@2"] became [{"one_of": ...}]
        items = got if isinstance(got, list) else [got]
        return len(items) == len(spec) and all(
            match_arg(arg, s, g, state) for s, g in zip(spec, items, strict=True)
        )
    expected, predicted = normalise_value(spec), normalise_value(got)
    if arg in SPEC_LIST_ARGS:  # "learning_rate" and "lr" name one setting
        expected, predicted = _canonical_specs(expected), _canonical_specs(predicted)
    if isinstance(expected, list):
        if not isinstance(predicted, list):
            predicted = [predicted]
        if arg in UNORDERED_LIST_ARGS:
            canon = lambda xs: sorted(str(x).replace(" ", "") for x in xs)  # noqa: E731
            return canon(expected) == canon(predicted)
        return values_equal(expected, predicted)
    if isinstance(expected, str) and isinstance(predicted, str):
        return predicted in reference_aliases(arg, spec, state)
    return values_equal(expected, predicted)


# ---- classifying a reply ------------------------------------------------------------------------
def predicted_action(
    tool_calls: Sequence[Mapping[str, Any]] | None,
    answer: str | None,
    expected_action: str | None = None,
    reported_action: str | None = None,
) -> str:
    """Classify a reply as a tool name, "answer" or "clarify" (rules in the module docstring)."""
    if tool_calls:
        name = str(tool_calls[0].get("name", ""))
        return CLARIFY if name in CLARIFY_TOOL_NAMES else name
    if reported_action == CLARIFY:
        return CLARIFY
    text = (answer or "").strip()
    if text.lower().startswith(CLARIFY_MARKERS):
        return CLARIFY
    if "?" in text and expected_action == CLARIFY:
        return CLARIFY
    return ANSWER


def score_case(
    case: Mapping[str, Any],
    predicted_tool_calls: Sequence[Mapping[str, Any]] | None,
    answer_text: str | None,
    seconds: float | None = None,
    reported_action: str | None = None,
) -> dict[str, Any]:
    """Score one reply against one case.

    Args:
        case: a validated case (see module docstring).
        predicted_tool_calls: `[{"name": str, "args": dict}, ...]` in the order the agent made them.
        answer_text: the agent's text reply ("" when it only called tools).
        seconds: wall-clock latency of the reply, in seconds (None if unknown).
        reported_action: the action the agent itself reported, if it exposes one ("clarify").

    Returns:
        A dict with: id, category, split, request, expected (action + args), predicted_action,
        first_action_ok (bool), args_ok (bool, or None when the action was wrong or no key args are
        expected), ok (first action right and args not wrong), no_tool (bool), arg_errors
        ({arg: {"expected", "got"}}), tool_calls, answer (first 160 chars), seconds, and plan_ok when
        the case lists `expected_tools` (the predicted calls start with those tools; None when the
        reply shows fewer calls than the plan).
    """
    calls = [
        {"name": str(c.get("name", "")), "args": dict(c.get("args") or {})}
        for c in (predicted_tool_calls or [])
    ]
    expected = case["expected"]
    exp_action, exp_args = expected["action"], expected.get("args", {}) or {}
    action = predicted_action(calls, answer_text, exp_action, reported_action)
    first_ok = action == exp_action
    args_ok, errors = None, {}
    if first_ok and exp_action in TOOL_DEFAULTS and exp_args:
        got_args = effective_args(exp_action, calls[0]["args"])
        defaults = TOOL_DEFAULTS[exp_action]
        for arg, spec in exp_args.items():
            got = got_args.get(arg)
            if got is None:
                got = defaults.get(arg)
            if not match_arg(arg, spec, got, case.get("state")):
                shown = got_args.get(arg)
                if shown is None and defaults.get(arg) is not None:
                    shown = f"<default {defaults[arg]!r}>"
                errors[arg] = {"expected": spec, "got": shown}
        args_ok = not errors
    result = {
        "id": case["id"],
        "category": case["category"],
        "split": case.get("split", "dev"),
        "request": case["request"],
        "expected": {"action": exp_action, "args": exp_args},
        "predicted_action": action,
        "first_action_ok": first_ok,
        "args_ok": args_ok,
        "ok": first_ok and args_ok is not False,
        "no_tool": not calls,
        "arg_errors": errors,
        "tool_calls": calls,
        "answer": (answer_text or "")[:ANSWER_SNIPPET_CHARS],
        "seconds": seconds,
    }
    plan = case.get("expected_tools")
    if plan:
        names = [c["name"] for c in calls]
        result["plan_ok"] = names[: len(plan)] == list(plan) if len(names) >= len(plan) else None
    return result


# ---- multi-step tasks run for real --------------------------------------------------------------
def is_error_result(result: Any) -> bool:
    """A tool result that reports a failure (scratchlab tools start those with "Error")."""
    return isinstance(result, str) and result.lstrip().lower().startswith("error")


def score_multistep(
    task: Mapping[str, Any],
    executed_calls: Sequence[Mapping[str, Any]],
    answer: str = "",
    seconds: float | None = None,
) -> dict[str, Any]:
    """Did a real run carry a multi-step task through?

    Completed means the task's `expected_tools` occur in order (as a subsequence, so retries and extra
    look-ups are allowed) among the executed calls, counting only calls whose result (when the harness
    knows it, key "result") is not an error.

    Returns:
        dict with id, request, expected_tools, executed (names), completed (bool), missing (tools not
        reached), errors (count of error results), calls (name, args and result snippet of each call, to
        read why a task failed), answer (snippet), seconds.
    """
    plan = list(task["expected_tools"])
    good = [c["name"] for c in executed_calls if not is_error_result(c.get("result"))]
    i = 0
    for name in good:
        if i < len(plan) and name == plan[i]:
            i += 1
    return {
        "id": task["id"],
        "request": task["request"],
        "expected_tools": plan,
        "executed": [c["name"] for c in executed_calls],
        "completed": i == len(plan),
        "missing": plan[i:],
        "errors": sum(is_error_result(c.get("result")) for c in executed_calls),
        "calls": [
            {
                "name": c["name"],
                "args": c.get("args", {}),
                "result": str(c.get("result") or "")[:ANSWER_SNIPPET_CHARS],
            }
            for c in executed_calls
        ],  # fmt: skip
        "answer": (answer or "")[:ANSWER_SNIPPET_CHARS],
        "seconds": seconds,
    }


# ---- summaries ----------------------------------------------------------------------------------
def _rate(flags: Iterable[bool | None]) -> float | None:
    vals = [bool(f) for f in flags if f is not None]
    return round(sum(vals) / len(vals), 4) if vals else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (k - lo), 3)


def _row(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    secs = [r["seconds"] for r in results if r.get("seconds") is not None]
    tot = [r["total_seconds"] for r in results if r.get("total_seconds") is not None]
    with_args = [r for r in results if r["args_ok"] is not None]
    return {
        "n": len(results),
        "first_action": _rate(r["first_action_ok"] for r in results),
        "args": _rate(r["args_ok"] for r in with_args),
        "n_args": len(with_args),
        "action_and_args": _rate(r["ok"] for r in results),
        "no_tool": _rate(r["no_tool"] for r in results if r["category"] in NO_TOOL_CATEGORIES),
        "clarify_rate": _rate(
            r["predicted_action"] == CLARIFY for r in results if r["category"] in CLARIFY_CATEGORIES
        ),
        "median_s": round(statistics.median(secs), 3) if secs else None,
        "median_total_s": round(statistics.median(tot), 3) if tot else None,
        "p90_s": _percentile(secs, 0.9),
    }


def summarise(
    results: Sequence[Mapping[str, Any]], multistep: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Per-category and overall metrics.

    Metrics per row: n; first_action (share with the right first action); args (share with every key
    argument right, among cases with the right action and key args; n_args of them); action_and_args
    (share of all cases that are fully right); no_tool (share without a tool call, chitchat and general
    only); clarify_rate (share classified "clarify", underspecified only); median_s / p90_s (latency,
    seconds).

    Returns:
        {"categories": {category: row}, "overall": row, "targets": {...}, "meets": {...}} and, when
        multi-step results are given, "multistep": {"n", "completed", "completion_rate", "median_s"}.
    """
    by_cat: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        by_cat.setdefault(r["category"], []).append(r)
    cats = {c: _row(by_cat[c]) for c in CATEGORIES if c in by_cat}
    overall = _row(results)
    out: dict[str, Any] = {"categories": cats, "overall": overall, "targets": dict(TARGETS)}
    meets = {
        "first_action": overall["first_action"] is not None
        and overall["first_action"] >= TARGETS["first_action"],
        "action_and_args": overall["action_and_args"] is not None
        and overall["action_and_args"] >= TARGETS["action_and_args"],
        "no_tool": overall["no_tool"] is not None and overall["no_tool"] >= TARGETS["no_tool"],
        "median_s": overall["median_s"] is not None and overall["median_s"] <= TARGETS["median_s"],
    }
    if multistep is not None:
        secs = [m["seconds"] for m in multistep if m.get("seconds") is not None]
        done = sum(bool(m["completed"]) for m in multistep)
        out["multistep"] = {
            "n": len(multistep),
            "completed": done,
            "completion_rate": round(done / len(multistep), 4) if multistep else None,
            "median_s": round(statistics.median(secs), 3) if secs else None,
        }
        meets["multistep"] = bool(multistep) and done / len(multistep) >= TARGETS["multistep"]
    out["meets"] = meets
    return out


def failures(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The results that are not fully right, in input order."""
    return [r for r in results if not r["ok"]]


# ---- rendering ----------------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def render_markdown(summary: Mapping[str, Any], title: str = "Agent routing evaluation") -> str:
    """A markdown report: one table row per category plus the overall row and the target check."""
    lines = [
        f"## {title}",
        "",
        "| category | n | first action | key args (given right action) | action + args | no tool | clarify | median s (decision) | p90 s | median s (whole reply) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [*summary["categories"].items(), ("**all**", summary["overall"])]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['n']} | {_pct(r['first_action'])} | {_pct(r['args'])} ({r['n_args']}) | "
            f"{_pct(r['action_and_args'])} | {_pct(r['no_tool'])} | {_pct(r['clarify_rate'])} | "
            f"{_secs(r['median_s'])} | {_secs(r['p90_s'])} | {_secs(r.get('median_total_s'))} |"
        )
    ms = summary.get("multistep")
    if ms:
        lines += ["", f"Multi-step tasks run for real: {ms['completed']}/{ms['n']} completed "
                  f"({_pct(ms['completion_rate'])}), median {_secs(ms['median_s'])} s per task."]  # fmt: skip
    t, meets = summary["targets"], summary["meets"]
    checks = [
        f"first action >= {_pct(t['first_action'])}: {'yes' if meets['first_action'] else 'no'}",
        f"action + key args >= {_pct(t['action_and_args'])}: {'yes' if meets['action_and_args'] else 'no'}",
        f"no tool on chit-chat/general >= {_pct(t['no_tool'])}: {'yes' if meets['no_tool'] else 'no'}",
        f"median latency <= {t['median_s']} s: {'yes' if meets['median_s'] else 'no'}",
    ]
    if "multistep" in meets:
        checks.append(
            f"multi-step completion >= {_pct(t['multistep'])}: {'yes' if meets['multistep'] else 'no'}"
        )
    lines += ["", "Targets (issue 8): " + "; ".join(checks) + "."]
    return "\n".join(lines) + "\n"


def _short(value: Any, limit: int = 120) -> str:
    s = json.dumps(value, ensure_ascii=False)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def render_failures(results: Sequence[Mapping[str, Any]], title: str = "Failures") -> str:
    """A markdown list of every case that is not fully right: request, expected, got."""
    bad = failures(results)
    lines = [f"## {title} ({len(bad)} of {len(results)})", ""]
    for r in bad:
        got_call = r["tool_calls"][0] if r["tool_calls"] else None
        got = (
            f"{got_call['name']} {_short(got_call['args'])}"
            if got_call
            else f"{r['predicted_action']}: {_short(r['answer'], 100)}"
        )
        why = "wrong action" if not r["first_action_ok"] else "args " + _short(r["arg_errors"], 200)
        exp = r["expected"]
        lines.append(
            f'- `{r["id"]}` ({r["category"]}) "{r["request"]}"\n'
            f"  expected: {exp['action']} {_short(exp['args'])}\n  got: {got}\n  why: {why}"
        )
    return "\n".join(lines) + "\n"
