"""Routing for small local models: ChatML rendering, action/argument grammars, deterministic grounding.

The local model decides in two constrained stages (measured in ../shared/notes/agent-routing.md):
1. the action name, generated under a GBNF grammar that admits only `answer`, `clarify` or a bound
   tool's name (a few tokens, so chit-chat costs well under a second);
2. for a tool, only that tool's arguments, under a grammar built from its JSON schema with optional
   arguments nullable (so the grammar never forces the model to invent values) and with numbers and
   flags limited to what the conversation supports (`grounded_schema`).
Then `ground_args` drops values that the conversation does not support (numbers that do not occur,
strings that share no word with the request), and `missing_required` turns an unsupported required
argument into a clarifying question instead of a guess.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from scratchlab.agent.bank import (
    NUMBER_WORD_VALUES,
    SCALE_WORD_VALUES,
    as_number,
    number_contexts,
    refused,
    tokens,
)
from scratchlab.agent.constrained import json_object_forcing
from scratchlab.agent.prompts import ANSWER, CLARIFY
from scratchlab.lab.words import words_in

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
ACTION_PREFIX = '{"action": "'
FREE_TEXT_ARGS = {"code", "fact"}  # written by the model, not copied from the request
NAME_ARGS = {"name"}  # names of new artifacts: kept only when the request spells them out
PUNCTUATION = ",.;:!?()[]{}'\"`"  # stripped from the ends of a word
REFERENCE_VALUES = {"last", "latest", "newest", "recent"}
NO_WAIT_WORDS = ("background", "don't wait", "do not wait", "detach", "return at once", "right away")
NO_WAIT_SHORTHAND = {"bg", "bkg"}  # whole words only: "lora demo r16, 40 steps, bg"
GENERIC_WORDS = {
    "the", "and", "for", "with", "from", "that", "this", "them", "then", "into", "onto", "what", "which",
    "model", "models", "file", "files", "data", "please", "make", "train", "trained", "run", "runs", "new",
    "text", "some", "one", "two", "my", "me", "it", "its", "a", "an", "of", "on", "to", "in", "is", "be",
    "up", "out",  # particles: "look something up", "find out"
}  # fmt: skip
# Words that point at something without naming it: a value made only of these and GENERIC_WORDS is no
# value ("my data", "some text", "something", "this") and gets a question back.
POINTERS = {"this", "that", "it", "them", "these", "those", "data", "text", "some"}
VAGUE_WORDS = {"something", "anything", "stuff", "thing", "things", "dataset", "documents", "docs", "notes",
               "folder", "corpus", "whatever", "any", "all"}  # fmt: skip
# Words that say when, not what: "remember that for next time" names nothing to keep
WHEN_WORDS = {"next", "time", "later", "future", "now", "again"}
# a number glued to a word by a hyphen is part of a name ("gpt-1", "job-12", "coder-0.5b"), as for the bank
NUMBER_RE = re.compile(
    r"(?<![\w.])(?<![A-Za-z]-)(-?(?:\d[\d,_]*(?:\.\d+)?|\.\d+)(?:e-?\d+)?)(?:\s*([kKmM])(?![a-zA-Z=:]|\s?\d))?"
)  # "T=1.2 k=40": that k names top-k, it does not scale 1.2 (as SHORTHAND_K)
SHORTHAND_K = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s?[kK](?![a-zA-Z=:]|\s?\d)"
)  # "2k" -> 2000, for the model and grounding; "T=1.2 k=40": that k names top-k
TOOL_RESULT_CHARS = 1200
MAX_STRING_CHARS = 240  # non-free-text string arguments are capped in the grammar too
MAX_NAME_CHARS = 40  # a new artifact's name ("chef-bpe"); a small model can loop inside one
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
        inner = _non_null(prop)  # `str | None` caps the string too
        if inner.get("type") == "array":
            inner.setdefault("maxItems", MAX_LIST_ITEMS)
        if inner.get("type") == "string" and name not in FREE_TEXT_ARGS:
            inner.setdefault("maxLength", MAX_NAME_CHARS if name in NAME_ARGS else MAX_STRING_CHARS)
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


def args_grammar(parameters: dict[str, Any], context: str | None = None, **grounding: Any) -> str:
    """GBNF for a tool's argument object (nullable optionals), with control characters excluded.

    With `context` (the call's clause and this turn's results, `clause_context`), the grammar admits
    only what `ground_args` would keep of numbers and flags, and leaves out what the request sets
    itself (`grounded_schema`, which takes `grounding`), so the model spends no tokens on values that
    are dropped or replaced afterwards.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    schema = parameters if context is None else grounded_schema(parameters, context, **grounding)
    gbnf = _CHAR_RULE_FIX[0].sub(_CHAR_RULE_FIX[1], json_schema_to_gbnf(json.dumps(nullable_schema(schema))))
    for canonical, written in number_spellings(context or "").items():  # "3e-4" may stay "3e-4"
        for lead in ("= ", "| "):
            gbnf = gbnf.replace(f'{lead}"{canonical}"', f'{lead}"{canonical}" | "{written}"')
    return gbnf


def args_forcing(
    parameters: dict[str, Any], context: str | None = None, support: str | None = None, **grounding: Any
) -> Callable[[str], str]:
    """The jump-forward function for `args_grammar(parameters, context, **grounding)`
    (`constrained.json_object_forcing`): every key of the schema, the JSON texts of each closed value
    (an enum, a grounded number with its written spelling, a flag, null), the context for new names
    (`ground_args` keeps a name only if the context spells it), and, with `support` (the text
    `ground_args` will check against, `turn_context`), which free strings are already doomed
    (`doomed_string`)."""
    schema = nullable_schema(
        parameters if context is None else grounded_schema(parameters, context, **grounding)
    )
    spellings = number_spellings(context or "")
    values: dict[str, list[str]] = {}
    for name, prop in schema.get("properties", {}).items():
        inner = _non_null(prop)
        if "enum" in inner:
            texts = [json.dumps(v) for v in inner["enum"]]
        elif inner.get("type") == "boolean":
            texts = ["true", "false"]
        else:
            continue  # a free value: the model writes it
        values[name] = texts + [spellings[t] for t in texts if t in spellings] + ["null"] * _admits_null(prop)
    names = {
        k: (context or "").lower()
        for k in schema.get("properties", {})
        if k in NAME_ARGS and context is not None
    }
    checked = {}
    if support is not None:
        words, low = words_in(support), support.lower()
        checked = {k: lambda v, done: doomed_string(v, done, words, low) for k, p in schema.get("properties", {}).items()
                   if k not in FREE_TEXT_ARGS | NAME_ARGS and k not in values and _holds_strings(p)}  # fmt: skip
    leading = fixed_prefix(parameters, grounding.get("fixed") or {}) if context is not None else ""
    return json_object_forcing(list(schema.get("properties", {})), values, names, checked, leading)


def _holds_strings(prop: dict[str, Any]) -> bool:
    """True for a free string property or a list of free strings (no enum)."""
    inner = _non_null(prop)
    if inner.get("type") == "array":
        inner = _non_null(inner.get("items", {}))
    return inner.get("type") == "string" and "enum" not in inner


WORD_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def doomed_string(value: str, complete: bool, words: set[str], text_lower: str) -> bool:
    """True when a string value `ground_args` checks against a text (its `words` and lower-cased
    `text_lower`) will be dropped: complete and unsupported (`_string_supported`), or still open with
    a whole word the text never uses (3+ letters, not generic) and none it does. "what is the meaning
    of life" as the prompt of "give me 150 tokens from my deeper model" is closed after "meaning".
    A reference ("last") and a part of the text are never doomed."""
    v = value.lower()
    if (
        not v.strip()
        or v.strip() in REFERENCE_VALUES
        or (not complete and any(r.startswith(v) for r in REFERENCE_VALUES))
    ):
        return False
    if complete:
        return not _string_supported(v, words, text_lower)
    if v in text_lower:
        return False
    whole = words_in(v.rstrip(WORD_CHARS))  # the last word may still go on
    if any(_string_supported(w, words, text_lower) for w in whole):
        return False
    return any(len(w) >= 3 and w not in GENERIC_WORDS for w in whole)


def numbers_said(text: str) -> list[tuple[str, str]]:
    """(number, scale suffix) for each number `text` writes (`NUMBER_RE`), leaving out the number that
    ends a hyphenated name: "smollm2-135m" is a model, not 135 million steps ("gpt-2" and "llama-3"
    `NUMBER_RE` already reads as names; "2-4" stays two numbers)."""
    out = []
    for m in NUMBER_RE.finditer(text):
        start = m.start()
        if start and text[start - 1] == "-":
            before = text[: start - 1].split()[-1:] or [""]
            if any(c.isalpha() for c in before[0]):
                continue
        out.append((m[1], m[2] or ""))
    return out


def number_spellings(text: str) -> dict[str, str]:
    """{JSON spelling of a number in `text`: the JSON spelling the text uses}, where they differ
    ("lr 3e-4" -> {"0.0003": "3e-4"}): a grammar that admits only the canonical one makes the model
    convert."""
    out = {}
    for num, suffix in numbers_said(text):
        try:
            value = json.loads(num)
        except ValueError:
            continue
        canonical = json.dumps(int(value) if float(value).is_integer() else value)
        if not suffix and canonical != num:
            out[canonical] = num
    return out


def grounded_schema(
    parameters: dict[str, Any],
    context: str,
    fixed: dict[str, Any] | None = None,
    reusable: Collection[str] = (),
) -> dict[str, Any]:
    """Copy of a tool's JSON schema that admits only the number and flag values `context` supports,
    with the arguments in `fixed` first and set.

    A number property (or a list of numbers) becomes an enum of the numbers `context` mentions that
    its type and bounds allow, and is left out when there are none; a flag is left out unless
    `context` talks about it (`flag_supported`); an enum of strings keeps the values `ground_args`
    would keep (the context says them or shares a word with them). Grounding in the grammar instead
    of after it: a small model otherwise fills the object with values the request never gave
    (`"seed": 1234567890000000`, one token a digit; `"pattern": "gpt4"` unasked), which `ground_args`
    then drops, at 40-90 ms a token. A new artifact's name stays free: limited to the context's
    words, the model named runs "build" and "GPT" after the request's verbs.
    Required properties are kept as they are, so a missing one still becomes a question.

    `fixed` holds the values the request sets whatever the model writes (`extract.set_by_request`):
    those arguments come first, required, each with its one value, so the model reads them written
    (`fixed_prefix`, evaluated as one batch by jump-forward decoding) and writes only the rest; a
    number they use as often as `context` writes it is offered only to the arguments in `reusable`
    (those the request names), as `extract.stated_values` would drop it elsewhere. Decoding them
    token by token cost time for values that were then replaced: with the 1.5B, "give me 150 tokens"
    set temperature, top_k, top_p and seed to 150. Left out instead of written first, the model lost
    its bearings ("1,000 symbols in the vocabulary" went to num_merges once the dataset before it
    was gone).
    """
    schema = json.loads(json.dumps(parameters))
    props = schema.get("properties", {})
    fixed = {k: v for k, v in (fixed or {}).items() if k in props}
    for name in fixed:
        props.pop(name, None)
    schema["required"] = [r for r in schema.get("required", []) if r not in fixed]
    required = set(schema["required"])
    counts, low, words = number_counts(context), context.lower(), words_in(context)
    spent = Counter(float(n) for v in fixed.values() for n in (v if isinstance(v, list) else [v])
                    if isinstance(n, int | float) and not isinstance(n, bool))  # fmt: skip
    free = sorted(n for n in counts if counts[n] > spent[n])
    for name in list(props):
        if name in required:
            continue
        prop = _non_null(props[name])
        kind, items = _value_kind(prop), _non_null(prop.get("items", {}))
        nums = sorted(counts) if name in reusable else free
        if kind in ("integer", "number"):
            allowed = _allowed_numbers(prop, nums, kind)
        elif kind == "array" and _value_kind(items) in ("integer", "number"):
            allowed = _allowed_numbers(items, nums, _value_kind(items))
        elif kind == "boolean":
            allowed = [v for v in (True, False) if flag_supported(name, v, low)]
        elif _string_enum(prop) or (kind == "array" and _string_enum(items)):
            allowed = [
                v for v in _string_enum(prop) or _string_enum(items) if _string_supported(v, words, low)
            ]
        else:
            continue
        if not allowed:
            del props[name]  # nothing the conversation gives: the model cannot write it
        elif kind == "array":
            props[name] = {**prop, "items": {"enum": allowed}}
        else:
            props[name] = {"enum": allowed}
    written = _written_first(parameters, fixed)
    schema["properties"] = {**{k: {"enum": [v]} for k, v in written.items()}, **props}
    schema["required"] = [*written, *schema["required"]]
    return schema


def _written_first(parameters: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """The values of `fixed` the grammar writes first: those of the tool's arguments whose JSON text
    needs no escape (llama.cpp's schema converter writes a quote or backslash inside an enum string
    into a grammar it cannot parse); the others are left out."""
    props = parameters.get("properties", {})
    return {k: v for k, v in fixed.items() if k in props and "\\" not in json.dumps(v)}


def fixed_prefix(parameters: dict[str, Any], fixed: dict[str, Any]) -> str:
    """The start of the argument object with the values of `fixed` written, as `grounded_schema`
    orders them: '{"dataset": "data/a.txt", "vocab_size": 1000' ("" when there are none)."""
    items = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in _written_first(parameters, fixed).items()]
    return "{" + ", ".join(items) if items else ""


def _string_enum(prop: dict[str, Any]) -> list[str]:
    """The values of an enum of strings ([] for any other property)."""
    values = prop.get("enum", [])
    return values if values and all(isinstance(v, str) for v in values) else []


def _non_null(prop: dict[str, Any]) -> dict[str, Any]:
    """The one non-null branch of `anyOf: [T, null]`, else `prop` itself."""
    branches = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    return branches[0] if len(branches) == 1 else prop


def _value_kind(prop: dict[str, Any]) -> str | None:
    """The JSON type of a property (None for mixed, enum or untyped ones)."""
    return None if "enum" in prop or "anyOf" in prop else prop.get("type")


def within_bounds(bounds: dict[str, Any], v: float) -> bool:
    """True when `v` lies within a JSON schema's minimum / maximum / exclusive bounds."""
    return (bounds.get("minimum", -math.inf) <= v <= bounds.get("maximum", math.inf)
            and bounds.get("exclusiveMinimum", -math.inf) < v < bounds.get("exclusiveMaximum", math.inf))  # fmt: skip


def _allowed_numbers(bounds: dict[str, Any], nums: Sequence[float], kind: str) -> list[int | float]:
    return [int(v) if float(v).is_integer() else v for v in nums
            if (kind != "integer" or float(v).is_integer()) and within_bounds(bounds, v)]  # fmt: skip


# refused ("don't block on it", "without waiting"), these ask for a background run
WAIT_VERBS = {"wait", "waiting", "block", "blocking"}
TYPO_RATIO = 0.9  # a long word this close to a one-word marker is that word mistyped ("backround")


def says_no_wait(text_lower: str) -> bool:
    """True when the request asks not to wait (`NO_WAIT_WORDS`, or the shorthand as a word, or "no
    wait" as a phrase of its own after the first: "sweep-4: resume, +20 min, no wait"; opening the
    request, "no wait, make it 3 layers" corrects); a one-word marker of 8+ letters also counts when
    mistyped by a letter or so ("backgroud")."""
    if any(w in text_lower for w in NO_WAIT_WORDS) or NO_WAIT_SHORTHAND & words_in(text_lower):
        return True
    phrases = [" ".join(p.split()) for p in text_lower.replace(";", ",").split(",")]
    if any(p.strip(PUNCTUATION) in ("no wait", "nowait", "no-wait") for p in phrases[1:]):
        return True
    # "without waiting for it", "not waiting", "no need to wait around"; "no wait" is the phrase rule's
    # above ("no wait, make it 3 layers" corrects)
    toks = tokens(text_lower)
    for i, t in enumerate(toks):
        j = refused(toks, i) if t in WAIT_VERBS else None
        if j is not None and not (j == i - 1 and toks[j] == "no"):
            return True
    long = [w for w in NO_WAIT_WORDS if " " not in w and len(w) >= 8]
    return any(
        difflib.SequenceMatcher(None, t.strip(".,;:!?()'\""), w).ratio() >= TYPO_RATIO
        for t in text_lower.split()
        for w in long
    )


def flag_supported(name: str, value: bool, text_lower: str) -> bool:
    """A flag counts only when the request talks about it; `wait` only as "don't wait" ("no wait, make
    it 3 layers" names the flag but asks for no background run)."""
    if name == "wait":
        return not value and says_no_wait(text_lower)
    return name.replace("_", " ") in text_lower


# ---- grounding ----------------------------------------------------------------------------------
def number_counts(text: str) -> Counter[float]:
    """{number: how often `text` writes it}, with shorthand expanded ("2k" -> 2000, "1,000" -> 1000)."""
    found: Counter[float] = Counter()
    for num, suffix in numbers_said(text):
        try:
            v = float(num.replace(",", "").replace("_", ""))
        except ValueError:
            continue
        if suffix:
            v *= 1_000 if suffix.lower() == "k" else 1_000_000
        found[v] += 1
    return found


def numbers_in(text: str) -> set[float]:
    """Numbers mentioned in `text`, with shorthand expanded ("2k" -> 2000, "1,000" -> 1000)."""
    return set(number_counts(text))


def normalise_request(text: str) -> str:
    """Expand the count shorthand the small models misread ("2k" -> "2000"), write numbers said in
    words as digits (`spelled_out`), and say durations in minutes, the unit every time argument takes
    (`in_minutes`)."""
    return in_minutes(spelled_out(SHORTHAND_K.sub(lambda m: str(int(round(float(m[1]) * 1000))), text)))


LONE_WORD_MAX = (
    10  # "one", "two" alone stay words: "that one", "the two runs" (the bank reads them in context)
)


def spelled_out(text: str) -> str:
    """`text` with numbers said in words written as digits ("for eighty steps" -> "for 80 steps",
    "fifteen minutes", "twenty-five", "one hundred and fifty" -> 150, "a thousand" -> 1000); quoted
    text stays as written. A lone word up to ten stays a word: "one" and "two" point and count as
    often as they measure, and the example bank reads them in context. Without this the model's 80 had
    no 80 in the request to stand on, and grounding dropped it."""
    return "".join(part if quoted else _spelled(part) for part, quoted in quote_spans(text))


QUOTE_MARKS = {"'": "'", '"': '"', "`": "`", "“": "”", "‘": "’"}  # opening: closing


def quote_spans(text: str) -> list[tuple[str, bool]]:
    """`text` cut into (part, quoted) pieces, a quoted part with its marks: a quote opens after a
    non-word character and closes at its closing mark before one, so "don't" opens nothing and
    'All the world's a stage' is one quote."""
    out, start, i = [], 0, 0
    while i < len(text):
        ch = text[i]
        if ch in QUOTE_MARKS and (i == 0 or not text[i - 1].isalnum()):
            end = QUOTE_MARKS[ch]
            close = next((k for k in range(i + 1, len(text)) if text[k] == end
                          and (k + 1 == len(text) or not text[k + 1].isalnum())), None)  # fmt: skip
            if close is not None and close > i + 1:
                out += [(text[start:i], False), (text[i : close + 1], True)]
                start = i = close + 1
                continue
        i += 1
    return [*out, (text[start:], False)]


def _joins(used: list[str], current: int, value: int) -> bool:
    """Whether a number word continues the number said so far: anything first or after "hundred" /
    "thousand", a unit after a tens word ("twenty five"); "five twenty" is two numbers."""
    if not used or used[-1] in SCALE_WORD_VALUES or used[-1] in ("a", "and"):
        return True
    return current % 10 == 0 and current % 100 >= 20 and value < 10


def _spelled(text: str) -> str:
    words = text.split(" ")
    clean = [w.lower().strip(".,;:!?()") for w in words]
    out, i = [], 0
    while i < len(words):
        total, current, j, used = 0, 0, i, []
        while j < len(words):
            core, parts = clean[j], clean[j].split("-")
            nxt = clean[j + 1] if j + 1 < len(words) else ""
            if core == "a" and not used and nxt in SCALE_WORD_VALUES:
                current = 1
            elif (
                core == "and"
                and used
                and used[-1] in SCALE_WORD_VALUES
                and nxt.split("-")[0] in NUMBER_WORD_VALUES
            ):
                pass
            elif (
                parts
                and all(p in NUMBER_WORD_VALUES for p in parts)
                and _joins(used, current, sum(NUMBER_WORD_VALUES[p] for p in parts))
            ):
                current += sum(NUMBER_WORD_VALUES[p] for p in parts)
            elif core in SCALE_WORD_VALUES and used:
                if core == "thousand":
                    total, current = total + max(current, 1) * 1000, 0
                else:
                    current = max(current, 1) * 100
            else:
                break
            used.append(core)
            j += 1
            if words[j - 1] != words[j - 1].rstrip(".,;:!?()"):
                break  # punctuation ends the number
        while used and used[-1] in ("a", "and"):  # "a" or "and" that no number word followed
            used.pop()
            j -= 1
        value = total + current
        if not used or (len(used) == 1 and value <= LONE_WORD_MAX):
            out.append(words[i])
            i += 1
            continue
        last = words[j - 1]
        out.append(str(value) + last[len(last.rstrip(".,;:!?()")) :])
        i = j
    return " ".join(out)


HOUR_WORDS = {"hour", "hours", "hr", "hrs"}
HOUR_SHARES = {"half": 0.5, "quarter": 0.25}  # "half an hour", "a quarter of an hour"


def in_minutes(text: str) -> str:
    """`text` with durations in hours said in minutes ("2 hours" -> "120 minutes", "half an hour" ->
    "30 minutes", "an extra quarter of an hour" -> "an extra 15 minutes", "an hour and a half" -> "90
    minutes"): the tools take `budget_minutes` and `extra_minutes`, and a small model does not convert."""
    words = text.split(" ")
    low = [w.lower().strip(".,;:!?()") for w in words]
    out, i = [], 0
    while i < len(words):
        hour = next((j for j in range(i, min(i + 4, len(words))) if low[j] in HOUR_WORDS), None)
        if hour is None:
            out.append(words[i])
            i += 1
            continue
        lead = low[i:hour]
        share = HOUR_SHARES.get(lead[0]) if lead else None
        if share is not None and lead[1:] in (["an"], ["of", "an"], ["a"], ["of", "a"]):
            hours = share
        elif len(lead) == 1 and (as_number(lead[0]) is not None or lead[0] in ("an", "a")
                                 or lead[0] in NUMBER_WORD_VALUES):  # fmt: skip
            hours = (
                as_number(lead[0]) if as_number(lead[0]) is not None else NUMBER_WORD_VALUES.get(lead[0], 1.0)
            )
        else:
            out.append(words[i])
            i += 1
            continue
        end = hour + 1
        if low[end : end + 3] == ["and", "a", "half"]:
            hours, end = hours + 0.5, end + 3
        tail = words[end - 1][len(words[end - 1].rstrip(".,;:!?()")) :]
        out.append(f"{hours * 60:g} minutes{tail}")
        i = end
    return " ".join(out)


ID_KINDS = (
    "job",
    "run",
    "tokenizer",
    "index",
    "adapter",
    "dataset",
    "file",
    "plot",
    "base",
    "ablation",
    "sweep",
    "research",
)


def is_registry_id(value: str) -> bool:
    """True for registry ids such as "job-3" or "run-12" (valid only where the user wrote them)."""
    kind, dash, num = value.partition("-")
    return bool(dash) and kind in ID_KINDS and num.isdigit()


def names_file(value: str) -> bool:
    """True for a value written as a file or folder ("qa.jsonl", "data/poems"): one the context does
    not hold whole is invented, whatever words it shares ("fine-tune on my last run" -> "last.jsonl")."""
    v = value.strip()
    ext = v.rsplit(".", 1)[-1] if "." in v else ""
    return "/" in v or (ext.isalpha() and not v[:1].isdigit() and len(ext) <= 8)


def _string_supported(value: str, words: set[str], text_lower: str) -> bool:
    v = value.strip().lower()
    if not v:
        return False
    if v in text_lower:
        return True
    if is_registry_id(v) or names_file(v):  # "stop the job" names no job-3, "my last run" no last.jsonl
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


def _spec_grounded(value: Any, nums: set[float]) -> Any:
    """A setting spec ('name=v1,v2' or 'name=low..high', or a list of them) whose values are not all
    numbers of the context, cut to its name (its default range): the model's own values for "a search
    over dropout" ('dropout=0.05,0.1,0.15') are numbers nobody gave, as much as a number argument's."""
    if isinstance(value, list):
        return [_spec_grounded(v, nums) for v in value]
    if not isinstance(value, str) or "=" not in value:
        return value
    name, values = value.split("=", 1)
    parts = [p.strip() for p in values.replace("..", ",").split(",") if p.strip()]
    given = [numbers_in(p) for p in parts]
    if name.strip() and parts and all(len(g) == 1 for g in given) and not all(g <= nums for g in given):
        return name.strip()
    return value


def vague_args(
    args: dict[str, Any],
    parameters: dict[str, Any],
    known: Collection[str] = (),
    verbs: Collection[str] = (),
    nouns: Collection[str] = (),
) -> list[str]:
    """String arguments whose value names nothing ("my data", "some text", "something"); a value in
    `known` (the lab's record names and ids: an index called "notes") or a path ("~/corpus",
    "notes.txt") names something. `verbs` ask for the tool and name nothing either: a query "look
    something up in my documents please" is no topic. Nor do `nouns`, those of the records the tool
    reads: a query "my index" names the index to search, not what to look for."""
    props = parameters.get("properties", {})
    out = []
    for k, v in args.items():
        if k in FREE_TEXT_ARGS or k in NAME_ARGS or not isinstance(v, str) or k not in props or v in known:
            continue  # a name for a new artifact is a label, whatever its words ("index it as notes")
        if "/" in v or "." in v.strip("."):
            continue
        if str(props[k].get("default", "")).lower() == v.strip().lower():
            continue
        words = words_in(v) - set(verbs)
        empty = VAGUE_WORDS | POINTERS | set(nouns)
        if words and words <= GENERIC_WORDS | empty and words & empty:
            out.append(k)
    return out


def invented_args(args: dict[str, Any], said: str, tool_names: Sequence[str] = ()) -> list[str]:
    """Free-text arguments the model wrote (`FREE_TEXT_ARGS` but code) that share no content word
    with what the user said and the results showed (`said`): "please remember this for me" with nothing
    before it had the 1.5B store "I remember this for you.". A fact restated in other words still
    shares a word with what it restates ("remember I like 0.6" -> "prefers temperature 0.6")."""
    known = content_words(said, tool_names) | numbers_as_words(said)
    return [k for k in FREE_TEXT_ARGS - {"code"} if isinstance(args.get(k), str)
            and not (content_words(args[k], tool_names) | numbers_as_words(args[k])) & known]  # fmt: skip


FACT_COVERAGE = 0.5  # share of the request's content words a kept fact must hold


def faithful_fact(fact: str, clause: str, tool_names: Sequence[str] = ()) -> str:
    """The fact to keep for "remember ...": the model's `fact` when it holds at least `FACT_COVERAGE`
    of the request's content words and numbers, else the request as the user said it. For "remember
    that my go-to sampling temperature is 0.7" the 1.5B kept "0.7", and "sample at my go-to
    temperature" then found no temperature in it."""
    wanted = content_words(clause, tool_names) | numbers_as_words(clause)
    held = (content_words(fact, tool_names) | numbers_as_words(fact)) & wanted
    # the word that says what a number is must stay beside it: "96 with 3 attention heads" lost "width",
    # and "64 with 2 attention heads is my go-to model width" moved it away from 64
    kept = {}
    for value, ctx in number_contexts(fact):
        kept.setdefault(value, set()).update(t for w in ctx for t in (w, w.rstrip("s")))
    for value, ctx in number_contexts(clause):
        labels = {w for w, weight in ctx.items() if weight >= 0.5} & wanted
        if labels and not labels & kept.get(value, set()):
            return clause.strip()
    return fact if not wanted or len(held) >= FACT_COVERAGE * len(wanted) else clause.strip()


def numbers_as_words(text: str) -> set[str]:
    """The numbers of `text` written as `numbers_in` reads them ("0.6", "32")."""
    return {f"{n:g}" for n in numbers_in(text)}


def content_words(text: str, tool_names: Sequence[str] = ()) -> set[str]:
    """Words of `text` that name something: not generic, vague, a pointer or a time, nor a part of a tool's
    name ("search the documents" has none; "what batch size do I prefer" has "batch", "size", "prefer")."""
    tool_words = {w for n in tool_names for w in n.split("_")} | {
        w + "s" for n in tool_names for w in n.split("_")
    }
    stop = GENERIC_WORDS | VAGUE_WORDS | POINTERS | WHEN_WORDS | tool_words
    return {w for w in words_in(text) if w not in stop and len(w) > 2}


def ground_args(
    args: dict[str, Any], context: str, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Keep only argument values that `context` (the request and this turn's tool results) supports.

    Nulls are dropped; numbers must occur in the context; strings must occur or share a non-generic
    word with it; "last" is kept only for reference arguments (those whose default is "last");
    free-text arguments the model writes (`code`, `fact`) are kept as they are.
    """
    nums, words, low = numbers_in(context), words_in(context), context.lower()
    listed = nums | numbers_in(context.replace(",", " "))  # "n_embd=64,128" lists 64 and 128 (1,000 is 1000)
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
        if isinstance(v, bool):
            if flag_supported(k, v, low):
                out[k] = v
            continue
        if k in NAME_ARGS and isinstance(v, str) and v.strip().lower() not in low:
            continue  # a name the user did not give: the tool picks a unique one (an invented one can clash)
        if k not in FREE_TEXT_ARGS | NAME_ARGS:
            v = _spec_grounded(v, listed)
        if k in FREE_TEXT_ARGS or _value_supported(v, nums, words, low):
            out[k] = v
    if "wait" in props and "wait" not in out and says_no_wait(low):
        out["wait"] = False  # "in the background" states the flag even when the model left it out
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
    request = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    head = [normalise_request(str(request.content))] if request is not None else []
    calls = [
        (tc["name"], tc["args"])
        for m in _this_turn(messages)
        if isinstance(m, AIMessage)
        for tc in m.tool_calls
    ]
    return "\n".join(head + _turn_results(messages)), calls


def clause_context(messages: Sequence[BaseMessage], clause: str, names: Iterable[str] = ()) -> str:
    """What a call's arguments may take numbers from: the clause it serves ("train a tokenizer with 400
    tokens, then a GPT for 150 steps": 150 is no tokenizer setting), plus the numbers this turn's tool
    results label with one of the call's argument `names` ("best trial: lr=0.0003" -> "lr 0.0003").
    A result's other numbers (durations, sizes, losses) set nothing: "vocab_size 300 ... 0.8s" gave the
    next GPT n_embd=300 and lr=0.8."""
    return "\n".join([clause, *(p for r in _turn_results(messages) for p in labelled_numbers(r, names))])


def labelled_numbers(text: str, names: Iterable[str]) -> list[str]:
    """`"name value"` for each number in `text` right after one of `names` ("vocab_size 300", "lr=3e-4")."""
    wanted = {n.lower() for n in names}
    words = [w.strip(PUNCTUATION) for w in text.replace("=", " ").split()]
    return [
        f"{a} {b}" for a, b in zip(words, words[1:], strict=False) if a.lower() in wanted and numbers_in(b)
    ]


def _this_turn(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages after the latest user message, oldest first."""
    out: list[BaseMessage] = []
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            break
        out.append(m)
    return out[::-1]


def _turn_results(messages: Sequence[BaseMessage]) -> list[str]:
    return [str(m.content) for m in _this_turn(messages) if isinstance(m, ToolMessage)]


# ---- multi-step requests ------------------------------------------------------------------------
# "train X, then Y", "X and afterwards Y": ordered steps, one tool call each. (";" is not a step
# marker: "make it 3 layers; keep the rest" is one request.)
# "X, then Y", "X, and then Y", ...; "X, and if C, Y" or "X and Y it if C": Y is a step only when C
# holds (`conditional`)
STEP_RE = re.compile(
    r"\s*,?\s*\b(?:(?:and\s+)?(?:then|afterwards|after that|finally)\b(?!\s*(?:[,.!?]|$))"
    r"|and\s+(?=if\b|[^,;.]*\b(?:it|them)\s+if\b))\s*",
    re.IGNORECASE,
)  # a "then" that ends its clause is no step: "just use the demo set then, rank 4"


def split_steps(request: str) -> list[str]:
    """The ordered clauses of a request ("train X, then Y, then encode Z" -> 3 clauses; one if none).
    A single word before the marker is no step of its own ("ok then, the same but ..." is one)."""
    parts = [p for p in (p.strip(" ,.") for p in STEP_RE.split(request)) if p]
    if len(parts) > 1 and len(parts[0].split()) == 1:
        parts = [f"{parts[0]} {parts[1]}", *parts[2:]]
    return parts or [request]


def conditional(step: str) -> bool:
    """True for a step that holds only under a condition ("if it has finished, resume it", "stop it
    if nothing beat 2.0"): the model decides on it with the earlier step's result in view; nothing
    makes it call the tool."""
    words = step.lower().split()
    return words[:1] == ["if"] or any(
        a in ("it", "them") and b == "if" for a, b in zip(words, words[1:], strict=False)
    )


def wants_more_steps(request: str) -> bool:
    """True when a request reads as several ordered steps."""
    return len(split_steps(request)) > 1


def request_progress(messages: Sequence[BaseMessage]) -> tuple[str, int]:
    """The latest user request and how many tool results since it were successful (steps done)."""
    done = 0
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            return str(m.content), done
        if isinstance(m, ToolMessage) and not is_error(m):
            done += 1
    return "", done


def is_error(m: BaseMessage) -> bool:
    return str(m.content).startswith("Error") or getattr(m, "status", "success") == "error"


def turn_failed(messages: Sequence[BaseMessage]) -> bool:
    """True when a tool call of the latest request returned an error: the reply reports it."""
    return any(is_error(m) for m in _this_turn(messages) if isinstance(m, ToolMessage))


def current_clause(messages: Sequence[BaseMessage]) -> str:
    """The clause of the latest request that the next tool call serves (the whole request for one step)."""
    request, done = request_progress(messages)
    steps = split_steps(request)
    return steps[min(done, len(steps) - 1)]


def must_continue(messages: Sequence[BaseMessage]) -> bool:
    """True while a multi-step request has had fewer successful tool results than it has steps."""
    if not messages or not isinstance(messages[-1], ToolMessage) or is_error(messages[-1]):
        return False
    request, done = request_progress(messages)
    steps = split_steps(request)
    return done < len(steps) and not conditional(steps[done])


def result_headline(messages: Sequence[BaseMessage]) -> str | None:
    """The first line of the latest tool result: what a reply about it falls back to when grounding
    drops every sentence (not the request, which the reply would then only repeat)."""
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            lines = str(m.content).strip().splitlines()
            return lines[0] if lines else None
        if isinstance(m, HumanMessage):
            return None
    return None


def should_answer_now(messages: Sequence[BaseMessage]) -> bool:
    """After a successful tool result that completes the request, answer instead of choosing again
    (else the model sometimes adds a call nobody asked for)."""
    if not messages or not isinstance(messages[-1], ToolMessage) or is_error(messages[-1]):
        return False
    request, done = request_progress(messages)
    return done >= len(split_steps(request))
