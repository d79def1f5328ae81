"""The router-tuning training set: example-bank rows rendered exactly as the runtime renders a decision.

    from scratchlab.agent.tune_data import build_records
    records = build_records(tools, load_examples(), n_augment=2, seed=0)   # chat records for the LoRA engine

Every record is the conversation the local model sees when it decides (`ChatLocalLlama.decide`):
- system: the fixed tool catalogue (`prompts.fixed_system_prompt`, from the tools' schemas) plus the
  lab-state text (`prompts.lab_state_text`) of an empty or a synthetic registry;
- user: the request as `router.render_chatml` writes it (`router.normalise_request`);
- assistant (the target): a tool call as `router.render_assistant` writes it,
  `{"action": "train_gpt", "args": {"n_layer": 4}}` (arguments in schema order, only those the request
  states, which is what the argument grammar lets the model write), or `{"action": "answer"}` and the
  newline the runtime puts after it. An answer target carries `"stop": false` (`training.lora_data`): the
  reply that follows is the model's own, so its end-of-turn token is not trained (that would teach the
  model to answer with nothing).
Bank rows labelled `clarify` are left out: the runtime never lets the model pick `clarify`; questions
back come from the schema.

Augmentations keep every label correct: a number or enum value the request states literally (once) is
swapped in request and arguments alike for another value the schema allows; an artifact name the
request states is swapped for a name from a synthetic registry, which also fills the lab state.
Optionally, the workspace's accepted turns (`accepted_turns`) are added as they were rendered.

Reference: self-instruct style data from a tool schema (Wang et al. 2023); xLAM/APIGen's
function-calling data (Liu et al. 2024) verifies every generated call against the schema, as here.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from scratchlab.agent.bank import Example, tokens
from scratchlab.agent.prompts import ANSWER, CLARIFY, fixed_system_prompt, lab_state_text
from scratchlab.agent.router import IM_END, IM_START, normalise_request, render_assistant, render_chatml
from scratchlab.agent.state import Record
from scratchlab.tools.base import CANCELLED_RESULT

SYNTHETIC_NAMES = {
    "tokenizer": ("bpe-notes", "tok-poems", "code512", "wikitok", "tinybpe"),
    "run": ("gpt-small", "poet-4l", "wiki-gpt", "run-a", "baseline"),
    "index": ("guide-index", "papers", "notes-idx"),
    "adapter": ("qa-adapter", "router-lora", "wiki-tune"),
}
NAME_ARGS = ("tokenizer", "run", "adapter", "index", "base", "name")
MAX_LAB_ITEMS = 3  # artifacts in a synthetic registry


def tool_call_text(action: str, args: dict[str, Any], parameters: dict[str, Any]) -> str:
    """The runtime's own rendering of a tool call, arguments in schema order: `{"action": ..., "args": {...}}`."""
    order = list(parameters.get("properties", {}))
    ordered = {k: args[k] for k in sorted(args, key=lambda k: order.index(k) if k in order else len(order))}
    return render_assistant(AIMessage(content="", tool_calls=[{"name": action, "args": ordered, "id": "t"}]))


def answer_text() -> str:
    """What precedes a reply at run time: the answer action and a newline (`ChatLocalLlama.decide`)."""
    return render_assistant(AIMessage(content="", additional_kwargs={"action": ANSWER}))


def decision_record(system: str, request: str, target: str, stop: bool) -> dict[str, Any]:
    """One chat record of the LoRA engine (see module docstring)."""
    assistant: dict[str, Any] = {"role": "assistant", "content": target}
    if not stop:
        assistant["stop"] = False
    return {"messages": [{"role": "system", "content": system},
                         {"role": "user", "content": normalise_request(request)}, assistant]}  # fmt: skip


def catalogue_prefix(tools: Sequence[dict[str, Any]], compact: bool = False) -> str:
    """The text every decision prompt starts with: the system turn up to the lab state, as the runtime
    warms it (`ChatLocalLlama.warm_start`). The tune computes it with the base (`training.lora_prefix`)."""
    return f"{IM_START}system\n" + fixed_system_prompt(list(tools), compact=compact).rstrip()


def runtime_prompt(system: str, request: str) -> str:
    """The text the runtime feeds llama.cpp before its action (`ChatLocalLlama._fit`), for checks."""
    msgs: list[BaseMessage] = [SystemMessage(system), HumanMessage(request)]
    return render_chatml(msgs) + f"{IM_START}assistant\n"


def synthetic_registry(rng: random.Random, n: int | None = None) -> list[Record]:
    """A few made-up artifacts (newest first), as the lab state shows them."""
    n = rng.randint(0, MAX_LAB_ITEMS) if n is None else n
    recs = []
    for i in range(n):
        kind = rng.choice(sorted(SYNTHETIC_NAMES))
        name = rng.choice(SYNTHETIC_NAMES[kind])
        config = {"n_layer": rng.choice([1, 2, 4, 6]), "dataset": "shakespeare"} if kind == "run" else {}
        recs.append(Record(id=f"{kind}-{n - i}", kind=kind, name=name, config=config))
    return recs


def _bounds(prop: dict[str, Any]) -> dict[str, Any]:
    for alt in prop.get("anyOf", []):
        if alt.get("type") in ("integer", "number", "string") or "enum" in alt:
            return alt
    return prop


def _swap_value(value: Any, prop: dict[str, Any], rng: random.Random) -> Any:
    """Another value the schema allows in place of `value`, or None when there is no safe one."""
    p = _bounds(prop)
    if "enum" in p and value in p["enum"]:
        others = [v for v in p["enum"] if v != value and isinstance(v, str)]
        return rng.choice(others) if others else None
    if p.get("type") == "integer" and isinstance(value, int) and not isinstance(value, bool):
        lo = max(p.get("minimum", p.get("exclusiveMinimum", 0) + 1), 1)
        hi = p.get("maximum", max(4 * value, 8))
        hi = min(hi, max(4 * value, lo + 8))
        lo = max(lo, value // 4)
        cands = [v for v in range(lo, hi + 1) if v != value and str(v) != str(value)]
        if not cands:
            return None
        v = rng.choice(cands)
        if value % 100 == 0 and v >= 100:
            v = max(100, round(v, -2))  # round numbers stay round ("2000 steps" -> "3000 steps")
        return v if v != value else None
    return None


def augment(ex: Example, parameters: dict[str, Any], rng: random.Random) -> tuple[str, dict[str, Any]] | None:
    """A label-preserving variant (request, args) of a tool example, or None when nothing can be swapped."""
    request, args = ex.request, dict(ex.args)
    props = parameters.get("properties", {})
    changed = False
    for arg, value in ex.args.items():
        if arg not in props or isinstance(value, bool):
            continue
        text = str(value)
        if arg in NAME_ARGS and isinstance(value, str) and value not in ("last", "latest"):
            kind = arg if arg in SYNTHETIC_NAMES else None
            new = rng.choice(SYNTHETIC_NAMES[kind]) if kind else None
        else:
            new = _swap_value(value, props[arg], rng)
        if new is None or (not isinstance(new, str) and str(new) in tokens(ex.request) + tokens(request)):
            continue  # a number written already, or swapped out: the label would be unsure
        pattern = re.compile(rf"(?<![\w.-]){re.escape(text)}(?![\w-]|\.\d)")
        if len(pattern.findall(request)) != 1 or len(pattern.findall(normalise_request(request))) != 1:
            continue  # stated more than once, or not literally (2k): the label would be unsure
        if not isinstance(value, str) and tokens(request).count(text) != 1:
            continue  # "a 4-layer GPT, 2 or 4 heads": the number also stands for another setting
        request = pattern.sub(str(new), request)
        args[arg] = new
        changed = True
    return (request, args) if changed else None


def empty_system(tools: Sequence[dict[str, Any]], compact: bool = False) -> str:
    """The runtime's system prompt for `tools` with an empty lab."""
    return fixed_system_prompt(list(tools), compact=compact) + "\n" + lab_state_text([])


def build_records(
    tools: Sequence[dict[str, Any]],
    examples: Iterable[Example],
    n_augment: int = 1,
    seed: int = 0,
    lab_states: bool = True,
    extra: Iterable[dict[str, Any]] = (),
    compact: bool = False,
) -> list[dict[str, Any]]:
    """Chat records for `scratchlab.training.lora` from bank examples (see module docstring).

    Args:
        tools: the OpenAI-format tools the runtime binds (their schemas give catalogue and targets).
        examples: labelled bank rows (`scratchlab.agent.bank.load_examples`).
        n_augment: label-preserving variants tried per tool example.
        seed: random seed of the augmentations and synthetic registries.
        lab_states: give each variant a synthetic lab state (the originals get the empty lab).
        extra: further records (e.g. `accepted_turns`), appended as they are.
        compact: the one-line-per-tool catalogue (`prompts.fixed_system_prompt(compact=True)`).

    Returns:
        A list of `{"messages": [system, user, assistant]}` records; each example once with the empty
        lab, plus its variants.
    """
    rng = random.Random(seed)
    fixed = fixed_system_prompt(list(tools), compact=compact)
    params = {t["function"]["name"]: t["function"].get("parameters", {}) for t in tools}
    empty = empty_system(tools, compact)
    out = []
    for ex in examples:
        if ex.action == CLARIFY or (ex.action != ANSWER and ex.action not in params):
            continue
        if ex.action == ANSWER:
            out.append(decision_record(empty, ex.request, answer_text(), stop=False))
            for _ in range(n_augment if lab_states else 0):
                system = (
                    fixed + "\n" + lab_state_text(synthetic_registry(rng, n=rng.randint(1, MAX_LAB_ITEMS)))
                )
                out.append(decision_record(system, ex.request, answer_text(), stop=False))
            continue
        p = params[ex.action]
        out.append(decision_record(empty, ex.request, tool_call_text(ex.action, ex.args, p), stop=True))
        for _ in range(n_augment):
            var = augment(ex, p, rng)
            request, args = var if var else (ex.request, ex.args)
            system = fixed + "\n" + lab_state_text(synthetic_registry(rng) if lab_states else [])
            if var is None and system == empty:
                continue
            out.append(decision_record(system, request, tool_call_text(ex.action, args, p), stop=True))
    out.extend(extra)
    return out


def chat_roles(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """{role, content} pairs cut from the runtime's own ChatML (`router.render_chatml`), so a chat
    template renders the same text (tool results become user turns, as the runtime writes them)."""
    out = []
    for m in messages:
        text = render_chatml([m])
        if not text:
            continue
        role, content = text[len(IM_START) :].split("\n", 1)
        out.append({"role": role, "content": content.removesuffix(f"{IM_END}\n")})
    return out


def accepted_turns(threads: Iterable[Sequence[BaseMessage]], system: str) -> list[dict[str, Any]]:
    """Decision records from past conversations: each tool call that answered a user message and that
    the user let run (every result neither an error nor declined), with the conversation before it.

    Args:
        threads: each conversation's messages (LangGraph thread state, without the system message).
        system: the system prompt to put first (the lab state at the time is not kept: the empty lab's).
    """
    out = []
    for msgs in threads:
        for i, m in enumerate(msgs):
            if (
                not (isinstance(m, AIMessage) and m.tool_calls)
                or i == 0
                or not isinstance(msgs[i - 1], HumanMessage)
            ):
                continue
            results = [x for x in msgs[i + 1 : i + 1 + len(m.tool_calls)] if isinstance(x, ToolMessage)]
            if len(results) != len(m.tool_calls) or any(
                str(r.content).startswith(("Error", CANCELLED_RESULT)) for r in results
            ):
                continue
            target = {"role": "assistant", "content": render_assistant(m)}
            out.append({"messages": [{"role": "system", "content": system}, *chat_roles(msgs[:i]), target]})
    return out


def write_records(records: Sequence[dict[str, Any]], path: Any) -> None:
    """Write records as JSONL, atomically."""
    from scratchlab.lab.atomic import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
