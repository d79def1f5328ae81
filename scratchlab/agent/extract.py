"""What a request states outright, read with the tool's schema and the example bank, not phrase rules.

- `stated_numbers`: each number in the request goes to the numeric argument whose words stand next to
  it ("8 heads" -> n_head, "lr 3e-4" -> lr, "2k steps" -> max_iters). The words come from the
  argument's name and from the bank, which learns them from its labelled examples
  (`Bank.value_words`), so a new phrasing is taught by adding an example.
- `stated_enum`: an enum argument whose value, or the gloss its description gives that value
  ("'dense' (meaning) or 'bm25' (exact words)"), is named by the request; likewise a number the
  description glosses ("Sampling temperature; 0 is greedy" makes "greedy decoding" temperature 0).
- `stated_lists`: a list of values ("vocab 256, 512 and 1024", "2, 4 or 6 layers") goes to a list
  argument of 'name=v1,v2' specs, its name read from the words next to it through the words the
  argument's description gives them ("Names: n_layer (layers); vocab_size (vocab, tokens)."); a number
  of the list is then no value of any single argument. A setting named by a word alone, with no
  value ("which embedding width and learning rate"), joins that list as a bare name (`named_settings`).
- `stated_code`: Python the request writes out ("run this: import math; print(math.factorial(20))").
- `stated_integer_list`: a run of whole numbers ("70, 108, 105") for the one argument taking a list of
  integers (token ids).
- `stated_path`, `stated_quote`, `stated_name`, `stated_special_tokens`: a file path, quoted text, a
  name the user spells out ("call it haiku-bpe"), special tokens such as <|endoftext|>.

Each only fills or overrides an argument the chosen tool has, and a value that is ambiguous (two
numbers for one argument, two paths) is left to the model.

    stated_numbers("kick off a GPT run with 8 heads and a block size of 128", "train_gpt", schema, bank)
    # {"n_head": 8, "block_size": 128}
"""

from __future__ import annotations

import ast
import difflib
import functools
import os
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from scratchlab.agent.bank import (
    CONTEXT_WORDS,
    FUNCTION_WORDS,
    NEGATIONS,
    PHRASE_MARKS,
    Bank,
    as_number,
    negation,
    number_contexts,
    number_readings,
    phrase_ends,
    refused,
    stem,
    tokens,
    ungroup_digits,
    without_model_numbers,
)
from scratchlab.agent.router import PUNCTUATION, VAGUE_WORDS, quote_spans, within_bounds
from scratchlab.agent.state import ARG_KINDS, DETERMINERS, KIND_NOUNS

# Paths: with a slash or a known file extension ("docs/", "~/notes", "data/qa.jsonl", "notes.txt").
PATH_RE = re.compile(
    r"(?<![\w/.~@:-])(~?\.{0,2}(?:/[\w.-]+)+/?|[\w.-]+(?:/[\w.-]*)+|[\w.-]+\.(?:txt|md|markdown|jsonl|json|csv|tsv|pdf|py"
    r"|html?|rst|tex))(?![\w/])",
    re.IGNORECASE,
)
SPECIAL_TOKEN_RE = re.compile(r"<\|[\w.-]+\|>|</?[a-z]{2,8}>")  # <|endoftext|>, <pad>, </s>
PATH_ARGS = ("path", "data", "dataset")
TEXT_ARGS = ("text", "prompt")  # copied verbatim from quoted text
NAMING_WORDS = (
    "named",
    "called",
    "call",
    "name",
    "label",
    "->",
    "→",
)  # "call it X", "label the sweep X", "-> X"
NAME_FILLERS = {
    "it",
    "the",
    "new",
    "run",
    "tokenizer",
    "tokeniser",
    "index",
    "adapter",
    "sweep",
    "model",
    "as",
    "to",
    "=",
    "that",  # "call that one wren2"
    "this",
    "one",
    "result",  # "call the result glazetok"
    "output",
    "thing",
}
NOT_NAMES = {"it", "the", "a", "an", "after", "something", "whatever", "that", "this", "me"}
PARTICLES = {"off", "up", "out"}  # of a phrasal verb: "kick off", "spin up", "try out"
MIN_VOTES = 0.5
NAMES_MARK = "Names:"  # in a list argument's description: "Names: name (word, word); name; ..."
VALUE_LINKS = {"of", "at", "to", "is"}  # between a setting's word and its value: "a width of 64"
LIST_JOINERS = {"and", "or", "vs", "versus"}  # words between the values of a list (commas are dropped)
NEGATION_SCOPE = 3
# words that open a clause of their own, where a negation's scope ends ("not sure which lr", "no idea how wide")
CLAUSE_OPENERS = {"how", "which", "what", "whether", "if", "why", "when", "where", "who"}
NO_OPTION = {"none", "off"}  # the enum value a request that refuses the argument itself means
REFUSED = "~"  # marks a word said inside a negation's scope ("no early stopping": ~early, ~stopping)
# Nouns for the model itself label no setting: "2-layer gpt" taught the bank "gpt" for n_layer 7 times
# in 8, and "train a gpt 32 wide" then split its vote between n_layer and n_embd.
MODEL_NOUNS = KIND_NOUNS["run"] | KIND_NOUNS["base"]
GLOSS_STOP = {
    "the",
    "and",
    "for",
    "null",
    "default",
    "with",
    "style",
}  # evidence an argument needs before a number is given to it


def _types(prop: dict[str, Any]) -> list[str | None]:
    return [prop.get("type")] + [p.get("type") for p in prop.get("anyOf", [])]


# a flag's description that says what true means: "true: run in ... persistent interpreter"
TRUE_MARK = "true:"


def stated_flag(arg: str, text: str, description: str = "") -> bool:
    """True when `text` says the flag's name with no negation just before it ("wait for it", "use
    hyde"), or, in order and at most one word apart, two words that the description's "true: ..." says
    side by side ("start a persistent python interpreter" for run_python's session, "true: run in this
    conversation's persistent interpreter"); "no wait, ...", "don't wait" and "no need to wait"
    (`bank.refused`) say nothing here (a background run is `router`'s call)."""
    toks, name = tokens(text), arg.split("_")
    said = tokens(description.partition(TRUE_MARK)[2].split("(")[0]) if TRUE_MARK in description else []
    pairs = {(a, b) for a, b in zip(said, said[1:], strict=False)
             if not {a, b} & FUNCTION_WORDS and min(len(a), len(b)) > 2}  # fmt: skip
    for i, t in enumerate(toks):
        if toks[i : i + len(name)] == name or any((t, b) in pairs for b in toks[i + 1 : i + 3]):
            if refused(toks, i, reach=2) is None:
                return True
    return False


def _numeric(prop: dict[str, Any]) -> str | None:
    types = _types(prop)
    if "integer" in types:
        return "integer"
    return "number" if "number" in types else None


def admits(prop: dict[str, Any], value: float) -> bool:
    """True when `value` lies within the bounds the schema gives a number property (minimum, maximum,
    exclusive ones; those of its number branch when it is nullable): "bs 8 lr 6e-4" cannot make 8 an
    lr whose maximum is 1."""
    for p in [prop, *prop.get("anyOf", [])]:
        if p.get("type") in ("integer", "number"):
            return within_bounds(p, value)
    return True


MODIFIER_WEIGHT = 0.5  # a name's modifier alone ("block" of block_size) is weaker evidence than its head
NAME_FILLER_PARTS = ("n", "max", "num")  # parts of a name that say nothing of the setting


def _name_parts(arg: str) -> list[str]:
    """The words of an argument's name that say what it sets: n_layer -> [layer], block_size -> [block, size]."""
    return [p for p in arg.split("_") if len(p) > 1 and p not in NAME_FILLER_PARTS]


def _name_words(arg: str) -> dict[str, float]:
    """Words an argument's own name gives, with their weight: the name and its last part (the head
    noun) in either number count 1 (n_layer -> layer, layers; max_iters -> iters, iter), as does the
    name run together ("topk 30", "maxiters 500"); an earlier part (a modifier) counts `MODIFIER_WEIGHT` and only as
    written: "batch" is batch_size's, but "3 blocks" is no block_size ("one block" names a transformer
    block more often than its context). A word two names share counts half for each (`stated_numbers`)."""
    parts = _name_parts(arg)
    if not parts:
        return {arg: 1.0}
    head = parts[-1]
    words = dict.fromkeys(parts[:-1], MODIFIER_WEIGHT)
    words.update(dict.fromkeys({arg, arg.replace("_", ""), head, head + "s", head.rstrip("s")} - {""}, 1.0))
    return words


def own_words(arg: str) -> set[str]:
    """The words by which an argument's own name labels a number (`_name_words`): lora_alpha -> {lora_alpha,
    loraalpha, alpha, alphas, lora}."""
    return set(_name_words(arg))


def numeric_args(parameters: dict[str, Any]) -> list[str]:
    """The arguments of a schema that take a number."""
    return [a for a, p in parameters.get("properties", {}).items() if _numeric(p)]


def _initials(arg: str) -> str | None:
    """A name's initials, as shorthand writes them: vocab_size -> "vs" ("vs=700"), weight_decay -> "wd"."""
    return "".join(p[0] for p in arg.split("_") if p) if "_" in arg else None


WORD_SMOOTHING = 1.0  # for a tie, uses added to a learned word's total: P(argument | word) = n / (total + 1)


def _clear_winner(scores: Counter) -> tuple[str | None, float]:
    """The argument with at least `MIN_VOTES` and over 1.5 times the runner-up's votes, else None."""
    ranked = scores.most_common(2) + [(None, 0.0), (None, 0.0)]
    (best, s1), (_, s2) = ranked[0], ranked[1]
    return (best, s1) if best is not None and s1 >= MIN_VOTES and s1 > 1.5 * s2 else (None, 0.0)


def stated_numbers(text: str, action: str, parameters: dict[str, Any], bank: Bank | None) -> dict[str, Any]:
    """Numeric arguments of `action` whose values `text` states next to their words.

    Each number's label words (`bank.number_contexts`) vote for an argument: a word of the argument's
    own name counts 1, a word the bank learned for it counts P(argument | word) over the tool's
    numeric arguments; both times the word's nearness. A tie is settled with each learned word's share
    smoothed by one unseen use (`WORD_SMOOTHING`): "rank 4 instead" is a rank, though the bank saw
    "instead" once, after a step count. The best argument must clearly win. A word
    halfway between two numbers labels the one before it ("6 layers 8 heads") or, when that reading
    gives the winners more votes, the one after ("ctx 128 lr 3e-4"; `bank.number_readings`).

    Args:
        text: the request (or the clause of it this call serves), shorthand already expanded.
        action: the tool name (selects the bank's learned words).
        parameters: the tool's JSON schema.
        bank: the example bank (None: only the arguments' own names count).

    Returns:
        {argument: int | float} for each argument given exactly one number.
    """
    props = parameters.get("properties", {})
    numeric = {k: t for k, p in props.items() if (t := _numeric(p))}
    if not numeric:
        return {}
    if (name := stated_name(text)) and any(c.isdigit() for c in name):  # "name it pebble64": no 64 there
        text = " ".join(w if w.strip(PUNCTUATION) != name else "" for w in text.split())
    learned = bank.value_words(action, numeric) if bank is not None else {}
    word_total: Counter = Counter()
    for arg in numeric:
        word_total.update(learned.get(arg, Counter()))

    own_words = {arg: _name_words(arg) for arg in numeric}
    # initials name an argument when no other of the tool's has them ("bs" is batch_size's and block_size's)
    initials = Counter(_initials(arg) for arg in numeric)
    for arg in numeric:
        if (short := _initials(arg)) and initials[short] == 1:
            own_words[arg].setdefault(short, 1.0)
    for word, arg in _clipped_heads(text, numeric, {w for ws in own_words.values() for w in ws}).items():
        own_words[arg].setdefault(word, 1.0)  # "drop 0.1": dropout's name cut short
    # a word several names share says less of each ("block size 128": "size" is also batch_size's)
    sharing = Counter(w for words in own_words.values() for w in words)
    own_words = {arg: {w: v / sharing[w] for w, v in words.items()} for arg, words in own_words.items()}
    # "one block" is the singular of "4 blocks": for the number 1 a noun counts as its plural where
    # the plural is a known word (the transformer's blocks are n_layer's; "block" alone, block_size's)
    known = {w for words in own_words.values() for w in words} | set(word_total)
    # a record's noun the bank never saw next to a number stands for its kind's best-known noun: "which
    # three models did I train" labels the count as "the last three runs" does
    records = {k for kinds in ARG_KINDS.values() for k in kinds}  # kinds of records, not of text
    kin = {w: max(nouns, key=lambda n: word_total[n]) for k, nouns in KIND_NOUNS.items()
           if k in records and any(word_total[n] for n in nouns) for w in nouns if w not in known}  # fmt: skip

    # the records an argument counts, by the plural its description names them with: "How many runs
    # to list" counts runs, so "the last three runs" (or models) labels its number
    counted = {a: {t for t in _description_tokens(props[a]) if t in MODEL_NOUNS and t.endswith("s")}
               for a in numeric}  # fmt: skip

    # the words of a list argument's name that name no number's setting: "a single special token"
    # counts the list's items, no vocab_size
    items = {
        w for a, p in props.items() if a not in numeric and "array" in _types(p) for w in _name_words(a)
    } - known

    def votes(contexts: list[tuple[float, dict[str, float]]]) -> tuple[dict[str, set[float]], float]:
        found: dict[str, set[float]] = {}
        gained: list[tuple[str, float]] = []
        for value, context in contexts:
            if any((w in VAGUE_WORDS or w in items) and weight >= 1.0 for w, weight in context.items()):
                continue  # "changing one thing per attempt" counts things: no setting's value
            scores: Counter = Counter()
            smoothed: Counter = Counter()
            for arg in numeric:
                if not admits(props[arg], value):
                    continue  # out of the argument's bounds: not this argument's number
                own = own_words[arg]
                counts = learned.get(arg, Counter())
                for w, weight in context.items():
                    w = kin.get(w, w)
                    if value == 1 and len(w) > 2 and w + "s" in known:
                        w = w + "s"
                    if w in MODEL_NOUNS and w not in own and w not in counted[arg]:
                        continue  # "a gpt 32 wide": the noun names the model, "wide" the setting
                    share = counts.get(w, 0) / word_total[w] if word_total[w] else 0.0
                    scores[arg] += weight * (own.get(w, 0.0) + share)
                    sure = counts.get(w, 0) / (word_total[w] + WORD_SMOOTHING) if word_total[w] else 0.0
                    smoothed[arg] += weight * (own.get(w, 0.0) + sure)
            best, s1 = _clear_winner(scores)
            if best is None and scores:  # a tie: a word seen once says less than one seen often
                best, _ = _clear_winner(smoothed)
                s1 = scores[best] if best is not None and scores[best] >= MIN_VOTES else 0.0
                best = best if s1 else None
            if best is not None:
                found.setdefault(best, set()).add(value)
                gained.append((best, s1))
        # a reading giving one argument two values explains neither ("lr 6e-4 drop 0.1 ds ...")
        evidence = sum(s for arg, s in gained if len(found[arg]) == 1)
        return found, evidence

    # "ctx256 iters5k", "rank-16": a known word glued to its number labels it ("sweep-3" is an id)
    heads = {w for w, n in sharing.items() if n > 1}  # "size": block_size's and batch_size's
    readings = number_readings(text, known - (bank.id_prefixes() if bank is not None else set()), heads)
    found, _ = max((votes(r) for r in readings), key=lambda fe: fe[1])  # the first of equals
    for value, arg in _cut_names(text, numeric).items():  # "600 it", "20 min"
        if arg not in found and not any(value in vs for vs in found.values()):
            found[arg] = {value}
    out: dict[str, Any] = {}
    for arg, values in found.items():
        if len(values) != 1:
            continue
        v = values.pop()
        if numeric[arg] == "integer":
            if v != int(v):
                continue
            v = int(v)
        out[arg] = v
    return out


MIN_CLIPPED = 4  # letters a clipped name keeps: "drop" is dropout's, "see" no seed's
MIN_SKELETON = 3  # letters of a name written without its vowels: "blk" is block's, "lr" is left to initials
VOWELS = set("aeiou")


def _skeleton_of(word: str, part: str) -> bool:
    """True when `word` writes `part` with vowels left out ("blk" block, "lyrs" layers, "tmp"
    temperature): the same first letter, no vowel after it, each letter in `part` in order."""
    if len(word) < MIN_SKELETON:
        return False
    word = word[:-1] if word.endswith("s") and not part.endswith("s") else word
    if word[0] != part[0] or VOWELS & set(word[1:]) or word == part:
        return False
    rest = iter(part[1:])
    return all(ch in rest for ch in word[1:])


def _clipped_heads(text: str, numeric: Iterable[str], own: Collection[str]) -> dict[str, str]:
    """{word: argument} for each word of `text` that names exactly one argument cut short: the head
    of its name clipped ("drop 0.1" -> dropout, "temp 0.7" -> temperature; `MIN_CLIPPED` letters
    or more), or any word of its name without the vowels ("blk 128" -> block_size, `_skeleton_of`).
    Never a function word, nor a word already of some name (`own`)."""
    parts = {a: _name_parts(a) for a in numeric}
    out = {}
    for t in set(tokens(text)):
        if not t.isalpha() or t in FUNCTION_WORDS or t in own:
            continue
        clipped = {a for a, ps in parts.items() if ps and ps[-1].startswith(t) and ps[-1] != t}
        owners = clipped if len(t) >= MIN_CLIPPED else set()
        owners = owners or {a for a, ps in parts.items() if any(_skeleton_of(t, p) for p in ps)}
        if len(owners) == 1:
            out[t] = owners.pop()
    return out


def _cut_names(text: str, numeric: Iterable[str]) -> dict[float, str]:
    """{number: argument} for a number followed at once by the head of one argument's name cut short
    ("600 it", "80 its" -> max_iters; "20 min" -> budget_minutes): the word, less a plural "s", begins
    that head and is shorter. Of several arguments, the one whose name has no modifier (max_iters,
    not warmup_iters); none when that leaves several."""
    heads: dict[str, list[str]] = {}
    for arg in numeric:
        if parts := _name_parts(arg):
            heads.setdefault(parts[-1], []).append(arg)
    plain = {a for a in numeric if len(_name_parts(a)) == 1}
    toks = tokens(text)
    out: dict[float, str] = {}
    for t, w in zip(toks, toks[1:], strict=False):
        v, cut = as_number(t), w[:-1] if w.endswith("s") and len(w) > 2 else w
        if v is None or len(cut) < 2 or not cut.isalpha():
            continue
        args = [a for h, args in heads.items() if h.startswith(cut) and h != cut and h != w for a in args]
        args = [a for a in args if a in plain] if len(args) > 1 else args
        if len(args) == 1:
            out[v] = args[0]
    return out


KEPT_POINTERS = {"my", "our", "that", "those"}  # "at my favourite temperature", "at that favourite size"
KEPT_SCOPE = 7  # words after a pointer, within its phrase, that it reaches


def remembered_numbers(
    text: str,
    memories: Sequence[str],
    action: str,
    parameters: dict[str, Any],
    bank: Bank | None,
    every: bool = False,
) -> dict[str, Any]:
    """Numeric arguments `text` asks to take from what the user keeps ("at my favourite temperature",
    "with my usual learning rate", "at that favourite size"): an argument named (its own words, or those
    the bank taught it twice or more) within `KEPT_SCOPE` words after a `KEPT_POINTERS` word in the
    same comma-separated phrase ("my go-to width and number of heads"), given no number
    here, takes the number the newest
    kept memory states for it (`stated_numbers` over the memory). With `every` (the request asks for
    the kept settings without naming one: the bank's `kept` flag), every argument a memory states."""
    # a pointer reaches the words after it in its phrase: "my go-to width and number of heads, ..."
    phrases = [tokens(part) for part in text.split(",")]
    numeric = [a for a, p in parameters.get("properties", {}).items() if _numeric(p)]
    learned = bank.value_words(action, numeric) if bank is not None else {}
    given = stated_numbers(text, action, parameters, bank)
    props = parameters.get("properties", {})
    # words an argument's description uses that the bank saw label its number, and no other's:
    # "Number of transformer blocks (the depth)" makes "my usual depth" the kept n_layer
    described = unshared(
        {a: {w for w in _description_tokens(props[a]) if learned.get(a, Counter()).get(w)} for a in numeric}
    )
    out: dict[str, Any] = {}
    for arg, prop in props.items():
        if not _numeric(prop) or arg in given:
            continue
        words = set(_name_words(arg)) | {w for w, n in learned.get(arg, Counter()).items() if n >= 2}
        words |= described[arg]
        if not every and not any(
            t in words and KEPT_POINTERS & set(part[max(0, i - KEPT_SCOPE) : i])
            for part in phrases
            for i, t in enumerate(part)
        ):
            continue
        for fact in memories:
            said = stated_numbers(fact, action, parameters, bank)
            if arg in said:
                out[arg] = said[arg]
                break
            if (only := _sole_number(fact, words, prop)) is not None:
                out[arg] = only
                break
    return out


def _sole_number(fact: str, words: set[str], prop: dict[str, Any]) -> int | float | None:
    """The number of a kept fact that states one number and names the argument by `words`: "my
    preferred seed for samples is 1234" is the seed, though "samples" stands nearer to 1234."""
    nums = [v for v, _ in number_contexts(fact)]
    if len(nums) != 1 or not words & set(tokens(fact)) or not admits(prop, nums[0]):
        return None
    v = nums[0]
    if _numeric(prop) == "integer":
        return int(v) if float(v).is_integer() else None
    return v


def value_lists(text: str, known: dict[str, str] | None = None) -> list[tuple[list[float], list[str]]]:
    """Runs of two or more numbers with only ", " or `LIST_JOINERS` between them and the "and"/"or"
    before the last ("1e-3 and 3e-3, 2 layers" is a list of two), each with the words next to it,
    nearest first (`CONTEXT_WORDS` before, then as many after; word pairs joined by "_" too, so
    "learning rates" reads as "learning_rate"). With `known` (`setting_words`), numbers joined by
    commas alone whose next words before and after name two settings are no list: "width 32, 50 steps"
    is a width and a step count.

        value_lists("try vocab 256, 512 and 1024 please")  # [([256.0, 512.0, 1024.0], ["vocab", "try", ...])]
    """
    chunks = [text]
    for mark in PHRASE_MARKS:  # "r=4,8 - 2 trials": a dash or a semicolon ends the list
        chunks = [part for chunk in chunks for part in chunk.split(mark)]
    toks: list[str] = []
    for n, chunk in enumerate(chunks):
        toks += [";"] * bool(n) + [
            t for seg in chunk.split(", ") for t in [*tokens(without_model_numbers(ungroup_digits(seg))), ","]
        ][:-1]
    words_at = [j for j, t in enumerate(toks)
                if t not in (",", ";") and as_number(t) is None and t not in FUNCTION_WORDS]  # fmt: skip

    def number_at(k: int) -> bool:
        return k < len(toks) and as_number(toks[k]) is not None

    def member_ends(k: int) -> bool:  # the number at k ends its list member: "4," "4 or", "6?" (no label)
        return k + 1 >= len(toks) or toks[k + 1] in (",", ";") or toks[k + 1] in LIST_JOINERS

    def labels_list(k: int) -> bool:  # the word at k, after a list's first number, is the list's label
        word = toks[k]
        if word in (",", ";") or word in FUNCTION_WORDS or as_number(word) is not None:
            return False
        return k + 2 < len(toks) and toks[k + 1] == "," and number_at(k + 2) and member_ends(k + 2)

    out, i = [], 0
    while i < len(toks):
        values, j, last, closed, label = [], i, i, False, []
        while j < len(toks) and not closed:
            v = as_number(toks[j])
            if v is not None:
                values.append(v)
                last, j = j, j + 1
            elif (
                values
                and toks[j] == ","
                and j + 2 < len(toks)
                and toks[j + 1] in LIST_JOINERS
                and number_at(j + 2)
            ):
                closed = True  # "4, or 6"
                values.append(as_number(toks[j + 2]))
                last, j = j + 2, j + 3
            elif values and (toks[j] == "," or toks[j] in LIST_JOINERS) and number_at(j + 1):
                closed = toks[j] != ","
                values.append(as_number(toks[j + 1]))
                last, j = j + 1, j + 2
            elif len(values) == 1 and j == last + 1 and labels_list(j):  # "2 layers, 4, or 6"
                label = [toks[j]]
                j += 1
            else:
                break
        if len(values) >= 2 and known and not closed and _labelled_apart(toks, i, last, known):
            values = []
        if len(values) >= 2:
            chunk = _chunk(toks, i)
            # a word past another number is that number's: "try 2e-4, 8e-4 and 3e-3, 800 steps apiece"
            start = max((k for k in range(i) if number_at(k)), default=-1)
            end = next((k for k in range(last + 1, len(toks)) if number_at(k)), len(toks))
            before = [toks[k] for k in words_at if start < k < i and _chunk(toks, k) == chunk][
                -CONTEXT_WORDS:
            ][::-1]
            after = [toks[k] for k in words_at if last < k < end and _chunk(toks, k) == chunk][:CONTEXT_WORDS]
            pairs = [f"{b}_{a}" for a, b in zip(before, before[1:], strict=False)]
            pairs += [f"{a}_{b}" for a, b in zip(after, after[1:], strict=False)]
            near = [w for pair in zip(before, after, strict=False) for w in pair]
            out.append((values, label + pairs + near + before[len(after) :] + after[len(before) :]))
        i = max(last, i) + 1
    return out


def _labelled_apart(toks: list[str], first: int, last: int, known: dict[str, str]) -> bool:
    """True when the word just before `first` and the word just after `last` name two settings, and
    no number or range follows that word ("lr 1e-3, 3e-3 steps 50": "steps" labels the 50)."""
    before = known.get(toks[first - 1]) or known.get(stem(toks[first - 1])) if first else None
    after = known.get(toks[last + 1]) or known.get(stem(toks[last + 1])) if last + 1 < len(toks) else None
    labels_next = last + 2 < len(toks) and (
        as_number(toks[last + 2]) is not None or RANGE_MARK in toks[last + 2]
    )  # "heads 2,4,8 & lr 3e-4..3e-3": the lr's value is its range
    return before is not None and after is not None and before != after and not labels_next


def _chunk(toks: list[str], k: int) -> int:
    """Which phrase token `k` is in: the phrase ends ";" before it."""
    return toks[:k].count(";")


def setting_words(prop: dict[str, Any]) -> dict[str, str]:
    """{word: setting name} from the "Names: lr (learning_rate); n_layer (layers); ..." sentence of
    an argument's description ({} without one)."""
    desc = prop.get("description", "")
    if NAMES_MARK not in desc:
        return {}
    out = {}
    for item in desc.split(NAMES_MARK, 1)[1].split(". ")[0].rstrip(".").split(";"):
        name, _, words = item.strip().partition("(")
        if name.strip():
            out.update({w.strip(): name.strip() for w in [name, *words.rstrip(")").split(",")] if w.strip()})
    return out


def arg_words(action: str, parameters: dict[str, Any], bank: Bank | None) -> dict[str, str]:
    """{word: numeric argument} for the words that label a number of `action`: each argument's own
    name words and those the bank taught it twice or more ("steps" -> max_iters); a word two arguments
    share is left out."""
    numeric = [a for a, p in parameters.get("properties", {}).items() if _numeric(p)]
    learned = bank.value_words(action, numeric) if bank is not None else {}
    words = {
        a: set(_name_words(a)) | {w for w, n in learned.get(a, Counter()).items() if n >= 2} for a in numeric
    }
    return {w: arg for arg, own in unshared(words).items() for w in own}


def unshared(words: Mapping[str, Collection[str]]) -> dict[str, set[str]]:
    """{argument: its words that no other argument of `words` has}: a word siblings share names
    none of them ("lora" is lora_alpha's and lora_dropout's; "size" block_size's and batch_size's)."""
    seen = Counter(w for ws in words.values() for w in set(ws))
    return {a: {w for w in ws if seen[w] == 1} for a, ws in words.items()}


@functools.lru_cache(maxsize=512)
def _tokens_of(description: str) -> tuple[str, ...]:
    return tuple(tokens(description))


def _description_tokens(prop: Mapping[str, Any]) -> tuple[str, ...]:
    """The words of an argument's schema description, tokenised once per distinct description."""
    return _tokens_of(str(prop.get("description", "") or ""))


def stated_lists(
    text: str, parameters: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, tuple[dict[str, str], list[tuple[str, list[float]]]]]:
    """{list argument: (its `setting_words`, [(setting, values)])}: the value lists of `text` whose
    words name a setting the argument's description names. `labels` ({word: argument}, `arg_words`)
    also name what a number next to a list labels ("width 32, 50 steps": 50 is the steps)."""
    out: dict[str, tuple[dict[str, str], list[tuple[str, list[float]]]]] = {}
    lists = value_lists(text)
    for arg, prop in parameters.get("properties", {}).items():
        known = setting_words(prop) if lists else {}
        for values, words in value_lists(text, {**(labels or {}), **known}) if known else []:
            setting = next((known[w] for w in words for w in (w, stem(w)) if w in known), None)
            if setting is not None:
                out.setdefault(arg, (known, []))[1].append((setting, values))
    return out


RANGE_MARK = ".."  # "lr 1e-4..3e-3": the search tools' own 'name=low..high' form
RANGE_OPENERS = {"to": "from", "and": "between"}  # "from 1e-4 to 3e-3", "between 0 and 0.3"
# words between a setting and its range: "lr in the range 1e-4..3e-3"
RANGE_SKIP = {"from", "between", "in", "over", "of", "across", "the", "range"}  # fmt: skip


def stated_ranges(text: str, parameters: dict[str, Any]) -> tuple[dict[str, list[tuple[str, str]]], set[int]]:
    """({list argument: [(setting, "low..high")]}, the indexes of the range's words in `text.split()`)
    for each range of numbers the text gives a setting that a list argument's description names
    (`setting_words`): "sweep lr 1e-4..3e-3" (or "lr=1e-4..3e-3") -> search lr=1e-4..3e-3 (the `search` held "lr" alone);
    "learning rate from 1e-4 to 3e-3", "dropout between 0 and 0.3", "2 to 6 layers". The numbers keep
    the user's spelling."""
    raw = text.split()
    words = [w.strip(",;:()'\"`?!").lower() for w in raw]
    words = [w[:-1] if w.endswith(".") and not w.endswith(RANGE_MARK) else w for w in words]
    spans: list[tuple[int, int, str, str]] = []  # (first, last word index, low, high)
    keys: dict[int, str] = {}  # the setting written before "=" in the span's own word ("lr=1e-4..3e-3")
    for i, w in enumerate(words):
        key, eq, value = w.rpartition("=")
        lo, mark, hi = value.partition(RANGE_MARK)
        if mark and as_number(lo) is not None and as_number(hi) is not None:
            spans.append((i, i, lo, hi))
            keys.update({i: key} if eq else {})
        elif i + 2 < len(words) and words[i + 1] in RANGE_OPENERS and as_number(w) is not None:
            opener = RANGE_OPENERS[words[i + 1]]
            if as_number(words[i + 2]) is not None and (opener == "from" or (i and words[i - 1] == opener)):
                spans.append((i - (i > 0 and words[i - 1] == opener), i + 2, w, words[i + 2]))
    out: dict[str, list[tuple[str, str]]] = {}
    used: set[int] = set()
    for arg, prop in parameters.get("properties", {}).items():
        known = setting_words(prop)
        if not known:
            continue
        for first, last, lo, hi in spans:
            before = [w for w in words[max(0, first - 4) : first] if w not in RANGE_SKIP][-2:]
            near = [*keys.get(first, "").split(), *reversed(before), *words[last + 1 : last + 2]]
            pairs = ["_".join(before[-2:])] if len(before) == 2 else []
            setting = next((known.get(w) or known.get(stem(w)) for w in pairs + near
                            if known.get(w) or known.get(stem(w))), None)  # fmt: skip
            if setting is not None:
                out.setdefault(arg, []).append((setting, f"{lo}{RANGE_MARK}{hi}"))
                # the setting's words before the range are the range's too: "heads 2,4,8 & lr
                # 3e-4..3e-3" had read "lr" as a second label of the list before it
                used.update(range(_label_start(words, first, setting, known), last + 1))
    return out, used


def _label_start(words: list[str], first: int, setting: str, known: dict[str, str]) -> int:
    """Where the words naming `setting` start, among the 3 before index `first` ("learning rate
    1e-4..3e-3" -> the index of "learning"); `first` when none of them names it."""
    for k in range(first - 1, max(0, first - 4) - 1, -1):
        if k and known.get(f"{words[k - 1]}_{words[k]}") == setting:
            return k - 1
        if setting in (known.get(words[k]), known.get(stem(words[k]))):
            return k
    return first


def list_tool(action: str, prior: dict[str, float], tools: dict[str, dict], clause: str) -> str | None:
    """The tool that can hold a list of values the clause gives one setting, when the chosen `action`
    holds none (`stated_lists`) and the bank's prior likes that tool better than `action`: "which depth
    suits ... - 2 layers, 4, or 6? Give each a go" chose train_gpt (sweep_gpt's prior 0.52, train_gpt's
    0.36), and a single run then took 6 as its step count. None when no other tool holds the list."""
    params = lambda name: tools.get(name, {}).get("parameters", {})  # noqa: E731
    if action not in tools or stated_lists(clause, params(action)):
        return None
    holders = [n for n in tools if n != action and stated_lists(clause, params(n))]
    best = max(holders, key=lambda n: prior.get(n, 0.0), default=None)
    return best if best is not None and prior.get(best, 0.0) > prior.get(action, 0.0) else None


def unlabelled_lists(
    text: str, parameters: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, tuple[dict[str, str], list[tuple[str, list[float]]]]]:
    """`stated_lists`' form for a list argument the text gives one list of values with no setting's word
    next to it while naming exactly one setting by word alone (`named_settings`, also by a word the
    bank taught that setting's own argument, `labels`): "Which dropout suits ... model best: 0, 0.1 or
    0.2?" searches dropout=0,0.1,0.2 (the word stood too far from its list).
    A list next to another argument's label (`labels`: "width 32, 50 steps") is no such list."""
    out: dict[str, tuple[dict[str, str], list[tuple[str, list[float]]]]] = {}
    for arg, prop in parameters.get("properties", {}).items():
        known = setting_words(prop)
        if not known:
            continue
        said = {**(labels or {}), **known}
        free = [values for values, words in value_lists(text, said)
                if not any(w in said or stem(w) in said for w in words)]  # fmt: skip
        # with no setting named by its own words, one the bank taught that setting's own argument:
        # "how wide ... try 64, 128 and 256"
        taught = {w: a for w, a in (labels or {}).items() if a in known.values()}
        bare = named_settings(text, prop) or named_settings(text, prop, learned=taught)
        if len(free) == 1 and len(bare) == 1:
            out[arg] = (known, [(bare[0], free[0])])
    return out


def named_settings(
    text: str, prop: dict[str, Any], valued: Iterable[str] = (), labels: Collection[str] = (),
    learned: Mapping[str, str] | None = None,
) -> list[str]:  # fmt: skip
    """The settings of a list argument's description ("Names: ...", `setting_words`) that `text` names
    by a word alone, in the text's order: "which mix of embedding width and learning rate wins" ->
    ["n_embd", "lr"]. A word pair joined by "_" is read first ("learning rate" -> learning_rate). A
    word with a number next to it gives that setting a value ("at two layers", "width of 64"), and a
    setting in `valued` has one from elsewhere, so neither is a setting to search; nor is one said
    inside a negation ("don't touch the learning rate"). A number after the word that a word of
    another argument's name (`labels`) follows is that argument's: "rate and dropout: 6 trials"
    searches dropout. `learned` ({word: setting}) adds words the bank taught the settings ("how wide"
    names n_embd)."""
    known = setting_words(prop)
    if not known:
        return []
    known = {**(learned or {}), **known}
    out: list[str] = []
    # a number across a comma is another phrase's: "over rank and dropout, 8 trials" searches dropout
    for phrase in ungroup_digits(text).replace(";", ",").split(","):
        _name_settings(tokens(phrase), known, set(valued), set(labels), out)
    return out


def _name_settings(
    toks: list[str], known: dict[str, str], valued: set[str], labels: set[str], out: list[str]
) -> None:
    """`named_settings` within one phrase, appending to `out`."""
    off = negated(toks)

    def number_at(k: int) -> bool:
        if not 0 <= k < len(toks) or as_number(toks[k]) is None:
            return False
        return k < i or k + 1 == len(toks) or toks[k + 1] not in labels

    i = 0
    while i < len(toks):
        pair = f"{toks[i]}_{toks[i + 1]}" if i + 1 < len(toks) else ""
        width = 2 if pair and (pair in known or stem(pair) in known) else 1
        word = pair if width == 2 else toks[i]
        setting = known.get(word) or known.get(stem(word))
        end = i + width
        after = end + 1 if end < len(toks) and toks[end] in VALUE_LINKS else end
        if setting and i not in off and not (number_at(i - 1) or number_at(end) or number_at(after)):
            if setting not in out and setting not in valued:
                out.append(setting)
        i += width


def _with_named(
    out: dict[str, Any], text: str, parameters: dict[str, Any], valued: Iterable[str]
) -> dict[str, Any]:
    """`out` with the settings `text` names by word (`named_settings`) in each list argument that has
    setting names: those first, in the text's order (the model's spec for one kept, "lr=1e-4..1e-2"),
    then the other specs it wrote."""
    valued = set(valued)
    props = parameters.get("properties", {})
    for arg, prop in props.items():
        labels = {w for other in props if other != arg for w in _name_words(other)}
        named = named_settings(text, prop, valued, labels)
        if not named:
            continue
        known = setting_words(prop)
        specs = [e for e in (out.get(arg) or []) if isinstance(e, str)]
        setting_of = {e: known.get(e.split("=")[0].strip().lower(), e.split("=")[0].strip()) for e in specs}
        first = [next((e for e in specs if setting_of[e] == n), n) for n in named]
        out[arg] = [*first, *(e for e in specs if e not in first)]
    return out


def _with_lists(
    out: dict[str, Any], lists: dict[str, tuple[dict[str, str], list[tuple[str, list[float]]]]]
) -> tuple[dict[str, Any], Counter]:
    """`out` with each stated list as a 'setting=v1,v2' spec (replacing the model's entry for that
    setting), and the values the lists took."""
    taken: Counter = Counter()
    for arg, (known, found) in lists.items():
        specs = [e for e in (out.get(arg) or []) if isinstance(e, str)]
        for setting, values in found:
            specs = [
                e
                for e in specs
                if known.get(e.split("=")[0].strip().lower()) != setting and _spec_values(e) != values
            ]  # fmt: skip  (one list of values, one setting)
            specs.append(f"{setting}=" + ",".join(f"{v:g}" for v in values))
            taken.update(values)
        out[arg] = specs
    return out, taken


def _spec_values(spec: str) -> list[float] | None:
    """The numbers of a 'setting=v1,v2' spec, None when it has another form."""
    values = [as_number(v.strip()) for v in spec.partition("=")[2].split(",")]
    return None if not values or None in values else [float(v) for v in values]


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _one_use_each(
    out: dict[str, Any], stated: dict[str, Any], in_lists: Counter, text: str, names: Collection[str] = ()
) -> dict[str, Any]:
    """`out` without a single value whose number the request spent elsewhere: inside a list ("2, 4 or
    6 layers" is no `n_layer=6`, but "2, 4 and 8 heads for a 2-layer gpt" keeps `n_layer=2`, as 2 is
    written twice), or, for the model's values, on another argument ("200 merges" is `num_merges=200`,
    not also `vocab_size=200`). A number the model put in more arguments than the request writes it
    goes from those whose name the request does not say ("... give up after 20 min" had n_layer, n_head,
    n_embd, ... = 20; "333 entries in its vocabulary" keeps vocab_size=333 and drops num_merges=333;
    "one block, ..., 120 steps" drops block_size=120, "block" being the label of the 1)."""
    spent = in_lists + Counter(n for v in stated.values() if (n := _number(v)) is not None)
    contexts = number_contexts(text)
    in_text = Counter(v for v, _ in contexts)
    guessed = Counter(n for k, v in out.items() if k not in stated and (n := _number(v)) is not None)
    if not spent and not any(guessed[n] > in_text[n] >= 1 for n in guessed):
        return out

    def keep(k: str, v: Any) -> bool:
        n = _number(v)
        if n is None:
            return True
        if k in stated:
            return not in_lists[n] or in_text[n] > in_lists[n]
        if guessed[n] + spent[n] > in_text[n] >= 1:  # a word that labels another number says nothing
            others = {w for v, words in contexts if v != n for w in words}  # "one block, ..., 120 steps"
            return says_name(k, " ".join(t for t in tokens(text) if t not in others), names)
        return not spent[n] or in_text[n] > spent[n]

    return {k: v for k, v in out.items() if keep(k, v)}


def says_name(arg: str, text: str, siblings: Collection[str] = ()) -> bool:
    """True when a word of `text` begins with a part of the argument's name, or a part with the word
    (3+ letters): "vocabulary" says vocab_size, "iters" max_iters. A part that another of the tool's
    arguments (`siblings`) has as well picks out neither: "LoRA-tune ... at rank 2" says nothing of
    lora_alpha, whose "lora" lora_dropout shares."""
    shared = {p for s in siblings if s != arg for p in _name_parts(s)}
    words = [t for t in tokens(text) if len(t) >= 3 and t.isalpha()]
    parts = [p for p in _name_parts(arg) if len(p) >= 3 and p not in shared]
    return any(w.startswith(p) or p.startswith(w) for p in parts for w in words)


def enum_options(prop: dict[str, Any]) -> list[str]:
    """The string values of an enum property, or of a list property's enum items (`switches`)."""
    for p in (prop, prop.get("items") or {}):
        opts = p.get("enum") or next((b.get("enum") for b in p.get("anyOf", []) if b.get("enum")), None)
        if opts:
            return [o for o in opts if isinstance(o, str)]
    return []


def patterned(text: str, prop: dict[str, Any]) -> list[str]:
    """The words of `text` that a list property's item `pattern` (in the schema) admits whole, in
    order: the `key=value` variants of `switches` ("again, but also try mlp_ratio=2" -> mlp_ratio=2)."""
    items = prop.get("items") or {}
    patterns = [b["pattern"] for b in (items, *items.get("anyOf", [])) if b.get("pattern")]
    words = (w.strip(",;:()'\"`").rstrip(".") for w in text.split())
    return list(dict.fromkeys(w for w in words if w and any(re.fullmatch(p, w) for p in patterns)))


def glosses(prop: dict[str, Any]) -> dict[str, set[str]]:
    """{enum value: terms of its gloss}: the description's text between one quoted value and the next
    ("'dense' (meaning) or 'bm25' (exact words)" -> {"dense": {"meaning"}, "bm25": {"exact", "words"}}).
    A word the gloss itself negates is marked refused ("'none' (no pruning)" -> {"~pruning"}), so it
    matches only a request that refuses it too ("no pruning", not "median pruning")."""
    options = enum_options(prop)
    out: dict[str, set[str]] = {}
    for opt, parts in _gloss_parts(prop).items():
        terms = set()
        for part in parts:  # a negation's scope in a gloss: the rest of its comma-separated part
            toks = tokens(part)
            first = next((i for i, t in enumerate(toks) if t in NEGATIONS), len(toks))
            terms |= {(REFUSED if i > first else "") + stem(w) for i, w in enumerate(toks)
                      if len(w) > 2 and w not in GLOSS_STOP and w not in options and w not in NEGATIONS}  # fmt: skip
        out[opt] = terms
    return out


def _gloss_parts(prop: dict[str, Any]) -> dict[str, list[str]]:
    """{enum value: the comma-separated parts of its gloss} ("'dense' (by meaning, semantic)" ->
    {"dense": ["(by meaning", " semantic)"]})."""
    desc = prop.get("description", "") or ""
    options = enum_options(prop)
    marks = sorted((desc.find(f"'{o}'"), o) for o in options if f"'{o}'" in desc)
    out = {}
    for n, (pos, opt) in enumerate(marks):
        end = marks[n + 1][0] if n + 1 < len(marks) else len(desc)
        seg = desc[pos + len(opt) + 2 : end].split(". ")[0]  # the gloss ends with its sentence
        out[opt] = seg.split(";")[0].split(",")  # "...; null for hybrid" is not part of the gloss
    return out


def _phrases_said(prop: dict[str, Any], toks: Sequence[str]) -> dict[str, int]:
    """{enum value: how many of its gloss's phrases of two or more words `toks` says word for word}:
    "search by meaning only: ... the best 2 hits" says dense's "by meaning"; hybrid's "best" is one
    loose word, and the two tied on one term each."""
    said = f" {' '.join(toks)} "
    return {opt: sum(len(t) >= 2 and f" {' '.join(t)} " in said for t in (tokens(p.split(")")[0]) for p in parts))
            for opt, parts in _gloss_parts(prop).items()}  # fmt: skip


POSTPOSED_NEGATIONS = {"off", "disabled"}  # shorthand that ends its phrase: "regex off", "pruning disabled"


def negated(toks: Sequence[str], text: str = "") -> set[int]:
    """Positions of `toks` inside a negation's scope: the `NEGATION_SCOPE` words after a negation,
    determiners aside (`bank.negation`: "no", "without", "than", "taking out", ...; "by meaning rather than exact words": exact, words),
    up to a word that opens a clause of its own (`CLAUSE_OPENERS`: "no idea how wide ..." refuses no width).
    Given the `text` the tokens come from, a scope ends with its comma-separated phrase: "no positional
    embeddings, rotary" refuses no rotary; and a `POSTPOSED_NEGATIONS` word that ends its phrase refuses
    the words of the phrase before it ("tok 6k vocab, regex off, ..." refuses regex)."""
    bounds = phrase_ends(text) if text else []
    bounds = bounds if bounds and bounds[-1] == len(toks) else [len(toks)]
    out: set[int] = set()
    for i in range(len(toks)):
        if negation(toks, i):
            end = next(b for b in bounds if b > i)
            # NEGATION_SCOPE words, not counting a determiner: "skip the pre-split regex"
            j, counted = i + 1, 0
            while j < end and counted < NEGATION_SCOPE and toks[j] not in CLAUSE_OPENERS:
                counted += toks[j] not in DETERMINERS
                j += 1
            out.update(range(i + 1, j))
        elif toks[i] in POSTPOSED_NEGATIONS and i + 1 in bounds:  # "regex off,": the phrase before it
            start = max((b for b in [0, *bounds] if b <= i), default=0)
            out.update(range(max(start, i - NEGATION_SCOPE), i))
    return out


def gloss_terms(text: str) -> set[str]:
    """The terms of `text` a gloss is matched against: its words, stemmed, those said inside a
    negation's scope marked refused ("random sampling and no pruning" -> random, sampling, ~pruning)."""
    toks = tokens(text)
    off = negated(toks, text)
    return {(REFUSED if i in off else "") + stem(t) for i, t in enumerate(toks)}


def _refused_word(word: str, terms: Collection[str]) -> bool:
    """True when `terms` (`gloss_terms`) refuse `word`: its stem, or a verb it is made from, 4+ letters
    that start it ("don't prune" refuses the pruner)."""
    own = stem(word)
    return any(t.startswith(REFUSED) and (t[len(REFUSED) :] == own or (len(t) - len(REFUSED) >= 4 and own.startswith(t[len(REFUSED) :])))
               for t in terms)  # fmt: skip


def stated_enum(text: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Enum arguments that `text` names by value ("gpt2", "bm25"), by the value's name without its
    version number ("smollm" -> 'smollm2'), or by the value's gloss ("exact words"), matched with
    negation ("by meaning rather than exact words" is 'dense', "no early stopping" is the pruner
    'none'). A list of enum values (`switches`) gets every value the text names, in the text's order:
    by value, or by a gloss whose matched terms no other value's gloss matches as well."""
    toks = tokens(text)
    off = negated(toks, text)
    words = {w for i, t in enumerate(toks) if i not in off for w in (t, stem(t))}  # "not bm25" names no bm25
    terms = gloss_terms(text)
    joined = " ".join(REFUSED + t if i in off else t for i, t in enumerate(toks))
    out: dict[str, Any] = {}
    for arg, prop in parameters.get("properties", {}).items():
        options = enum_options(prop)
        if not options:
            continue
        named = [o for o in options if o.lower() in words or f" {' '.join(tokens(o))} " in f" {joined} "]
        if not named:
            bare = {o: o.lower().rstrip("0123456789") for o in options}
            named = [o for o, b in bare.items() if b != o.lower() and len(b) >= 4 and b in words]
        if not named:  # "tokenziers only": a long word spelled one slip away from a value
            named = [o for o in options if any(_misspelt(w, o.lower()) for w in words)][:1]
        matched = {o: g & terms for o, g in glosses(prop).items()}
        if "array" in _types(prop):
            named += [o for o, m in matched.items() if m and o not in named
                      and not any(m <= m2 for o2, m2 in matched.items() if o2 != o)]  # fmt: skip
            named = sorted(named, key=lambda o: _first_mention(o, matched.get(o, set()), toks))
            named += [w for w in patterned(text, prop) if w not in named]  # "also try mlp_ratio=2"
            if named:
                out[arg] = named
            continue
        if not named and all(_refused_word(w, terms) for w in arg.split("_")):
            named = [o for o in options if o.lower() in NO_OPTION][:1]  # "no pruner": the pruner 'none'
        if len(named) != 1:  # by the gloss: the value whose gloss shares the most terms, clearly
            phrased = _phrases_said(prop, toks)  # a gloss's phrase said word for word counts again
            overlap = sorted(
                ((len(m) + phrased.get(o, 0) * bool(m), o) for o, m in matched.items()), reverse=True
            )
            if overlap and overlap[0][0] >= 1 and (len(overlap) == 1 or overlap[0][0] > overlap[1][0]):
                named = [overlap[0][1]]
        if len(named) == 1:
            out[arg] = named[0]
    return out


TYPO_MIN_CHARS, TYPO_RATIO = 7, 0.85


def _misspelt(word: str, option: str) -> bool:
    """True when `word` reads as `option` with a slip of the keys: both `TYPO_MIN_CHARS`+ letters, the
    same first three, and a `difflib` similarity of at least `TYPO_RATIO` ("tokenzier" for tokenizer;
    "having" is no "halving": too short to tell)."""
    return (word != option and min(len(word), len(option)) >= TYPO_MIN_CHARS and word[:3] == option[:3]
            and difflib.SequenceMatcher(None, word, option).ratio() >= TYPO_RATIO)  # fmt: skip


def _first_mention(option: str, matched: set[str], toks: list[str]) -> int:
    """Where `toks` first says `option` or one of its matched gloss terms (len(toks) when nowhere)."""
    said = {option.lower(), *(m.lstrip(REFUSED) for m in matched)}
    return next((i for i, t in enumerate(toks) if t in said or stem(t) in said), len(toks))


def number_glosses(prop: dict[str, Any]) -> dict[float, list[set[str]]]:
    """{number: the words of each of its glosses} for the "N is ..." / "N means ..." clauses of a
    property's description ("Sampling temperature; 0 is greedy, 0 means deterministic, higher is more
    random." -> {0.0: [{"greedy"}, {"deterministic"}]})."""
    desc = str(prop.get("description", "") or "")
    for sep in ("; ", ", ", ". ", " (", ")"):
        desc = desc.replace(sep, "|")
    out: dict[float, list[set[str]]] = {}
    for part in desc.split("|"):
        words = part.strip().rstrip(".").split()
        value = as_number(words[0]) if len(words) >= 3 and words[1] in ("is", "means", "=") else None
        gloss = {stem(w) for w in tokens(" ".join(words[2:])) if len(w) > 2 and w not in GLOSS_STOP}
        if value is not None and gloss:
            out.setdefault(float(value), []).append(gloss)
    return out


ABSENT = {"no", "without"}  # "no dropout", "without weight decay": the setting at zero


def refused_numbers(text: str, parameters: dict[str, Any]) -> dict[str, int | float]:
    """Numeric arguments the request turns off by name: {argument: 0} when "no" or "without" comes
    just before a word of the argument's name that no other numeric argument's name has ("no
    dropout" -> lora_dropout, "without warmup" -> warmup_iters), and the argument admits 0."""
    props = parameters.get("properties", {})
    numeric = {a: _numeric(p) for a, p in props.items() if _numeric(p) and admits(p, 0)}
    parts = {a: set(_name_parts(a)) for a in props if _numeric(props[a])}
    shared = Counter(w for ws in parts.values() for w in ws)
    toks = tokens(text)
    out: dict[str, int | float] = {}
    for i, t in enumerate(toks[:-1]):
        if t not in ABSENT:
            continue
        word = stem(toks[i + 1])
        owners = [a for a in numeric if any(stem(w) == word and shared[w] == 1 for w in parts[a])]
        if len(owners) == 1:
            out[owners[0]] = 0 if numeric[owners[0]] == "integer" else 0.0
    return out


def stated_glossed_numbers(text: str, parameters: dict[str, Any]) -> dict[str, int | float]:
    """Numeric arguments whose value `text` gives by a gloss alone (every word of a gloss of exactly one
    number)."""
    words = set(tokens(text)) | {stem(w) for w in tokens(text)}
    out: dict[str, int | float] = {}
    for arg, prop in parameters.get("properties", {}).items():
        named = [v for v, glosses_ in number_glosses(prop).items() if any(g <= words for g in glosses_)]
        if len(named) == 1 and _numeric(prop):
            out[arg] = int(named[0]) if _numeric(prop) == "integer" else named[0]
    return out


def is_path_like(text: str) -> bool:
    """A file or folder a request names: it starts like a path ("~/", "./", "../", "/"), ends with "/",
    has a file extension, or exists ("train/val" and "and/or" do not)."""
    last = text.rstrip("/").rsplit("/", 1)[-1]
    if len(text.rstrip("/")) < 2:  # "w/" is "with"
        return False
    return (text.startswith(("~", ".", "/")) or text.endswith("/") or ("." in last and not last[0].isdigit())
            or os.path.exists(os.path.expanduser(text)))  # fmt: skip


def stated_path(text: str) -> str | None:
    """The one file or folder path `text` names, else None."""
    found = {
        m.rstrip(".") for m in PATH_RE.findall(text) if not m[0].isdigit() and is_path_like(m.rstrip("."))
    }
    return found.pop() if len(found) == 1 else None


CODE_NODES = (
    ast.Call,
    ast.Import,
    ast.ImportFrom,
    ast.Assign,
    ast.AugAssign,
    ast.For,
    ast.While,
    ast.FunctionDef,
    ast.With,
)  # what makes a request's tail code, not English that parses


def stated_code(text: str) -> str | None:
    """The Python `text` writes out: its longest tail, starting at a word, that parses as Python and
    acts (`CODE_NODES`: a call, an import, an assignment, a loop, a definition). English that happens
    to parse ("what is 2 + 2", "words in notes.txt") compares names and calls nothing.

        stated_code("Run this python: import math; print(math.factorial(20))")
        # "import math; print(math.factorial(20))"
        stated_code("compute the 20th fibonacci number")  # None: the model writes the code
    """
    words = text.split(" ")
    for i in range(len(words)):
        tail = " ".join(words[i:]).strip()
        for candidate in (tail, tail.rstrip(".?!")):
            try:
                tree = ast.parse(candidate)
            except (SyntaxError, ValueError):
                continue
            if any(isinstance(node, CODE_NODES) for node in ast.walk(tree)):
                return candidate
    return None


OWN_WORDS = {"my", "our"}  # the user's own things: "the opening line of my novel"


def described_text(value: Any, clause: str) -> bool:
    """True when a text argument's unquoted `value` describes the user's own text instead of giving
    it ("the token ids for the opening line of my novel" -> "the opening line of my novel"): the
    lab does not hold that text, so the agent asks for it. Quoted text is the text, whatever it says."""
    if not isinstance(value, str) or stated_quote(clause) is not None:
        return False
    if " ".join(value.lower().split()) not in " ".join(clause.lower().split()):
        return False  # not this request's words: a text said before ("that same phrase")
    return bool(OWN_WORDS & {w.strip(PUNCTUATION) for w in value.lower().split()})


def unquoted(text: str) -> str:
    """`text` with its quoted parts blanked ("encode 'obsidian dreams'" names no tokenizer)."""
    return "".join(" " if inside else part for part, inside in quote_spans(text))


def stated_quote(text: str) -> str | None:
    """The one quoted text in `text`; else the words after a colon (prompts: "ask it: what is BPE?")."""
    quoted = [part[1:-1] for part, inside in quote_spans(text) if inside]
    if len(quoted) == 1:
        return quoted[0]
    if quoted:
        return None
    head, colon, rest = text.partition(":")
    if colon and len(rest.split()) >= 2 and not head[-1:].isdigit() and not rest[:1].isdigit():
        return rest.strip()
    return None


def stated_pairs(text: str, parameters: dict[str, Any]) -> dict[str, str]:
    """String arguments the request sets by name, `key=value` ("index=exhibits", "run=gpt-7",
    'prompt="Captain's log:"'): the key is the argument's own name, the value runs to the next space,
    or to the closing quote when it opens with one. An enum takes only one of its values."""
    props = parameters.get("properties", {})
    out: dict[str, str] = {}
    at = text.find("=")
    while at > 0:
        start = at
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
            start -= 1
        key, rest = text[start:at], text[at + 1 :]
        if rest[:1] in ("'", '"') and (close := rest.find(rest[0], 1)) > 0:
            value = rest[1:close]
        else:
            value = rest.split(" ", 1)[0].rstrip(",;")
        prop = props.get(key, {})
        options = enum_options(prop)
        if value and "string" in _types(prop):
            if not options or value in options:
                out[key] = value
        at = text.find("=", at + 1)
    return out


def stated_name(text: str, common: Collection[str] = ()) -> str | None:
    """The name a request gives a new artifact ("call it haiku-bpe", "named qa-r4"), else None. A
    quoted word within the few words after the naming word is the name, whatever stands between
    ("call the thing 'exhibits'"): quotes mark the literal. A word of `common` (`Bank.common_words`)
    names nothing after "as" ("characters as tokens")."""
    raw = text.split()
    for i, w in enumerate(raw):
        if w.lower().strip("\"'`").rstrip(":=") in NAMING_WORDS:
            for x in raw[i + 1 : i + 5]:
                cand = x.rstrip(".,;:!?)")
                if len(cand) > 2 and cand[0] in "'\"`" and cand[-1] == cand[0]:
                    return cand[1:-1]
    words = text.replace("`", " ").replace('"', " ").replace("'", " ").split()
    for i, w in enumerate(words):
        if w.lower().rstrip(":=") in NAMING_WORDS:
            rest = [x for x in words[i + 1 : i + 5]]
            while rest and rest[0].lower().rstrip(":=") in NAME_FILLERS:
                rest.pop(0)
            if rest:
                cand = rest[0].strip(".,;:!?()")
                if cand and cand.lower() not in NOT_NAMES and (cand[0].isalpha()):
                    return cand
    return _named_as(words, common)


def object_name(clause: str, action: str, bank: Bank) -> str | None:
    """The new artifact's name said as the object of the verb that asks for it: "train clover on
    shakespeare characters", "train sorrel: shakespeare, ...", "kick off sencha ...", "new run fandango:
    ...". The word right after (a particle, or "new"'s kind noun, after) one of the first
    three words, when that one opens the bank's requests for `action` (`Bank.opening_words`; not a
    function word or a kind's noun: "a whimsical gpt" names nothing) and no request of the bank used
    the word (`Bank.seen_words`); or a first word of that kind that heads the request before a colon
    ("harmattan: 2 blocks, 4 heads, ..."); else None."""
    words = [w.strip(PUNCTUATION) for w in clause.split()]
    head = clause.split()[0] if clause.split() else ""
    if head.endswith(":") and _name_shaped(words[0]) and bank.unfamiliar(words[0]):
        return words[0]  # a headline: "harmattan: 2 blocks, 4 heads, ..."
    nouns = set().union(*KIND_NOUNS.values())  # "gpt whimsy": a kind, then its description
    openers = bank.verbs(action) - nouns
    for i, w in enumerate(words[:3]):
        if w.lower() in openers and i + 1 < len(words):
            k = (
                i + 1
            )  # past a particle ("kick off sencha") or, after "new", the kind's noun ("new run fandango")
            while k + 1 < len(words) and (
                words[k].lower() in PARTICLES or w.lower() == "new" and words[k].lower() in nouns
            ):
                k += 1
            cand = words[k]
            return cand if _name_shaped(cand) and bank.unfamiliar(cand) else None
    return None


def _name_shaped(word: str) -> bool:
    return word[:1].isalpha() and all(c.isalnum() or c in "-_" for c in word)


AS_NOT_NAMES = {
    "well",
    "before",
    "usual",
    "above",
    "below",
    "is",
    "default",
    "always",
    "needed",
    "planned",
    "follows",
    "such",
    "shown",
    "said",
    "agreed",
    "expected",
}  # fmt: skip  "do it as before"


def _named_as(words: list[str], common: Collection[str] = ()) -> str | None:
    """The name after "as" that ends its clause ("index ~/notes/bees as hives", "... as primer, then
    ..."): one word, a letter first, that is no function word, filler or adverb ("as well", "as
    before"); else None."""
    for i, w in enumerate(words[:-1]):
        if w.lower() != "as" or (i and words[i - 1].lower() in ("same", "such", "so", "just")):
            continue  # "the same as tok-1" points at a record, it names no new one
        raw = words[i + 1]
        cand = raw.rstrip(".,;:!?)")
        after = words[i + 2].lower() if i + 2 < len(words) else ""
        ends = raw != cand or not after or after in ("then", "and")
        low = cand.lower()
        if (ends and cand[:1].isalpha() and low not in NOT_NAMES | NAME_FILLERS | FUNCTION_WORDS | AS_NOT_NAMES
                and not low.endswith("ly") and low not in common):  # fmt: skip
            return cand
    return None


def stated_integer_list(text: str) -> list[int] | None:
    """The one run of whole numbers `text` states: bracketed ("[256,300,301]", "[300]"), else two or
    more in a row ("turn 70, 108, 105 back into text"; `value_lists`). It is the value of an argument
    that takes a list of integers (decode_tokens' `ids`), which the model need not copy out. None when
    there is no such run, or more than one."""
    runs = []
    for part in text.split("[")[1:]:
        inside, closed, _ = part.partition("]")
        values = [as_number(v) for v in inside.replace(",", " ").split()] if closed else []
        if values and all(v is not None and float(v).is_integer() for v in values):
            runs.append([int(v) for v in values])
    if not runs:
        runs = [
            [int(v) for v in values] for values, _ in value_lists(text) if all(v.is_integer() for v in values)
        ]
    return runs[0] if len(runs) == 1 else None


def _takes_integer_list(prop: dict[str, Any]) -> bool:
    return any(p.get("type") == "array" and (p.get("items") or {}).get("type") == "integer"
               for p in [prop, *prop.get("anyOf", [])])  # fmt: skip


def stated_special_tokens(text: str) -> list[str]:
    return list(dict.fromkeys(SPECIAL_TOKEN_RE.findall(text)))


def packed_list(word: str) -> bool:
    """True for two or more numbers joined by commas alone ("2,4,8", "16,32,", "bs=8,16,32"), not one
    number with its digits grouped ("1,000")."""
    parts = ungroup_digits(word.strip(PUNCTUATION).rpartition("=")[2]).split(",")
    return len(parts) >= 2 and all(as_number(p) is not None for p in parts)


def set_by_request(clause: str, action: str, parameters: dict[str, Any], bank: Bank | None) -> dict[str, Any]:
    """The arguments `stated_values` sets over whatever the model writes (stated numbers and lists,
    a path, a quoted text, a name, special tokens, a flag said outright), with their values; the model
    need not decode them (`router.grounded_schema`). Enum values and glossed numbers, which only
    fill what the model leaves out, and settings named by word alone, which join what the model writes,
    are not among them."""
    soft = set(stated_enum(clause, parameters)) | set(stated_glossed_numbers(clause, parameters))
    stated = stated_values({}, clause, action, parameters, bank, named=False)
    return {k: v for k, v in stated.items() if k not in soft}


def stated_values(
    args: dict[str, Any],
    clause: str,
    action: str,
    parameters: dict[str, Any],
    bank: Bank | None,
    named: bool = True,
) -> dict[str, Any]:
    """`args` with what the clause states outright put in, over the model's values (see module
    docstring); with `named`, the settings it names by word join a list argument of setting names
    (`named_settings`) after the model has written its own."""
    props = parameters.get("properties", {})
    listed = {w for p in props.values() for w in patterned(clause, p)}  # "n_head=1" as a variant is no n_head
    ranges, in_ranges = stated_ranges(clause, parameters)  # "lr 1e-4..3e-3": a range, no one value
    unlisted = " ".join("," if w.strip(",;:()'\"`").rstrip(".") in listed or k in in_ranges else w
                        for k, w in enumerate(clause.split()))  # fmt: skip
    # a list written without spaces ("r 2,4,8 x alpha 16,32") gives no one setting a value: its "x"
    # had made 8 a step count beside the 80 of "80 iters", and two step counts set none
    stated = stated_numbers(
        " ".join("," if packed_list(w) else w for w in unlisted.split()), action, parameters, bank
    )
    labels = arg_words(action, parameters, bank)
    lists = stated_lists(unlisted, parameters, labels)
    lists = {**unlabelled_lists(unlisted, parameters, labels), **lists}  # "which dropout ...: 0, 0.1 or 0.2?"
    out, in_lists = _with_lists({**args, **stated}, lists)
    for arg, found in ranges.items():  # the range's spec in place of the model's for that setting
        known = setting_words(props[arg])
        specs = [e for e in (out.get(arg) or []) if isinstance(e, str)]
        for setting, span in found:
            at = next(
                (k for k, e in enumerate(specs) if known.get(e.split("=")[0].strip().lower()) == setting),
                None,
            )
            spec = f"{setting}={span}"
            specs = [*specs[:at], spec, *specs[at + 1 :]] if at is not None else [*specs, spec]
        out[arg] = specs
    out = _one_use_each(out, stated, in_lists, clause, props)
    if named:
        out = _with_named(out, clause, parameters, stated)
    for arg, value in stated_enum(clause, parameters).items():
        if isinstance(value, list):  # the options the request names, then the model's other entries
            # but its other options: "rotary position embeddings" is rope's, and the 1.5B added no_pos_emb
            options = enum_options(props[arg]) if arg in props else []
            value = [*value, *(v for v in out.get(arg) or [] if v not in value and v not in options)]
            out[arg] = value
        else:
            out.setdefault(arg, value)
    for arg, value in stated_glossed_numbers(clause, parameters).items():
        out.setdefault(arg, value)
    for arg, value in refused_numbers(clause, parameters).items():
        if arg not in stated:  # "no dropout": 0, whatever the model wrote
            out[arg] = value
    for arg, prop in props.items():
        if (
            "boolean" in _types(prop)
            and out.get(arg) is not False
            and stated_flag(arg, clause, prop.get("description", ""))
        ):
            out[arg] = True  # "and wait for it this time" over a carried background run
    path = stated_path(clause)
    path_args = [p for p in PATH_ARGS if p in props]
    if path and len(path_args) >= 1:
        target = next((p for p in path_args if p in props and props[p].get("type") == "string"), path_args[0])
        out[target] = path
    quote = stated_quote(clause)
    for arg in TEXT_ARGS:
        if arg in props and quote:
            out[arg] = quote
            break
    if "name" in props:
        name = stated_name(clause, bank.common_words() if bank is not None else ())
        if not name and bank is not None:
            name = object_name(clause, action, bank)
        if name:
            out["name"] = name
    int_lists = [a for a, p in props.items() if _takes_integer_list(p)]
    if len(int_lists) == 1 and (ids := stated_integer_list(clause)):
        out[int_lists[0]] = ids  # "turn 70, 108, 105 back into text": the ids as said
    if "special_tokens" in props:
        specials = stated_special_tokens(clause)
        if specials:
            out["special_tokens"] = specials
    out.update(stated_pairs(clause, parameters))
    return out
