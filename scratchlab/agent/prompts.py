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


def signature(name: str, parameters: dict[str, Any], defaults: bool = False) -> str:
    """`train_gpt(dataset?: str, n_layer?: int, ...)` from a JSON schema ("?" marks optional arguments).

    Defaults are left out unless asked for: a model that sees them copies them into every call,
    which costs tokens and drowns the arguments the user actually gave.
    """
    props = parameters.get("properties", {})
    required = set(parameters.get("required", []))
    parts = []
    for arg, prop in props.items():
        opt = "" if arg in required else "?"
        s = f"{arg}{opt}: {_type_str(prop)}"
        if defaults and opt:
            s += f" = {json.dumps(prop.get('default'))}"
        parts.append(s)
    return f"{name}({', '.join(parts)})"


def first_sentence(text: str, limit: int = 220) -> str:
    text = " ".join((text or "").split())
    end = text.find(". ")
    out = text if end < 0 else text[: end + 1]
    return out if len(out) <= limit else out[: limit - 3] + "..."


# One or two short examples per tool: request -> arguments. They help the 0.5B model a lot.
EXAMPLES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "train_tokenizer": [
        (
            "train a BPE tokenizer with 512 tokens on shakespeare",
            {"dataset": "shakespeare", "vocab_size": 512},
        ),
        ("make me a 1024-token BPE vocab from notes.txt", {"dataset": "notes.txt", "vocab_size": 1024}),
    ],
    "encode_text": [
        ("encode 'To be or not to be' with it", {"text": "To be or not to be", "tokenizer": "last"})
    ],
    "decode_tokens": [("decode 72 101 108 with bpe512", {"ids": [72, 101, 108], "tokenizer": "bpe512"})],
    "compare_tokenizers": [("how does my tokenizer compare to GPT-4's?", {"tokenizer": "last"})],
    "train_gpt": [
        (
            "train a 4-layer GPT on shakespeare for 2000 steps with 6 heads",
            {"dataset": "shakespeare", "n_layer": 4, "n_head": 6, "max_iters": 2000},
        ),
    ],
    "sample_gpt": [
        ("show me a sample from the last run starting with ROMEO:", {"run": "last", "prompt": "ROMEO:"})
    ],
    "ablate_gpt": [
        (
            "which matters more, layer norm or residuals? run an ablation",
            {"switches": ["no_layernorm", "no_residual"]},
        )
    ],
    "job_status": [("how is my training going?", {})],
    "cancel_job": [("stop job-3", {"job_id": "job-3"})],
    "list_runs": [("list my GPT runs", {})],
    "index_documents": [("index the docs in ../shared/seeds", {"path": "../shared/seeds"})],
    "search_documents": [("what does the guide say about QLoRA?", {"query": "QLoRA"})],
    "finetune_lora": [
        ("fine-tune the last GPT with LoRA rank 4 on qa.jsonl", {"base": "last", "data": "qa.jsonl", "r": 4})
    ],
    "merge_lora": [("merge that adapter into the base", {"adapter": "last"})],
    "generate_with_adapter": [("ask the tuned model: what is BPE?", {"prompt": "what is BPE?"})],
    "run_python": [
        ("is 1000003 prime?", {"code": "n=1000003\nprint(all(n % d for d in range(2, int(n**0.5)+1)))"}),
    ],
    "remember": [("note for later: I prefer 6-layer models", {"fact": "The user prefers 6-layer models."})],
    "recall": [("what did I tell you about my preferences?", {"query": "preferences"})],
    "list_artifacts": [("what have I built so far?", {})],
}

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


def tool_catalogue(tools: Sequence[dict[str, Any]]) -> str:
    """The tool section: one signature + one-sentence description + examples per tool.

    Args:
        tools: OpenAI-format tool dicts `{"type": "function", "function": {"name", "description", "parameters"}}`.
    """
    lines = []
    for t in tools:
        fn = t["function"]
        lines.append(
            f"- {signature(fn['name'], fn.get('parameters', {}))}: {first_sentence(fn.get('description', ''))}"
        )
        for request, args in EXAMPLES.get(fn["name"], [])[:2]:
            lines.append(f'    e.g. "{request}" -> {json.dumps(args)}')
    return "\n".join(lines)


def fixed_system_prompt(tools: Sequence[dict[str, Any]]) -> str:
    """The part of the system prompt that never changes for a given tool list (cached by llama.cpp)."""
    chat = "\n".join(f'- "{r}" ->\n{json.dumps({"action": a})}\n{reply}' for r, a, reply in CHAT_EXAMPLES)
    return f"{INTRO}\n\nTools:\n{tool_catalogue(tools)}\n\nExamples without tools:\n{chat}\n\n{RULES}\n"


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


def lab_state_text(artifacts: Iterable[Any], jobs: Iterable[Any] = ()) -> str:
    """A compact summary of recent artifacts and running jobs for "the last run", "that tokenizer".

    Each artifact is "name (id; description)" with `describe_artifact`'s few words when its config has them.
    """
    by_kind: dict[str, list[str]] = {}
    for a in artifacts:
        items = by_kind.setdefault(a.kind, [])
        if len(items) < MAX_STATE_ITEMS:
            desc = describe_artifact(a.kind, getattr(a, "config", None))
            ident = "" if a.name == a.id else a.id
            extra = "; ".join(p for p in (ident, desc) if p)
            items.append(f"{a.name} ({extra})" if extra else a.name)
    lines = [f"- {kind}s (newest first): {', '.join(names)}" for kind, names in by_kind.items()]
    running = [
        f"{j.id} {j.kind} {j.status} step {j.step}/{j.total}"
        for j in jobs
        if j.status in ("queued", "running")
    ]
    if running:
        lines.append(f"- jobs: {'; '.join(running)}")
    return "Lab state:\n" + ("\n".join(lines) if lines else "- empty: nothing built yet")
