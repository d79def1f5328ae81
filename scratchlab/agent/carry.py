"""'The same ... but X' and 'no, I meant X': the call a request repeats, with only X changed.

The bank's `carry` examples vote on whether a request repeats an earlier call (`Bank.flag`); when it
does, `carry_over` takes the thread's last call of that tool (or, with none, the settings of the
record the request refers to) and puts the request's own values on top. "Train one like that" after
a turn whose results state settings but name no record (a recalled preference) takes the settings
those lines state (`said_before`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from scratchlab.agent.bank import FUNCTION_WORDS, number_contexts, phrase_ends, stem, tokens, ungroup_digits
from scratchlab.agent.extract import TEXT_ARGS, numeric_args, own_words, stated_name, unshared
from scratchlab.agent.router import GENERIC_WORDS, POINTERS, PUNCTUATION, VAGUE_WORDS, numbers_in
from scratchlab.agent.state import KIND_NOUNS, MADE_KINDS, SINGULAR_PRONOUNS, Record, about, recent

NOT_SHARED = ("name", "wait")  # never carried from another tool's call: a label, how that call waited
NO_TOPIC = (
    GENERIC_WORDS | VAGUE_WORDS | POINTERS | {"how", "why", "when", "where", "who", "does", "did", "are"}
)
QUERY_ARGS = ("query",)  # what a tool that looks things up (documents, memories) looks for
DEICTIC = {"that", "this", "those", "these"}  # "that vocabulary size": a value said before
MAX_POINTED_WORDS = 3  # words of the noun phrase after a pointer: "that vocabulary size"
POINTING_BACK = DEICTIC | {"same", "earlier", "before", "above"}  # "the r and lora_alpha from those examples"


def earlier_text(messages: Sequence[BaseMessage], arg: str) -> str | None:
    """The text (`TEXT_ARGS`) the last earlier call took ("on that same phrase": the phrase encoded two
    turns ago), else None."""
    seen_user = False
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            seen_user = True
        elif seen_user and isinstance(m, AIMessage):
            for tc in reversed(m.tool_calls):
                value = tc["args"].get(arg) or next(
                    (tc["args"][a] for a in TEXT_ARGS if tc["args"].get(a)), None
                )
                if isinstance(value, str) and value.strip():
                    return value
    return None


def previous_call(messages: Sequence[BaseMessage], action: str | None = None) -> tuple[str, dict] | None:
    """The most recent tool call before the latest user message (of `action`, when given)."""
    seen_user = False
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            seen_user = True
            continue
        if seen_user and isinstance(m, AIMessage):
            for tc in reversed(m.tool_calls or []):
                if action is None or tc["name"] == action:
                    return tc["name"], dict(tc["args"])
    return None


def clarified_tool(messages: Sequence[BaseMessage]) -> str | None:
    """The tool the agent's last reply asked about ("To run finetune_lora I need the data ..."), when
    that reply, just before the latest request, was a question back (its message records the tool)."""
    for m in reversed(messages[:-1] if messages and isinstance(messages[-1], HumanMessage) else messages):
        if isinstance(m, AIMessage):
            kw = m.additional_kwargs or {}
            return kw.get("tool") if kw.get("action") == "clarify" and not m.tool_calls else None
        if isinstance(m, HumanMessage):
            return None
    return None


def asked_request(messages: Sequence[BaseMessage]) -> str:
    """The user's request before the latest one: the request a question back (`clarified_tool`) was
    about, whose answer the latest request is; "" when there is none."""
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    return str(humans[-2].content) if len(humans) >= 2 else ""


def previous_turn_calls(messages: Sequence[BaseMessage]) -> list[tuple[str, dict]]:
    """The tool calls of the turn before the latest user message, in order."""
    humans = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    if len(humans) < 2:
        return []
    return [(tc["name"], dict(tc["args"])) for m in messages[humans[-2] : humans[-1]]
            if isinstance(m, AIMessage) for tc in m.tool_calls or []]  # fmt: skip


def continued_lookup(
    messages: Sequence[BaseMessage], tools: dict[str, dict], prior: dict[str, float], floor: float
) -> str | None:
    """The look-up tool (one that takes a `query`: search_documents, recall) the previous turn called,
    for a request the model would answer itself: a follow-up question in a reading session goes to
    the same documents ("and is warmup worth it?" right after a search of the user's books), as the
    user expects. The bank's prior for that tool must reach `floor`, so a thanks or a
    question far from anything looked up (prior about 0.02) is still answered."""
    for name, _ in reversed(previous_turn_calls(messages)):
        required = tools.get(name, {}).get("parameters", {}).get("required", [])
        if any(a in QUERY_ARGS for a in required) and prior.get(name, 0.0) >= floor:
            return name
    return None


def same_lookup(
    action: str, args: dict[str, Any], parameters: dict[str, Any], messages: Sequence[BaseMessage]
) -> bool:
    """True when `action` looks things up (a required `query`) and the previous turn already called it
    with a query this one adds no topic word to (`stem`s of its words of 3+ letters; one word may begin
    the other, "vocab" and "vocabulary") and no other setting: "what norm do they clip to?" after a
    search for gradient clipping searched for gradient clipping again; "what is it, exactly?" after a
    search for the GPT-2 vocabulary size searched for the question's own words. Its passages are in the
    thread; the answer comes from them."""
    if not any(a in QUERY_ARGS for a in parameters.get("required", ())):
        return False

    def words(call: dict[str, Any]) -> set[str]:  # its topic: no pointer, generic word or adverb ("exactly")
        return {stem(w) for a in QUERY_ARGS for w in tokens(str(call.get(a, "")))
                if len(w) > 2 and w not in NO_TOPIC and not (len(w) >= 5 and w.endswith("ly"))}  # fmt: skip

    def within(word: str, earlier: set[str]) -> bool:  # "vocab" is in "vocabulary", "clip" in "clipping"
        return any(
            w == word or len(word) >= 4 and (w.startswith(word) or word.startswith(w)) for w in earlier
        )

    def same_settings(old: dict[str, Any]) -> bool:  # "give me 8 passages for that instead" is a new look-up
        return all(old.get(k) == v for k, v in args.items() if k not in QUERY_ARGS)

    said = words(args)  # none at all ("what is it, exactly?"): nothing new to look for
    return any(name == action and all(within(w, words(old)) for w in said) and same_settings(old)
               for name, old in previous_turn_calls(messages))  # fmt: skip


def carry_over(
    action: str, new_args: dict[str, Any], messages: Sequence[BaseMessage], recs: Sequence[Record],
    parameters: dict[str, Any], extend: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The arguments of the call this request repeats, with the request's own values on top; with
    `extend` (the bank's flag: "add rope as a second variant and rerun it"), a list the request gives
    joins the repeated call's list instead of replacing it.

    The base is the thread's last call of `action`; without one, the settings the thread's last call of
    another tool shares with this one ("then train a normal gpt of the same size" after an ablation:
    its n_layer, n_embd, dataset, ..., not its switches or its wait); without any call, the config of
    the record the request refers to (its settings that differ from the tool's defaults). Names of new
    artifacts never carry.
    """
    props = parameters.get("properties", {})
    prev = previous_call(messages, action)
    other = previous_call(messages) if prev is None else None
    base: dict[str, Any] = {}
    if prev is not None:
        base = dict(prev[1])
    elif other is not None:
        base = {k: v for k, v in other[1].items() if k in props and k not in NOT_SHARED}
    else:
        kinds = ("run",) if "n_layer" in props else ("tokenizer",) if "vocab_size" in props else ()
        pool = recent(recs, kinds) if kinds else []
        if pool:
            cfg = pool[0].config
            base = {
                k: v for k, v in cfg.items() if k in props and v != props[k].get("default") and k != "name"
            }
    base.pop("name", None)
    out = {**base, **new_args}
    for arg, value in new_args.items():
        if extend and isinstance(value, list) and isinstance(base.get(arg), list):
            out[arg] = [*base[arg], *(v for v in value if v not in base[arg])]
    return out


def maker(messages: Sequence[BaseMessage], rec: Record) -> str | None:
    """The tool whose call in this conversation made `rec`: the call whose result first names its id
    ("Trained adapter adapter-1 'spruce' ..."), else None (a record from an earlier session)."""
    tools: dict[str, str] = {}
    for m in messages:
        if isinstance(m, AIMessage):
            tools.update((tc["id"], tc["name"]) for tc in m.tool_calls or [])
        elif isinstance(m, ToolMessage) and any(
            w.strip(PUNCTUATION) == rec.id for w in str(m.content).split()
        ):
            return tools.get(m.tool_call_id)
    return None


def _points_at_record(clause: str) -> bool:
    """True when a singular pronoun of the clause stands for a record: not the "it" of "call it
    sheetbend" (the new record's name follows), nor a "that" before a setting's noun ("with that
    dropout": a value said before, `said_values`); "like that", "that model" do."""
    named = stated_name(clause)
    words = [w.strip(PUNCTUATION).lower() for w in clause.split()]
    nouns = set().union(*KIND_NOUNS.values())
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w not in SINGULAR_PRONOUNS or (named and nxt == named.lower()):
            continue
        if w in DEICTIC and nxt.isalpha() and nxt not in FUNCTION_WORDS and nxt not in nouns:
            continue  # a determiner: "that dropout"
        return True
    return False


def remade_tool(
    action: str, messages: Sequence[BaseMessage], recs: Sequence[Record], clause: str, tools: dict[str, dict]
) -> str | None:
    """For a request that repeats an earlier call and points at a record with a pronoun ("train a second
    one just like it but set its dropout to 0.1" after an adapter was made and then asked something):
    the tool that made that record, when `action` makes an artifact (takes a `name`) and is another
    tool. The 1.5B read "train" as train_gpt; the record meant is the adapter, so finetune_lora makes
    the second one, from that call's settings (`carry_over`). None when the clause names another kind
    of artifact by its noun ("train a GPT like it" after a tokenizer), or the record was not made in
    this conversation."""
    props = tools.get(action, {}).get("parameters", {}).get("properties", {})
    if "name" not in props or not _points_at_record(clause):
        return None
    target = next(iter(about(clause, recs)), None)
    if target is None or target.turn is None:
        return None
    others = {n for k in MADE_KINDS if k != target.kind for n in KIND_NOUNS[k]} - KIND_NOUNS.get(
        target.kind, set()
    )
    if set(tokens(clause)) & others:
        return None
    made_by = maker(messages, target)
    takes_name = "name" in tools.get(made_by or "", {}).get("parameters", {}).get("properties", {})
    return made_by if made_by != action and takes_name else None


def said_before(messages: Sequence[BaseMessage], recs: Sequence[Record]) -> str:
    """The lines of the previous turn's tool results that name no record: what a recalled memory said
    ("- I like my GPTs with 2 heads and 48-dim embeddings"), whose settings "ok, train one like that"
    means. A line that names a run or a tokenizer is that record's, and `resolve` reads records."""
    humans = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    if len(humans) < 2:
        return ""
    names = {x.lower() for r in recs for x in (r.id, r.name)}
    lines = [
        line
        for m in messages[humans[-2] : humans[-1]]
        if isinstance(m, ToolMessage) and m.status != "error" and not str(m.content).startswith("Error")
        for line in str(m.content).splitlines()
        if not names & {w.strip(".,;:'\"()") for w in line.lower().split()}
    ]
    return "\n".join(lines)


def _pointed_phrases(text: str) -> list[tuple[str, set[str], str]]:
    """Each noun phrase after a pointer (`DEICTIC`) in `text`, as written, with its words and its
    head (stemmed): "uses that vocabulary size" -> [("that vocabulary size", {"vocabulary", "size"},
    "size")]. A phrase ends at a function word, a number or punctuation; one with no label word is
    left out."""
    words = text.split()
    out = []
    for i, w in enumerate(words):
        if w.lower().strip(".,;:!?'\"()") not in DEICTIC or w[-1:] in ".,;:!?":
            continue
        phrase = []
        for nxt in words[i + 1 : i + 1 + MAX_POINTED_WORDS]:
            bare = nxt.lower().strip(".,;:!?'\"()")
            if not bare.isalpha() or bare in FUNCTION_WORDS or bare in GENERIC_WORDS or bare in DEICTIC:
                break
            phrase.append(nxt.rstrip(".,;:!?'\")"))
            if nxt[-1:] in ".,;:!?":
                break
        if phrase:
            out.append((" ".join([w, *phrase]), {stem(p.lower()) for p in phrase}, stem(phrase[-1].lower())))
    return out


def referred_values(text: str, messages: Sequence[BaseMessage]) -> str:
    """`text` with the value each pointed-at setting had in the conversation written after it: "save
    a note that GPT-2 uses that vocabulary size" after the answer "The GPT-2 vocabulary size is 50,257
    tokens" keeps "save a note that GPT-2 uses that vocabulary size (50257)"; a kept fact otherwise
    holds no number. The value is the newest one (earlier answers, results and requests, newest first)
    that the phrase's head labels (`number_contexts`) on a line holding each of its words; none when
    that message gives two values, or when `text` states a number itself."""
    if numbers_in(text):
        return text
    earlier = [m for m in messages if isinstance(m, HumanMessage | AIMessage | ToolMessage)]
    if earlier and isinstance(earlier[-1], HumanMessage):
        earlier = earlier[:-1]  # the request itself
    for phrase, labels, head in _pointed_phrases(text):
        value = _newest_value(
            earlier,
            lambda line, ctx, labels=labels, head=head: (
                head in {stem(w) for w in ctx} and labels <= {stem(w) for w in tokens(line)}
            ),
        )
        if value is not None:
            text = text.replace(phrase, f"{phrase} ({value:g})", 1)
    return text


def _newest_value(
    messages: Sequence[BaseMessage], labels: Callable[[str, Sequence[str]], bool]
) -> float | None:
    """The number the newest of `messages` that labels any gives (`number_contexts`: each number with
    the words around it, on one line; `labels(line, words)` says whether they name the setting meant);
    None when that message gives two different values, or none does."""
    for m in reversed(messages):
        values = {v for line in ungroup_digits(str(m.content)).splitlines()
                  for v, ctx in number_contexts(line) if labels(line, ctx)}  # fmt: skip
        if values:
            return values.pop() if len(values) == 1 else None
    return None


SOURCE_PREPOSITIONS = {"from", "as", "of", "in"}  # "the lr from those examples", "the same lr as before"


def _points_back(toks: Sequence[str], i: int, end: int) -> bool:
    """True when the setting word at `i` is pointed back at within its phrase (which ends at `end`): a
    pointer before it ("that vocabulary size", "the same lr"), or a preposition after it whose object
    is one ("the r and lora_alpha from those examples", "lr as before"); a number between breaks it."""
    before = [t for t in toks[max(0, i - 2) : i] if t != "the"]
    if before and before[-1] in POINTING_BACK:
        return True
    for k in range(i + 1, end):
        if numbers_in(toks[k]):
            return False
        if toks[k] in SOURCE_PREPOSITIONS and set(toks[k + 1 : min(k + 3, end)]) & POINTING_BACK:
            return True
    return False


def _described_as(prop: dict[str, Any]) -> set[str]:
    """The words of the noun phrase a schema description opens with ("Peak learning rate; null for ..."
    -> peak, learning, rate)."""
    head = str(prop.get("description", "") or "")
    for mark in (";", "(", ":", ",", "."):
        head = head.split(mark)[0]
    return set(tokens(head))


def said_values(
    clause: str, parameters: dict[str, Any], messages: Sequence[BaseMessage], stated: Collection[str],
    labels: Mapping[str, str] | None = None,
) -> dict[str, int | float]:  # fmt: skip
    """The values the conversation gave the numeric settings a clause names and points back at ("using
    the r and lora_alpha from those LoraConfig examples" after an answer "r=16, lora_alpha=32"; "with
    that learning rate"; "the same lr as before"; `_points_back`): for each, the newest earlier answer
    or result that labels exactly one number with that name (`number_contexts`). A setting is named by
    its own name, or by a word of `labels` ({word: argument}, `extract.arg_words`, learned from the
    bank) that its schema description opens with ("Peak learning rate"). `stated`: the arguments the
    clause sets itself, left alone. The 1.5B wrote lora_alpha=20, the clause's step count, and no r."""
    toks = tokens(clause)
    if not set(toks) & POINTING_BACK:
        return {}
    props = parameters.get("properties", {})
    # by its own name ("lora_alpha", "alpha") or its description's ("learning rate"), not a word it
    # shares with another ("lora")
    words = {a: own_words(a) | {w for w, x in (labels or {}).items() if x == a and w in _described_as(props[a])}
             for a in numeric_args(parameters)}  # fmt: skip
    ends = phrase_ends(clause)
    named = {}
    for a, own in unshared(words).items():
        at = [i for i, t in enumerate(toks) if t in own]
        if a not in stated and any(
            _points_back(toks, i, next((e for e in ends if e > i), len(toks))) for i in at
        ):
            named[a] = own
    earlier = [m for m in messages if isinstance(m, AIMessage | ToolMessage) and str(m.content).strip()]
    out: dict[str, int | float] = {}
    for arg, own in named.items():
        v = _newest_value(earlier, lambda line, ctx, own=own: bool(own & set(ctx)))
        if v is not None:
            types = {props[arg].get("type"), *(p.get("type") for p in props[arg].get("anyOf", []))}
            out[arg] = int(v) if v.is_integer() and "integer" in types else v
    return out
