"""Routing for small local models: ChatML rendering, action/argument grammars, deterministic grounding.

The local model decides in two constrained stages (measured in ../shared/notes/agent-routing.md):
1. the action name, generated under a GBNF grammar that admits only `answer`, `clarify` or a bound
   tool's name (a few tokens, so chit-chat costs well under a second);
2. for a tool, only that tool's arguments, under a grammar built from its JSON schema with optional
   arguments nullable (so the grammar never forces the model to invent values).
Then `ground_args` drops values that the conversation does not support (numbers that do not occur,
strings that share no word with the request), and `missing_required` turns an unsupported required
argument into a clarifying question instead of a guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from scratchlab.agent.prompts import ANSWER, CLARIFY
from scratchlab.models.bpe_compare import REFERENCE_NAMES

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
ACTION_PREFIX = '{"action": "'
FREE_TEXT_ARGS = {"code", "fact"}  # written by the model, not copied from the request
NAME_ARGS = {"name"}  # names of new artifacts: kept only when the request spells them out
REFERENCE_VALUES = {"last", "latest", "newest", "recent"}
NO_WAIT_WORDS = ("background", "don't wait", "do not wait", "detach", "return at once", "right away")
GENERIC_WORDS = {
    "the", "and", "for", "with", "from", "that", "this", "them", "then", "into", "onto", "what", "which",
    "model", "models", "file", "files", "data", "please", "make", "train", "trained", "run", "runs", "new",
    "text", "some", "one", "two", "my", "me", "it", "its", "a", "an", "of", "on", "to", "in", "is", "be",
}  # fmt: skip
NUMBER_RE = re.compile(r"(?<![\w.])(-?(?:\d[\d,_]*(?:\.\d+)?|\.\d+)(?:e-?\d+)?)(?:\s*([kKmM])(?![a-zA-Z]))?")
SHORTHAND = [  # applied to the user's words before the local model reads them (and to grounding)
    (
        re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?[kK](?![a-zA-Z])"),
        lambda m: str(int(round(float(m[1]) * 1000))),
    ),
    (re.compile(r"(?<![\w.])(\d+)\s?L\b"), lambda m: f"{m[1]} layers"),
    (re.compile(r"(?<![\w.])(\d+)\s?H\b"), lambda m: f"{m[1]} heads"),
    (re.compile(r"\btoks\b"), lambda m: "tokens"),
    (re.compile(r"\btemp\b"), lambda m: "temperature"),
    (re.compile(r"\biters\b"), lambda m: "iterations"),
]
WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
TOOL_RESULT_CHARS = 1200
MAX_STRING_CHARS = 240  # non-free-text string arguments are capped in the grammar too
MAX_LIST_ITEMS = 16  # list arguments are capped in the grammar (a small model can loop on a list)


# ---- prompt rendering ---------------------------------------------------------------------------
def render_assistant(msg: AIMessage) -> str:
    if msg.tool_calls:
        return "\n".join(json.dumps({"action": tc["name"], "args": tc["args"]}) for tc in msg.tool_calls)
    kind = (msg.additional_kwargs or {}).get("action", ANSWER)
    kind = kind if kind in (ANSWER, CLARIFY) else ANSWER
    content = msg.content if isinstance(msg.content, str) else str(msg.content)
    return f'{{"action": "{kind}"}}\n{content}'


def render_chatml(messages: Sequence[BaseMessage]) -> str:
    """ChatML (Qwen2.5, SmolLM2) for a message list, ending before the next assistant turn."""
    out = []
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append(f"{IM_START}system\n{m.content}{IM_END}\n")
        elif isinstance(m, HumanMessage):
            out.append(f"{IM_START}user\n{normalise_request(str(m.content))}{IM_END}\n")
        elif isinstance(m, AIMessage):
            out.append(f"{IM_START}assistant\n{render_assistant(m)}{IM_END}\n")
        elif isinstance(m, ToolMessage):
            content = m.content if isinstance(m.content, str) else json.dumps(m.content)
            if len(content) > TOOL_RESULT_CHARS:
                content = content[:TOOL_RESULT_CHARS] + " ...[truncated]"
            out.append(
                f'{IM_START}user\n<tool_response name="{m.name}">\n{content}\n</tool_response>{IM_END}\n'
            )
    return "".join(out)


# ---- grammars -----------------------------------------------------------------------------------
def action_grammar(names: Sequence[str]) -> str:
    """GBNF admitting exactly one of `names` followed by the closing quote."""
    alts = " | ".join(json.dumps(n) for n in names)
    return f'root ::= ({alts}) "\\""\n'


def nullable_schema(parameters: dict[str, Any], all_required: bool = False) -> dict[str, Any]:
    """Copy of a tool's JSON schema where every optional property may be null (or left out).

    Nullable optionals let the model say "not given" instead of inventing a value (a grammar that
    forces a value made a model write max_iters 10^15). By default optional properties may also be
    omitted, so the model can close the object after the arguments the request mentions, which saves
    most of the argument tokens; `all_required=True` forces every property to be written (as null
    when not given). Defaults are filled in code afterwards.
    """
    schema = json.loads(json.dumps(parameters))
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    for name, prop in props.items():
        prop.pop("default", None)
        prop.pop("title", None)
        if prop.get("type") == "array":
            prop.setdefault("maxItems", MAX_LIST_ITEMS)
        if prop.get("type") == "string" and name not in FREE_TEXT_ARGS:
            prop.setdefault("maxLength", MAX_STRING_CHARS)
        if name not in required and not _admits_null(prop):
            props[name] = {"anyOf": [prop, {"type": "null"}]}
    if all_required:
        schema["required"] = list(props)
    schema.pop("title", None)
    schema.pop("description", None)
    schema["additionalProperties"] = False
    return schema


def _admits_null(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(p.get("type") == "null" for p in prop.get("anyOf", []))


_CHAR_RULE_FIX = (
    re.compile(r'char ::= \[\^"\\\\(?:\\x7F\\x00-\\x1F)?\]'),
    r'char ::= [^"\\\\\\x7F\\x00-\\x1F]',
)


def args_grammar(parameters: dict[str, Any]) -> str:
    """GBNF for a tool's argument object (nullable optionals), with control characters excluded."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(nullable_schema(parameters)))
    return _CHAR_RULE_FIX[0].sub(_CHAR_RULE_FIX[1], gbnf)


# ---- grounding ----------------------------------------------------------------------------------
def numbers_in(text: str) -> set[float]:
    """Numbers mentioned in `text`, with shorthand expanded ("2k" -> 2000, "1,000" -> 1000)."""
    found: set[float] = set()
    for num, suffix in NUMBER_RE.findall(text):
        try:
            v = float(num.replace(",", "").replace("_", ""))
        except ValueError:
            continue
        if suffix:
            v *= 1_000 if suffix.lower() == "k" else 1_000_000
        found.add(v)
    return found


def normalise_request(text: str) -> str:
    """Expand shorthand the small models misread: "2k" -> "2000", "4L" -> "4 layers", "6H" -> "6 heads"."""
    for pattern, repl in SHORTHAND:
        text = pattern.sub(repl, text)
    return text


def words_in(text: str) -> set[str]:
    return {w.lower() for w in WORD_RE.findall(text) if len(w) >= 2}


ID_RE = re.compile(r"^(job|run|tokenizer|index|adapter)-\d+$")  # registry ids: only as written


def _string_supported(value: str, words: set[str], text_lower: str) -> bool:
    v = value.strip().lower()
    if not v:
        return False
    if v in text_lower:
        return True
    if ID_RE.match(v):  # "stop the job" does not name job-3
        return False
    vwords = {w for w in words_in(v) if w not in GENERIC_WORDS and len(w) >= 3}
    if not vwords:
        return False
    for vw in vwords:
        for w in words:
            if len(w) >= 3 and w not in GENERIC_WORDS and (vw in w or w in vw):
                return True
    return False


def _value_supported(value: Any, nums: set[float], words: set[str], text_lower: str) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return float(value) in nums
    if isinstance(value, str):
        return _string_supported(value, words, text_lower)
    if isinstance(value, list):
        return bool(value) and all(_value_supported(v, nums, words, text_lower) for v in value)
    return True


def ground_args(
    args: dict[str, Any], context: str, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Keep only argument values that `context` (the request and this turn's tool results) supports.

    Nulls are dropped; numbers must occur in the context; strings must occur or share a non-generic
    word with it; "last" is kept only for reference arguments (those whose default is "last");
    free-text arguments the model writes (`code`, `fact`) are kept as they are.
    """
    nums, words, low = numbers_in(context), words_in(context), context.lower()
    props = (parameters or {}).get("properties", {})
    out = {}
    for k, v in args.items():
        if v is None:
            continue
        is_ref = str(props.get(k, {}).get("default", "")).lower() in REFERENCE_VALUES
        if isinstance(v, str) and v.strip().lower() in REFERENCE_VALUES:
            if is_ref:
                out[k] = v
            continue
        if isinstance(v, bool):  # a flag counts only when the request talks about it
            if k.replace("_", " ") in low or (k == "wait" and not v and any(w in low for w in NO_WAIT_WORDS)):
                out[k] = v
            continue
        if k in NAME_ARGS and isinstance(v, str) and v.strip().lower() not in low:
            continue  # a name the user did not give: the tool picks a unique one (an invented one can clash)
        if k in FREE_TEXT_ARGS or _value_supported(v, nums, words, low):
            out[k] = v
    return out


REFERENCE_KINDS = {
    "tokenizer": "tokenizer",
    "adapter": "adapter",
    "index": "index",
    "run": "run",
    "base": "run",
}
# Names that resolve without being in the lab.
BUILTIN_NAMES = {"tokenizer": REFERENCE_NAMES}
OLDEST_RE = re.compile(r"\b(older|oldest|earlier|earliest|first)\b", re.IGNORECASE)
JOBS_LINE_RE = re.compile(r"^- jobs: (.+)$", re.MULTILINE)
# "cancel the running job", "how is my job doing": the one running job, when there is exactly one.
THE_JOB_RE = re.compile(r"\b(the|my|that|this)\s+((current|running|active|training)\s+)?job\b", re.IGNORECASE)
LAB_STATE_LINE_RE = re.compile(r"^- (\w+?)s \(newest first\): (.+)$", re.MULTILINE)


STATE_ITEM_RE = re.compile(r"([^,(]+?)(?: \(([^()]*)\))?(?:, |$)")
BIGGER_RE = re.compile(r"\b(bigger|biggest|larger|largest|deeper|deepest|wider|widest)\b", re.IGNORECASE)
SMALLER_RE = re.compile(r"\b(smaller|smallest|tinier|tiniest|shallower|shallowest)\b", re.IGNORECASE)
N_LAYER_RE = re.compile(r"\b(\d+)[- ]?(?:layers?|l)\b", re.IGNORECASE)
SIZE_RE = re.compile(r"(\d+) (layers|wide)|vocab (\d+)")
COUNT_PHRASE_RE = re.compile(  # numbers that count the work asked for, not describe an artifact
    r"\d[\d.,]*\s*[kK]?\s*(more\s+|new\s+)?(steps?|iters?|iterations|its|tokens|toks|chars|characters|lines|words|results"
    r"|times|epochs|samples)\b",
    re.IGNORECASE,
)
DESCRIPTION_WORDS = {
    "layers",
    "wide",
    "vocab",
    "txt",
    "jsonl",
    "json",
    "md",
    "src",
    "data",
}  # not distinctive


def lab_state_details(system_text: str) -> dict[str, list[tuple[str, str]]]:
    """(name, description) of each artifact per kind from the "Lab state:" part of the system prompt
    (newest first); the description is what `prompts.describe_artifact` wrote, "" when none."""
    state = system_text.split("Lab state:", 1)[-1] if "Lab state:" in system_text else ""
    out: dict[str, list[tuple[str, str]]] = {}
    for kind, items in LAB_STATE_LINE_RE.findall(state):
        found = []
        for name, extra in STATE_ITEM_RE.findall(items):
            parts = [p.strip() for p in extra.split(";")] if extra else []
            desc = parts[-1] if parts and not ID_RE.match(parts[-1]) else ""
            found.append((name.strip(), desc))
        out[kind] = found
    return out


def _size(desc: str) -> float | None:
    """A comparable size from a description: layers x width^2 for runs, the vocabulary for tokenizers."""
    vals = {m[2] or "vocab": int(m[1] or m[3]) for m in SIZE_RE.finditer(desc)}
    if not vals:
        return None
    return vals.get("layers", 1) * vals.get("wide", 1) ** 2 * vals.get("vocab", 1)


def resolve_by_description(request: str, items: Sequence[tuple[str, str]]) -> str | None:
    """The one artifact a request picks out by what it is rather than by name: "the 4-layer run",
    "the bigger of my two models", "the tokenizer I trained on the python files". None when the
    request does not single one out."""
    if len(items) < 2:
        return None
    sized = [(n, _size(d)) for n, d in items]
    if all(s is not None for _, s in sized) and len({s for _, s in sized}) == len(sized):
        if BIGGER_RE.search(request):
            return max(sized, key=lambda x: x[1])[0]
        if SMALLER_RE.search(request):
            return min(sized, key=lambda x: x[1])[0]
    said = numbers_in(
        COUNT_PHRASE_RE.sub(" ", request)
    )  # "the run where I used 0.25 dropout", "the 4096 tokenizer"
    hits = [n for n, d in items if said & numbers_in(d) - {0.0}]
    if said and len(hits) == 1:
        return hits[0]
    layers = {int(m) for m in N_LAYER_RE.findall(request)}
    if len(layers) == 1:
        n_layer = layers.pop()
        hits = [n for n, d in items if f"{n_layer} layers" in d]
        if len(hits) == 1:
            return hits[0]
    words = {w for w in words_in(request) if w not in GENERIC_WORDS and len(w) >= 3 and not w.isdigit()}
    hits = [n for n, d in items if words & {w for w in words_in(d) if not w.isdigit()} - DESCRIPTION_WORDS]
    return hits[0] if len(hits) == 1 else None


def lab_state_names(system_text: str) -> dict[str, list[str]]:
    """Artifact names per kind from the "Lab state:" part of the system prompt (newest first)."""
    state = system_text.split("Lab state:", 1)[-1] if "Lab state:" in system_text else ""
    out: dict[str, list[str]] = {
        kind: [n for n, _ in items] for kind, items in lab_state_details(system_text).items()
    }
    jobs = JOBS_LINE_RE.search(state)
    if jobs:  # running/queued jobs: "- jobs: job-1 gpt running step 3/100; job-2 ..."
        out["job"] = [j.split()[0] for j in jobs.group(1).split("; ") if j.strip()]
    return out


def fill_from_request(
    args: dict[str, Any],
    request: str,
    parameters: dict[str, Any],
    names: dict[str, list[str]],
    details: dict[str, list[tuple[str, str]]] | None = None,
) -> dict[str, Any]:
    """Fill arguments the model left out when the request names the value unambiguously.

    - an enum argument: exactly one of its values (or its plural) is a word of the request
      ("show my adapters" -> kind="adapter");
    - a reference argument (default "last"): exactly one artifact of its kind in the lab state has
      a distinctive name part that is a word of the request ("the qa adapter" -> "qa-r4");
    - a reference argument given as part of a name completes to it when only one name fits
      ("essays" -> "essays-4k");
    - `job_id` from "the running job" / "my job" when exactly one job is running or queued;
    - a reference argument left at "last" from what the request says about the artifact ("the 4-layer
      run", "the bigger model"; `resolve_by_description` over `details` from `lab_state_details`).
    """
    props = parameters.get("properties", {})
    words = words_in(request)
    out = dict(args)
    if (
        "job_id" in props
        and not out.get("job_id")
        and len(names.get("job", [])) == 1
        and THE_JOB_RE.search(request)
    ):
        out["job_id"] = names["job"][0]
    for name, prop in props.items():
        kind = REFERENCE_KINDS.get(name)
        value = out.get(name)
        if kind and isinstance(value, str) and value.lower() not in REFERENCE_VALUES:
            pool = names.get(kind, []) + list(BUILTIN_NAMES.get(kind, ()))
            if value in pool and not re.search(
                rf"(?<![\w-]){re.escape(value)}(?![\w-])", request, re.IGNORECASE
            ):
                # the model picked an artifact the request does not name: what the request describes wins
                described = resolve_by_description(request, (details or {}).get(kind, []))
                out[name] = described or value
            elif value not in pool:
                # a partial name ("essays" for "essays-4k"), else a name the request spells out
                vw = words_in(value)
                partial = [
                    n for n in pool if n.lower().startswith(value.lower()) or (vw and vw <= words_in(n))
                ]
                said = [
                    n
                    for n in pool
                    if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", request, re.IGNORECASE)
                ]
                hits = partial if len(partial) == 1 else said
                if len(hits) != 1:  # the model wrote a description ("python_src"): what the request describes
                    described = resolve_by_description(request, (details or {}).get(kind, []))
                    hits = [described] if described else hits
                if len(hits) == 1:
                    out[name] = hits[0]
            continue
        if value not in (None, "") and str(value).lower() not in REFERENCE_VALUES:
            continue
        options = prop.get("enum") or next(
            (p.get("enum") for p in prop.get("anyOf", []) if p.get("enum")), None
        )
        if options and name not in out:
            hits = [
                v for v in options if isinstance(v, str) and (v.lower() in words or f"{v.lower()}s" in words)
            ]
            if len(hits) == 1:
                out[name] = hits[0]
            continue
        if kind and str(prop.get("default", "")).lower() in REFERENCE_VALUES:
            pool = names.get(kind, [])
            if len(pool) >= 2 and OLDEST_RE.search(request):  # "the older run": names are newest first
                out[name] = pool[-1]
                continue
            described = resolve_by_description(request, (details or {}).get(kind, []))
            if described:
                out[name] = described
                continue
            hits = [n for n in pool if n.lower() in request.lower() or any(
                len(part) >= 2 and not part.isdigit() and part not in GENERIC_WORDS and part in words
                and sum(part in words_in(m) for m in pool) == 1 for part in words_in(n))]  # fmt: skip
            if len(hits) == 1:
                out[name] = hits[0]
    return out


def unwrap_json_answer(text: str) -> str:
    """If a model wrote its answer as a JSON object with one string value, return that string."""
    t = text.strip()
    if t.startswith("{") and t.endswith("}"):
        try:
            obj = json.loads(t)
        except json.JSONDecodeError:
            return text
        strings = [v for v in obj.values() if isinstance(v, str)] if isinstance(obj, dict) else []
        if len(strings) == 1:
            return strings[0]
    return text


def is_code_tool(parameters: dict[str, Any]) -> bool:
    """True for a tool whose required argument is Python source (`code`), e.g. run_python."""
    props = parameters.get("properties", {})
    return "code" in parameters.get("required", []) and props.get("code", {}).get("type") == "string"


def missing_required(args: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    return [r for r in parameters.get("required", []) if args.get(r) in (None, "", [])]


def clarify_question(tool: str, missing: Sequence[str], parameters: dict[str, Any]) -> str:
    """A short question asking for the missing required arguments of `tool`."""
    props = parameters.get("properties", {})
    parts = []
    for name in missing:
        desc = (props.get(name, {}).get("description") or "").split(".")[0].strip()
        parts.append(f"{name} ({desc})" if desc else name)
    return f"To run {tool} I need the {' and '.join(parts)}. What should I use?"


def turn_context(messages: Sequence[BaseMessage]) -> tuple[str, list[tuple[str, dict]]]:
    """Text of the latest user message plus the tool results after it, and the tool calls made since."""
    texts: list[str] = []
    calls: list[tuple[str, dict]] = []
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            texts.append(normalise_request(str(m.content)))
            break
        if isinstance(m, ToolMessage):
            texts.append(str(m.content))
        elif isinstance(m, AIMessage):
            calls.extend((tc["name"], tc["args"]) for tc in m.tool_calls)
    return "\n".join(reversed(texts)), calls


_STEP_VERBS = (r"(train|encode|decode|sample|show|plot|index|search|fine-?tune|merge|run|compare|list|remember"
               r"|recall|generate|tell|give|make|ask|check)")  # fmt: skip
MULTI_STEP_RE = re.compile(
    r"\b(then|after that|afterwards|next(?! to\b)|followed by|also|finally|once (it|that)'?s? done)\b|;"
    rf"|\band\s+(then\s+)?{_STEP_VERBS}\b|,\s*(?=(fine-?tune|merge|encode|decode|sample|generate|plot|compare|index"
    r"|search|list|remember)\b)",
    re.IGNORECASE,
)


def split_steps(request: str) -> list[str]:
    """The clauses of a multi-step request, in order ("train X, then Y and encode Z" -> 3 clauses)."""
    parts, start = [], 0
    for m in MULTI_STEP_RE.finditer(request):
        parts.append(request[start : m.start()])
        start = m.start(4) if m.group(4) else m.end()  # "and encode ...": the clause keeps its verb
    parts.append(request[start:])
    parts = [re.sub(r"(\s+(and|then))+$", "", p.strip(" ,;."), flags=re.IGNORECASE) for p in parts]
    return [p.strip(" ,;.") for p in parts if p.strip(" ,;.")]


SEQUENTIAL_RE = re.compile(r"\b(then|after|afterwards|next(?! to\b)|followed|finally|once)\b", re.IGNORECASE)
BACK_REFERENCE_RE = re.compile(
    r"\b(it|its|them|that|those|these|this|there|one|ones|the (results?|output|ids|new \w+|same \w+))\b",
    re.IGNORECASE,
)
READ_ONLY_TOOLS = frozenset({
    "list_runs", "list_artifacts", "job_status", "search_documents", "encode_text", "decode_tokens",
    "compare_tokenizers", "recall", "sample_gpt", "generate_with_adapter",
})  # fmt: skip


def independent_steps(request: str) -> list[str]:
    """The clauses of a request whose steps do not depend on each other, else [].

    "train a 256-token tokenizer and also list my runs" -> both clauses; "index X, then search it"
    -> [] (ordered by "then", and "it" refers back). Such steps can run as parallel tool calls.
    """
    markers = [m.group(0) for m in MULTI_STEP_RE.finditer(request)]
    if not markers or any(SEQUENTIAL_RE.search(m) for m in markers):
        return []
    steps = split_steps(request)
    if len(steps) < 2 or any(BACK_REFERENCE_RE.search(s) for s in steps[1:]):
        return []
    return steps


def parallel_batch(calls: Sequence[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The longest prefix of `calls` that is safe to run at once: at most one call that is not read-only.

    A tool that asks for confirmation interrupts the graph, and on resume LangGraph re-runs every call
    of the batch; read-only calls can run twice without harm, a second training run cannot.
    """
    out, writers = [], 0
    for name, args in calls:
        writers += name not in READ_ONLY_TOOLS
        if writers > 1 or (name, args) in out:
            break
        out.append((name, args))
    return out


def wants_more_steps(request: str) -> bool:
    """True when a request reads as several steps ("train X, then Y", "index A and search B")."""
    return bool(MULTI_STEP_RE.search(request))


def expected_steps(request: str) -> int:
    """Rough number of steps in a request: one more than its step markers ("then", "and encode", ";")."""
    return 1 + len(MULTI_STEP_RE.findall(request))


def request_progress(messages: Sequence[BaseMessage]) -> tuple[str, int]:
    """The latest user request and how many tool results since it were successful (steps done)."""
    done = 0
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            return str(m.content), done
        if isinstance(m, ToolMessage) and not str(m.content).startswith("Error"):
            done += 1
    return "", done


def current_clause(messages: Sequence[BaseMessage]) -> str:
    """The part of the latest request that the next tool call serves.

    The whole request, or for a multi-step request the clause of the step after the successful
    tool results so far ("train a tokenizer, then a GPT" after one result -> "a GPT").
    """
    request, done = request_progress(messages)
    if not wants_more_steps(request):
        return request
    steps = split_steps(request)
    return steps[min(done, len(steps) - 1)] if steps else request


def must_continue(messages: Sequence[BaseMessage]) -> bool:
    """True while a multi-step request has had fewer successful tool calls than it has steps."""
    if (
        not messages
        or not isinstance(messages[-1], ToolMessage)
        or str(messages[-1].content).startswith("Error")
    ):
        return False
    request, done = request_progress(messages)
    return wants_more_steps(request) and done < expected_steps(request)


def should_answer_now(messages: Sequence[BaseMessage]) -> bool:
    """After a successful tool result, answer instead of choosing again: a one-step request is done, and
    so is a multi-step request once it has as many successful results as it has steps (without this the
    model sometimes adds a call nobody asked for, e.g. a training run after "..., then list my runs")."""
    if not messages or not isinstance(messages[-1], ToolMessage):
        return False
    if str(messages[-1].content).startswith("Error") or getattr(messages[-1], "status", "success") == "error":
        return False
    request, done = request_progress(messages)
    return not wants_more_steps(request) or done >= expected_steps(request)


def is_action(name: str) -> bool:
    return name not in (ANSWER, CLARIFY)
