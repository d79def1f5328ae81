"""Argument values a request states outright ("8 heads", "block size of 128", "top-k 40", "rank 8").

A 1.5B model copies most such values into the right argument, but not all: on unseen requests it
wrote "8 heads" as `n_layer=8` and dropped `d=64` and `it=500` (benchmarks/results/
agent_eval_failures_local-1.5b_test3.md, _test4.md). A value that the user names next to its
hyperparameter is not a judgement call, so these patterns set it, and they override the model.
Only arguments the chosen tool has are touched, and a pattern that matches two different values
sets nothing (the model's choice stands).

    explicit_args("kick off a GPT run with 8 heads and a block size of 128", train_gpt_schema)
    # {"n_head": 8, "block_size": 128}
    explicit_args("ablate relu + no_layernorm, 300 its", ablate_schema)
    # {"switches": ["relu", "no_layernorm"], "max_iters": 300}
"""

from __future__ import annotations

import re
from typing import Any

from scratchlab.agent.router import normalise_request

_SEP = r"\s*(?:of|=|:|to|at|is)?\s*"  # "block size of 128", "lr=3e-4", "temperature: 0.7"
_EQ = r"\s*[=:]\s*"  # single-letter and short names need "=" or ":" ("L=2", "it=500")
_INT = r"(\d[\d,_]*(?:\.\d+)?\s?[kK]?)(?![\w.])"  # 128, 2,000, 2k, 1.5k
_FLOAT = r"(\d*\.?\d+(?:[eE]-?\d+)?)(?![\w.])"  # 0.5, .9, 6e-4
NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
                "twelve": 12, "twenty": 20}  # fmt: skip

PATTERNS: dict[str, list[str]] = {  # argument -> patterns whose group 1 is the value
    "n_layer": [rf"{_INT}[- ]?(?:transformer[- ])?layers?\b", rf"\b(?:n_layers?|layers){_SEP}{_INT}", rf"\bL{_EQ}{_INT}"],
    "n_head": [rf"{_INT}[- ]?(?:attention[- ])?heads?\b", rf"\b(?:n_heads?|heads){_SEP}{_INT}", rf"\bH{_EQ}{_INT}"],
    "n_embd": [
        rf"\b(?:embedding (?:size|dim(?:ension)?|width)|(?:hidden|model) (?:size|width|dim(?:ension)?)|n_embd|d_model|width){_SEP}{_INT}",
        rf"\bd{_EQ}{_INT}",
        rf"{_INT}[- ]?(?:wide|dim(?:ensional)?)\b",
        r"(?<![\w.])(\d+)d\b",  # "384d"
        rf"{_INT}[- ]?(?:embd|n_embd|emb|embedding(?:s| size| dim\w*)?)\b",  # "64 embd"
    ],
    "block_size": [
        rf"\b(?:block[ _]size|context(?: length| window| size)?|seq(?:uence)?[ _]len(?:gth)?|ctx){_SEP}{_INT}",
        rf"{_INT}[- ]token context\b",
    ],
    "batch_size": [rf"\bbatch(?:[ _]size)?{_SEP}{_INT}", rf"{_INT}[- ]?(?:sequences |samples )?per batch\b",
                   rf"\bbs{_SEP}{_INT}"],  # "bs32", "bs=32"
    "max_iters": [
        rf"{_INT}\s*(?:more\s+|training\s+|optimi[sz]er\s+)?(?:steps|iters?|iterations|its)\b",
        rf"\b(?:max_iters|iters|iterations|steps){_SEP}{_INT}", rf"\bit{_EQ}{_INT}",
        rf"{_INT}\s*it\b(?!\s*[=:])",  # "5k it" (not "d=64 it=500")
    ],
    "max_new_tokens": [rf"{_INT}\s+(?:new\s+|more\s+)?(?:tokens|toks|characters|chars)\b", rf"\bmax_new_tokens{_SEP}{_INT}",
                       rf"\bn{_EQ}{_INT}"],  # "n=400"
    "vocab_size": [
        rf"\bvocab(?:ulary)?(?:[ _]size)?{_SEP}{_INT}",
        rf"{_INT}[- ](?:token |merge |entry )?(?:bpe |byte-level bpe )?(?:vocab(?:ulary)?|tokenizer|tokeniser|bpe)\b",
        rf"\bbpe\s+{_INT}(?!\s*(?:steps|iters?|iterations|its|tokens|runs|files)\b)",  # "bpe 3k on notes.txt"
    ],
    "temperature": [rf"\b(?:temperature|temp){_SEP}{_FLOAT}", rf"\bt{_EQ}{_FLOAT}"],  # "t=1.2"
    "top_k": [rf"\btop[- _]?k{_SEP}{_INT}"],
    "top_p": [rf"\b(?:top[- _]?p|nucleus){_SEP}{_FLOAT}"],
    "lr": [rf"\b(?:lr|learning[ _]rate){_SEP}{_FLOAT}"],
    "dropout": [rf"\bdropout{_SEP}{_FLOAT}", rf"{_FLOAT} dropout\b"],
    "r": [rf"\b(?:lora )?rank[- ]?{_SEP}{_INT}", rf"\br\s*=\s*{_INT}", r"\br(\d+)\b"],  # "r16"
    "lora_alpha": [rf"\b(?:lora_)?alpha{_SEP}{_INT}", r"\balpha(\d+)\b"],
    "seed": [rf"\bseed{_SEP}{_INT}"],
    "k": [rf"\btop[- ]{_INT}(?! ?[a-z]*(?:heads?|layers?))", rf"{_INT} (?:results|hits|passages|chunks|matches)\b"],
    "limit": [rf"{_INT} (?:most recent |latest |last |newest )?(?:training )?runs\b", rf"\b(?:last|latest|recent) {_INT} runs\b",
              rf"\b({'|'.join(NUMBER_WORDS)}) (?:most recent |latest |last |newest )?(?:training )?runs\b",
              rf"\b(?:last|latest|recent) ({'|'.join(NUMBER_WORDS)}) (?:training )?runs\b"],  # "my three most recent runs"
}  # fmt: skip
_COMPILED = {k: [re.compile(p, re.IGNORECASE) for p in v] for k, v in PATTERNS.items()}

# Ablation switches by the words people use for them (scratchlab.training.ablate.NAMED_SWITCHES).
_REMOVE = (r"\b(?:without|drop|dropping|remove|removing|take out|taking out|turn off|turning off|disable|disabling"
           r"|no|kill|killing|strip|stripping)\s+(?:all\s+|any\s+)?(?:the\s+|its\s+)?(?:learned\s+)?"
           # other components listed first: "removing layernorm and residual connections"
           r"(?:(?:layer ?norms?|residuals?(?: connections?)?|pos(?:ition(?:al)?)?(?: emb\w*| encodings?)?)"
           r"\s*(?:,|and|&|\+|or)\s*(?:the\s+)?){0,2}")  # fmt: skip
SWITCH_WORDS = [
    (r"\brope\b|\brotary\b", "rope"),
    (rf"\bno[_ ]pos(?:ition(?:al)?)?[_ ]?(?:emb\w*|encoding)?\b|{_REMOVE}pos(?:ition(?:al)?)?\b", "no_pos_emb"),
    (rf"\bno[_ ]residuals?\b|{_REMOVE}residual|\bresidual(?: connections?)? (?:off|removed)\b", "no_residual"),
    (rf"\bno[_ ]layer[_ ]?norms?\b|{_REMOVE}layer ?norm|\blayer ?norms? (?:off|removed)\b", "no_layernorm"),
    (r"\brelu\b", "relu"),
    (r"\bn_head\s*=\s*1\b|\b(?:one|single|1)[- ](?:attention[- ])?head(?:ed)?\b", "n_head=1"),
    (r"\bmlp_ratio\s*=\s*2\b|\bmlp ratio (?:of )?2\b|\bhalf[- ]width mlp\b", "mlp_ratio=2"),
]  # fmt: skip
# "n_layer=2", "a 2-layer version": an override switch (scratchlab.training.ablate.OVERRIDABLE)
OVERRIDE_RE = re.compile(r"\b(n_layer|n_head|n_embd|mlp_ratio|dropout|lr|block_size|batch_size)\s*=\s*(\d*\.?\d+(?:e-?\d+)?)\b"
                         r"|\b(\d+)[- ]layer (?:version|variant|one|model|net(?:work)?)\b", re.IGNORECASE)  # fmt: skip
# New artifact names the user spells out: "call it haiku-bpe", "name the run lyrics-v1", "named qa-r4".
NAME_RE = re.compile(
    r"\b(?:call|name)\s+(?:it|the\s+(?:new\s+)?(?:run|tokeni[sz]er|index|adapter|model))\s+[\"'`]?([a-z][\w.-]*[\w])"
    r"|\b(?:named|called)\s+[\"'`]?([a-z][\w.-]*[\w])|\bname\s*[=:]\s*[\"'`]?([a-z][\w.-]*[\w])",
    re.IGNORECASE,
)
NAME_STOP = {"it", "the", "a", "an", "after", "something", "whatever", "that", "this", "me"}
SPECIAL_TOKEN_RE = re.compile(r"<\|[\w.-]+\|>|</?[a-z]{2,8}>")  # <|endoftext|>, <pad>, </s>
# The tokenizer's pre-tokenization pattern: "gpt2 pattern", "pattern gpt-4", "gpt2 split".
PATTERN_RE = re.compile(
    r"\b(gpt-?[24])(?:'s)?\s+(?:split(?:ting)?|regex|pattern|pre-?tokeni[sz]\w*)\b"
    r"|\b(?:split(?:ting)?|regex|pattern|pre-?tokeni[sz]\w*)(?:\s*[=:]\s*|\s+of\s+|\s+)(gpt-?[24])\b"
    r"|\b(?:no|without(?: any| a)?)\s+(?:regex\s+)?(?:pre-?split\w*|pre-?tokeni[sz]\w*|split(?:ting)? pattern|regex)\b",
    re.IGNORECASE,
)
NO_WAIT_RE = re.compile(r"\b(in the background|don'?t wait|do not wait|detach(ed)?|return (at once|right away)"
                        r"|without waiting)\b", re.IGNORECASE)  # fmt: skip
_SWITCH_RE = [(re.compile(p, re.IGNORECASE), s) for p, s in SWITCH_WORDS]


# Paths a request names: with a slash or a file extension ("docs/", "~/notes", "data/qa.jsonl", "notes.txt").
PATH_RE = re.compile(
    r"(?<![\w/.~@:-])((?:~|\.{1,2})?/?[\w.-]+(?:/[\w.-]*)+|[\w.-]+\.(?:txt|md|markdown|jsonl|json|csv|tsv|pdf|py|html?|rst|tex))"
    r"(?![\w/])",
    re.IGNORECASE,
)
NOT_PATHS = {
    "train/val",
    "and/or",
    "input/output",
    "read/write",
    "tokens/s",
    "bytes/token",
    "chars/token",
    "val/train",
}
PATH_ARGS = ("path", "data", "dataset")  # index_documents, finetune_lora, train_tokenizer/train_gpt


def stated_path(text: str) -> str | None:
    """The one file or folder path `text` names ("first index docs/, then ..." -> "docs/"), else None."""
    found = {
        m.rstrip(".") for m in PATH_RE.findall(text) if m.lower() not in NOT_PATHS and not m[0].isdigit()
    }
    return found.pop() if len(found) == 1 else None


QUOTE_RE = re.compile(r"(?<!\w)[\"'`]([^\"'`]+)[\"'`](?!\w)")
# "ask the sql-helper adapter how to select ...": the question to pass on
ASK_RE = re.compile(
    r"\b(?:ask|query|prompt)\s+(?:the|my|that)\s+(?:[\w-]+\s+){0,3}?(?:adapter|model|one|lora)\s+(?:to\s+)?"
    r"((?:how|what|why|when|where|which|who|whether|if|for|about|to)\b.+)$",
    re.IGNORECASE,
)


def stated_prompt(text: str) -> str | None:
    """The prompt a request gives for generation: its one quoted text, the words after a colon, or the
    question after "ask the ... adapter"; None when it gives none of these (or two quoted texts)."""
    quoted = QUOTE_RE.findall(text)
    if len(quoted) == 1:
        return quoted[0]
    if quoted:
        return None
    head, colon, rest = text.partition(":")
    if colon and len(rest.split()) >= 2 and not re.search(r"\d$", head):  # not "t=1.2" or "10:30"
        return rest.strip()
    m = ASK_RE.search(text)
    return m[1].strip(" .") if m else None


def _number(text: str, integer: bool) -> float | int | None:
    if text.lower() in NUMBER_WORDS:
        return NUMBER_WORDS[text.lower()]
    t = text.replace(",", "").replace("_", "").replace(" ", "")
    scale = 1000 if t[-1:] in "kK" else 1
    try:
        v = float(t.rstrip("kK")) * scale
    except ValueError:
        return None
    if integer:
        return int(v) if v == int(v) else None
    return v


def _param_type(prop: dict[str, Any]) -> str | None:
    if "type" in prop:
        return prop["type"]
    types = [p.get("type") for p in prop.get("anyOf", []) if p.get("type") not in (None, "null")]
    return types[0] if types else None


def explicit_args(text: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Arguments of a tool (JSON-schema `parameters`) whose values `text` states next to their name.

    Args:
        text: the user's request (or the clause of it that this tool call serves).
        parameters: the tool's JSON schema (`{"properties": {...}}`).

    Returns:
        `{argument: value}` for each argument of the tool with exactly one stated value (int for
        integer arguments, float for number arguments; `switches` as a list of switch names).
    """
    props = parameters.get("properties", {})
    out: dict[str, Any] = {}
    for name, rxs in _COMPILED.items():
        if name not in props:
            continue
        integer = _param_type(props[name]) == "integer"
        values = {_number(m.group(1), integer) for rx in rxs for m in rx.finditer(text)} - {None}
        if len(values) == 1:
            out[name] = values.pop()
    if "switches" in props:
        found = [s for rx, s in _SWITCH_RE if rx.search(text)]
        if "rope" in found and "no_pos_emb" in found and re.search(r"\binstead\b", text, re.I):
            found.remove("no_pos_emb")  # "rope instead of learned positions"
        for m in OVERRIDE_RE.finditer(text):
            switch = f"{m[1].lower()}={m[2]}" if m[1] else f"n_layer={m[3]}"
            if switch not in found:
                found.append(switch)
        if found:
            out["switches"] = found
        for switch in found:  # "a 2-layer variant" is a switch of the ablation, not its baseline's size
            key, _, value = switch.partition("=")
            if value and key in out and _number(value, isinstance(out[key], int)) == out[key]:
                del out[key]
    if "name" in props:
        names = {v for m in NAME_RE.finditer(text) for v in m.groups() if v and v.lower() not in NAME_STOP}
        if len(names) == 1:
            out["name"] = names.pop()
    if "special_tokens" in props and re.search(r"\bspecial\b", text, re.I):
        tokens = list(dict.fromkeys(SPECIAL_TOKEN_RE.findall(text)))
        if tokens:
            out["special_tokens"] = tokens
    if "pattern" in props:
        patterns = {(m[1] or m[2] or "none").lower().replace("-", "") for m in PATTERN_RE.finditer(text)}
        if len(patterns) == 1:
            out["pattern"] = patterns.pop()
    if "wait" in props and NO_WAIT_RE.search(text):
        out["wait"] = False
    return out


def stated_values(
    args: dict[str, Any], clause: str, parameters: dict[str, Any], names: dict[str, list[str]]
) -> dict[str, Any]:
    """`args` with what the request's clause states outright put in, over the model's values.

    - `explicit_args` of the clause (shorthand expanded);
    - the one path it names, for the one path argument the model left out (or made up and grounding dropped);
    - the prompt for generation, verbatim (`stated_prompt`), unless it is an artifact's name (`names`:
      `router.lab_state_names`): the model sometimes answers the question instead of passing it on.
    """
    props = parameters.get("properties", {})
    out = {**args, **explicit_args(normalise_request(clause), parameters)}
    path_args = [p for p in PATH_ARGS if p in props and not out.get(p)]
    path = stated_path(clause)
    if len(path_args) == 1 and path:
        out[path_args[0]] = path
    prompt = stated_prompt(clause)
    if "prompt" in props and prompt and prompt not in {n for ns in names.values() for n in ns}:
        out["prompt"] = prompt
    return out
