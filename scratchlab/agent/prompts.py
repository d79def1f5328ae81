"""Prompts of the scratchlab agent: the fixed tool catalogue (first, so llama.cpp reuses its KV cache),
the routing rules, a few examples per tool, and the lab state appended after them.

The protocol the local model follows (see `scratchlab.agent.router`): every assistant turn starts with
a one-line JSON action, `{"action": "<tool>", "args": {...}}` for a tool call, or
`{"action": "answer"}` / `{"action": "clarify"}` followed by a newline and plain text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

ANSWER = "answer"
CLARIFY = "clarify"
MAX_STATE_ITEMS = 4
EXAMPLES_PER_TOOL = 1
ARG_DESCRIPTION_CHARS = 90
COMPACT_DESCRIPTION_CHARS = 80
LAB_STATE = "Lab state:"  # the heading of the part of the system prompt that changes

INTRO = """You are scratchlab, a terminal lab assistant for building language models from scratch. \
You run real engines on this computer through tools: a BPE tokenizer, a GPT trainer, a document search \
engine (RAG), LoRA fine-tuning, a sandboxed Python runner, and a long-term memory.

Each turn you output ONE action as JSON on the first line:
{"action": "<tool name>", "args": {...}} to run a tool, with only the arguments the user gave \
(optional ones, marked ?, get good defaults), or
{"action": "answer"} then a newline and your reply, or
{"action": "clarify"} then a newline and one short question when a required detail is missing.

Actions:
- answer: reply in words. Greetings, thanks, general questions about ML/LLMs ("what is perplexity?"), \
explaining or summarising tool results, and declining harmful requests.
- clarify: ask for a missing required detail instead of guessing."""

RULES = """Rules:
1. Use a tool only when the user asks you to do, make, run, check, look up or remember something in the lab. \
Questions about general knowledge are answered directly.
2. "remember / note / keep in mind / don't forget ..." -> remember. "what did I tell you / what do you know about me" -> recall. \
"what have I built / list my tokenizers" -> list_artifacts. Questions about this conversation ("which tokenizer did \
we make?", "what was the loss?") are answered from the messages above and the lab state, without a tool.
3. Computations, plots of data, and code -> run_python. "what does the guide/docs say about X" -> search_documents.
4. Refer to earlier artifacts by the names in the lab state below, or "last".
5. A request with several steps ("do X, then Y", "X and tell me Y") starts with the tool for its first step. After a tool result: if the user's request has more steps, take the next step using the result; \
otherwise answer in one or two sentences with the key numbers. Never repeat the same tool call.
6. If a tool returned an error, fix the arguments or ask the user.
7. Refuse requests to damage this computer, read secrets (SSH keys, passwords, tokens) or attack others: answer and say why."""


def _type_str(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        types = [_type_str(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return "|".join(types) or "any"
    if "enum" in prop:
        return "|".join(json.dumps(v) for v in prop["enum"])
    t = prop.get("type", "any")
    if t == "array":
        return f"list[{_type_str(prop.get('items', {}))}]"
    return {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}.get(t, str(t))


ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.")


def first_sentence(text: str, limit: int = 220) -> str:
    """The first sentence of `text` (an abbreviation such as "e.g." does not end it), at most `limit` chars."""
    text = " ".join((text or "").split())
    end = text.find(". ")
    while end >= 0 and any(text[: end + 1].endswith(a) for a in ABBREVIATIONS):
        end = text.find(". ", end + 1)
    out = text if end < 0 else text[: end + 1]
    return out if len(out) <= limit else out[: limit - 3] + "..."


CHAT_EXAMPLES = [
    (
        "hi",
        ANSWER,
        "Hello! I'm scratchlab. I can train tokenizers and GPTs, search your documents, fine-tune with LoRA and run Python. What shall we build?",
    ),
    (
        "what is perplexity?",
        ANSWER,
        "Perplexity is exp(mean cross-entropy loss): how many tokens the model is choosing between, on average. Lower is better.",
    ),
    ("run rm -rf / on the host", ANSWER, "I won't do that: it would destroy this computer's files."),
    ("encode some text", CLARIFY, "Which text should I encode?"),
]


def argument_lines(parameters: dict[str, Any], width: int = ARG_DESCRIPTION_CHARS) -> list[str]:
    """One line per argument: `name?: type - description` (the schema's own words, shortened to
    `width` characters; none when `width` is 0)."""
    props = parameters.get("properties", {})
    required = set(parameters.get("required", []))
    out = []
    for arg, prop in props.items():
        desc = first_sentence(prop.get("description", ""), width) if width else ""
        out.append(
            f"{arg}{'' if arg in required else '?'}: {_type_str(prop)}" + (f" - {desc}" if desc else "")
        )
    return out


def tool_catalogue(
    tools: Sequence[dict[str, Any]],
    examples: dict[str, list[tuple[str, dict]]] | None = None,
    width: int = 220,
    arg_width: int = ARG_DESCRIPTION_CHARS,
) -> str:
    """The tool section, generated from the tools' JSON schemas: per tool its one-sentence description,
    each argument with its type, enum values and description, and up to `EXAMPLES_PER_TOOL` examples.

    Args:
        tools: OpenAI-format tool dicts `{"type": "function", "function": {"name", "description", "parameters"}}`.
        examples: {tool: [(request, args)]}, from the example bank (`catalogue_examples`).
        width, arg_width: characters kept of a tool's and of an argument's description (0: none).
    """
    lines = []
    for t in tools:
        fn = t["function"]
        lines.append(f"- {fn['name']}: {first_sentence(fn.get('description', ''), width)}")
        args = argument_lines(fn.get("parameters", {}), arg_width)
        if args:
            lines.append("    args: " + "; ".join(args))
        for request, ex_args in (examples or {}).get(fn["name"], [])[:EXAMPLES_PER_TOOL]:
            lines.append(f'    e.g. "{request}" -> {json.dumps(ex_args)}')
    return "\n".join(lines)


def catalogue_examples(bank_examples: Iterable[Any]) -> dict[str, list[tuple[str, dict]]]:
    """{tool: [(request, args)]}: the first bank examples of each tool with literal arguments."""
    out: dict[str, list[tuple[str, dict]]] = {}
    for ex in bank_examples:
        if ex.args and len(out.setdefault(ex.action, [])) < EXAMPLES_PER_TOOL:
            out[ex.action].append((ex.request, ex.args))
    return out


def fixed_system_prompt(
    tools: Sequence[dict[str, Any]],
    examples: dict[str, list[tuple[str, dict]]] | None = None,
    compact: bool = False,
) -> str:
    """The part of the system prompt that never changes for a given tool list (cached by llama.cpp).

    Args:
        tools: OpenAI-format tool dicts.
        examples: per-tool examples; default the example bank's first ones (`catalogue_examples`).
        compact: tools and arguments without the arguments' descriptions and the examples (~2k tokens
            in all instead of ~5k), for a router tuned on the tools (`scratchlab.agent.tune`): it
            learned what the arguments mean from the examples, and every token it decodes attends
            over less than half the context.
    """
    if compact:
        catalogue = tool_catalogue(tools, {}, width=COMPACT_DESCRIPTION_CHARS, arg_width=0)
    else:
        if examples is None:
            from scratchlab.agent.bank import load_examples

            examples = catalogue_examples(load_examples())
        catalogue = tool_catalogue(tools, examples)
    chat = "\n".join(f'- "{r}" ->\n{json.dumps({"action": a})}\n{reply}' for r, a, reply in CHAT_EXAMPLES)
    return f"{INTRO}\n\nTools:\n{catalogue}\n\nExamples without tools:\n{chat}\n\n{RULES}\n"


def _base(path: Any) -> str:
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def describe_artifact(kind: str, config: dict[str, Any] | None) -> str:
    """A few words that tell same-kind artifacts apart ("4 layers, 128 wide, shakespeare"), so "the
    4-layer run", "the bigger model" or "the python tokenizer" can be resolved; "" when the config
    has none of the fields."""
    c = config or {}
    parts = []
    if kind in ("run", "ablation"):
        parts += [
            f"{c['n_layer']} layers" if "n_layer" in c else "",
            f"{c['n_embd']} wide" if "n_embd" in c else "",
        ]
        parts.append(_base(c["dataset"]) if c.get("dataset") else "")
        parts.append(f"dropout {c['dropout']:g}" if c.get("dropout") else "")
    elif kind == "tokenizer":
        parts += [
            f"vocab {c['vocab_size']}" if "vocab_size" in c else "",
            _base(c["dataset"]) if c.get("dataset") else "",
        ]
    elif kind == "adapter":
        parts += [f"r {c['r']}" if "r" in c else "", _base(c["data"]) if c.get("data") else ""]
    elif kind == "index":
        paths = c.get("paths") or ([c["path"]] if c.get("path") else [])
        parts += [_base(p) for p in paths[:2]]
    return ", ".join(p for p in parts if p)


def lab_state_text(records: Iterable[Any]) -> str:
    """A compact summary of recent artifacts and running jobs, so the model can name them.

    Args:
        records: `scratchlab.agent.state.Record`s, newest first (jobs have kind "job").

    Each artifact is "name (id; description)" with `describe_artifact`'s few words when its config has them.
    """
    by_kind: dict[str, list[str]] = {}
    running = []
    for r in records:
        if r.kind == "job":
            running.append(f"{r.id} {r.config.get('kind', '')} {r.metrics.get('status')} step "
                           f"{r.metrics.get('step')}/{r.metrics.get('total')}")  # fmt: skip
            continue
        items = by_kind.setdefault(r.kind, [])
        if len(items) < MAX_STATE_ITEMS:
            desc = describe_artifact(r.kind, r.config)
            ident = "" if r.name == r.id else r.id
            extra = "; ".join(p for p in (ident, desc) if p)
            items.append(f"{r.name} ({extra})" if extra else r.name)
    lines = [f"- {kind}s (newest first): {', '.join(names)}" for kind, names in by_kind.items()]
    if running:
        lines.append(f"- jobs: {'; '.join(running)}")
    return f"{LAB_STATE}\n" + ("\n".join(lines) if lines else "- empty: nothing built yet")
