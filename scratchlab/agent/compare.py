"""What a grounded answer about the lab's records is told, and the comparisons computed for it.

`facts` gives an answer the settings and results of the records a question is about (`state.about`),
led by how they order (`compared`): the 1.5B, given two val losses, named the higher one as the lower;
given "lower, better gpt-1 (1.9712); higher, worse gpt-2 (2.0811)", it copies. `in_order` is the check
`grounding.ground_reply` runs on each reply sentence, so one that puts a record at the wrong end of an
order ("gpt-3 beat gpt-2" when gpt-3's val loss is the higher) is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratchlab.agent.bank import number_contexts, tokens
from scratchlab.agent.state import (
    ARG_KINDS,
    DATA_ARGS,
    DERIVED_KEYS,
    FACT_KEYS,
    KIND_NOUNS,
    PLURAL,
    RESULT_KEYS,
    SIZE_KEYS,
    SIZE_WORDS,
    Record,
    asked_keys,
    asked_scores,
    degrees,
    described_records,
    graded_keys,
    names_in,
    path_like,
)

MAX_FACTS = 6  # records whose facts an answer is given


def facts(recs: Sequence[Record], limit: int = MAX_FACTS, clause: str = "") -> str:
    """Compact lines of what the lab knows about the records a question is about (for grounded answers):
    first how they compare (`compared`, on what the `clause` asks about), then each record's settings
    (with a run's `head_size`, n_embd // n_head: "how wide is each attention head?") and results."""
    names = {r.path: r.name for r in recs if r.path}
    lines = []
    for r in recs[:limit]:
        cfg = {k: names.get(str(v), Path(str(v)).name if "/" in str(v) else v) for k, v in r.config.items()
               if k in FACT_KEYS and v not in (None, "", [])}  # fmt: skip
        if isinstance(cfg.get("n_embd"), int) and isinstance(cfg.get("n_head"), int) and cfg["n_head"] > 0:
            cfg["head_size"] = cfg["n_embd"] // cfg["n_head"]  # each head's width, as nanoGPT's C // n_head
        runs = r.metrics.get("n_runs")
        if isinstance(runs, int) and runs > 1 and isinstance(cfg.get("max_iters"), int):
            cfg["total_steps"] = runs * cfg["max_iters"]  # an ablation's or sweep's steps, all runs together
        # what the question names most comes first, a derived key before the settings it comes from:
        # given "n_embd=64, ..., head_size=32" the 1.5B answered "each head gets 64 dimensions"
        rank = asked_scores(clause)
        cfg = dict(
            sorted(
                cfg.items(),
                key=lambda kv: (-rank.get(kv[0], 0), not rank.get(kv[0]) or kv[0] not in DERIVED_KEYS),
            )
        )
        scalars = {k: v for k, v in r.metrics.items()
                   if isinstance(v, int | float | str) and not (isinstance(v, str) and path_like(v))}  # fmt: skip
        order = [k for k in RESULT_KEYS if k in scalars] + [k for k in scalars if k not in RESULT_KEYS]
        met = {k: round(scalars[k], 4) if isinstance(scalars[k], float) else scalars[k] for k in order}
        part = [f"- {r.kind} {r.label()}"]
        if cfg:
            part.append("settings: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
        if met:
            part.append("results: " + ", ".join(f"{k}={v}" for k, v in list(met.items())[:8]))
        lines.append("; ".join(part))
    return "\n".join(compared(recs[:limit], clause) + lines)


LOWER_IS_BETTER = {"val_loss", "best_val_loss", "train_loss", "perplexity", "bits_per_char"}
MAX_COMPARED = 3  # results, and settings, compared per kind when the question names none


@dataclass
class Order:
    """Records of one `kind` ordered by one number `key` of their `field` ("metrics" or "config"):
    `ranked` is [(value, name)], lowest first."""

    kind: str
    key: str
    field: str
    ranked: list[tuple[float, str]]


def orders(recs: Sequence[Record]) -> list[Order]:
    """Each result and setting in which at least two records of one kind hold different numbers, each
    kind's results first (`RESULT_KEYS` order, `status` and `step` never), then its settings (`FACT_KEYS`)."""
    out = []
    for kind in dict.fromkeys(r.kind for r in recs):
        group = [r for r in recs if r.kind == kind]
        fields = [(RESULT_KEYS, "metrics")] + [(FACT_KEYS, "config")] * (
            kind != "job"
        )  # a job's are its artifact's
        for keys, field_of in fields:
            for key in keys:
                vals = [(v, r.name) for r in group if isinstance(v := getattr(r, field_of).get(key), int | float)
                        and not isinstance(v, bool)]  # fmt: skip
                if key != "step" and len({v for v, _ in vals}) >= 2:
                    out.append(Order(kind, key, field_of, sorted(vals, key=lambda x: x[0])))
    return out


def tied(recs: Sequence[Record]) -> list[Order]:
    """Each result and setting that two or more records of one kind all hold at the same number (a
    rerun with the same seed and settings): neither is lower, better or bigger."""
    out = []
    for kind in dict.fromkeys(r.kind for r in recs):
        group = [r for r in recs if r.kind == kind]
        for key in RESULT_KEYS if kind != "job" else ():
            vals = [(v, r.name) for r in group if isinstance(v := r.metrics.get(key), int | float)
                    and not isinstance(v, bool)]  # fmt: skip
            if key != "step" and len(vals) >= 2 and len({v for v, _ in vals}) == 1:
                out.append(Order(kind, key, "metrics", vals))
    return out


def compared(recs: Sequence[Record], clause: str = "") -> list[str]:
    """Lines that order records of one kind by the results and settings in which they differ (`orders`),
    computed here: "which of the two runs had the lower val loss?" was answered with the higher one by
    the 1.5B, given both values; given "lower, better gpt-1 (1.9712); higher, worse gpt-2 (2.0811)", it
    copies.

        compared([gpt1, gpt2])  # ["- val_loss: lower, better gpt-1 (1.9712); higher, worse gpt-2 (2.0811);
                                #  difference 0.1099", ..., "- n_layer: lower gpt-2 (2); higher gpt-1 (4); difference 2"]

    Two records give the lower and the higher; more give the lowest and the highest; a loss says which
    is better (`LOWER_IS_BETTER`), and the gap between the two ends follows ("by how much?" is then
    grounded: the model's own subtraction was dropped as a number no source holds). When the `clause` asks about some of them (`asked_keys`: "which is
    the biggest?" -> params), only those; else up to `MAX_COMPARED` results and settings of each kind."""
    found, ties = orders(recs), tied(recs)
    asked = asked_keys(clause) & {o.key for o in [*found, *ties]}
    seen: dict[tuple[str, str], int] = {}
    out = []
    for o in found:
        seen[o.kind, o.field] = seen.get((o.kind, o.field), 0) + 1
        if (o.key not in asked) if asked else seen[o.kind, o.field] > MAX_COMPARED:
            continue
        shown = [f"{name} ({round(v, 4) if isinstance(v, float) else v})" for v, name in o.ranked]
        low, high = ("lower", "higher") if len(shown) == 2 else ("lowest", "highest")
        if o.key in LOWER_IS_BETTER:
            low, high = (
                (f"{low}, better", f"{high}, worse")
                if len(shown) == 2
                else (f"{low}, best", f"{high}, worst")
            )
        (lo, _), (hi, _) = o.ranked[0], o.ranked[-1]
        gap = round(hi - lo, 4) if isinstance(hi, float) or isinstance(lo, float) else hi - lo
        apart = "difference" if len(shown) == 2 else "spread"  # "... and by how much?": computed, not guessed
        out.append(f"- {o.key}: {low} {shown[0]}; {high} {shown[-1]}; {apart} {gap}")
    for o in (o for o in ties if o.key in asked):  # "which had the lower val loss?" of two at 4.0334
        names = " and ".join(name for _, name in o.ranked)
        out.append(f"- {o.key}: the same for {names} ({round(o.ranked[0][0], 4)}); neither is lower")
    return out


# Words that put what a sentence is about at the low or the high end of an order, and (for a loss) the
# better or the worse end.
LOW_WORDS = {"less", "least", "fewer", "fewest"} | {d for a in ("low", "small", "shallow", "narrow") for d in degrees(a)} - {
    "low", "small", "shallow", "narrow"}  # fmt: skip
HIGH_WORDS = {"more", "most"} | {d for a in ("high", "big", "large", "great", "deep", "wide") for d in degrees(a)} - {
    "high", "big", "large", "great", "deep", "wide"}  # fmt: skip
BETTER_WORDS = {"better", "best", "beat", "beats", "outperformed", "outperforms", "won", "wins"}
WORSE_WORDS = {"worse", "worst", "lost", "loses"}


SUPERLATIVES = {"most", "least", "best", "worst"}  # and every "-est" word of the ends' words


COUNTED_NOUN_REACH = 4  # tokens after a count within which its noun comes ("two lowest val loss runs")


def at_ends(clause: str, recs: Sequence[Record]) -> list[Record]:
    """The records a superlative in `clause` picks out: the one at that end of an order ("my
    biggest-vocabulary tokenizer", "whichever model has the lowest val loss"), or as many as a count
    before their noun says ("the two runs with the lowest validation loss"; a comparative picks one:
    "the bigger of my two tokenizers"). The clause names a number the records differ in (`asked_keys`,
    `orders`) and one end of its order (a low or high word; for a loss, better or worse too). [] when
    it names no end, or the ends it names are different records."""
    toks = tokens(clause)
    words, keys = set(toks), graded_keys(clause) or asked_keys(clause)  # "two deepest": by depth, not loss
    n = 1
    if any(
        w in SUPERLATIVES or w.endswith("est")
        for w in words & (LOW_WORDS | HIGH_WORDS | BETTER_WORDS | WORSE_WORDS)
    ):
        nouns = set().union(*(KIND_NOUNS.get(r.kind, set()) for r in recs))
        # the count's noun may follow a compound: "my two lowest-val-loss runs"
        n = next((PLURAL[t] for i, t in enumerate(toks) if t in PLURAL and t != "both"
                  and nouns & set(toks[i + 1 : i + 1 + COUNTED_NOUN_REACH])), 1)  # fmt: skip
    picked = set()
    for o in orders(recs):  # "bigger" is a tokenizer's vocab_size as it is a run's params (`SIZE_KEYS`)
        if o.key not in keys and not (words & SIZE_WORDS and o.key == SIZE_KEYS.get(o.kind)):
            continue
        says_low = bool(words & LOW_WORDS) or (o.key in LOWER_IS_BETTER and bool(words & BETTER_WORDS))
        says_high = bool(words & HIGH_WORDS) or (o.key in LOWER_IS_BETTER and bool(words & WORSE_WORDS))
        if says_low != says_high and len(o.ranked) >= n:
            end = o.ranked[:n] if says_low else o.ranked[::-1][:n]
            picked.add(tuple(name for _, name in end))
    if len(picked) != 1:
        return []
    names = picked.pop()
    return [r for name in names for r in recs if r.name == name][:n]


def contradicts_order(
    sentence: str, recs: Sequence[Record], clause: str = "", found: Sequence[Order] | None = None
) -> bool:
    """True when `sentence` puts the record it names first at the wrong end of an order (`orders`) on a
    number it or the `clause` speaks of (`asked_keys`): "Yes, gpt-3 beat gpt-2 on val loss" when gpt-3's
    val loss is the higher; a sentence that names one record and no end ("gpt-3 did.") takes the
    clause's words. A sentence that speaks of no number, or of a record in the middle, is left.
    `found` is `orders(recs)` when the caller has it."""
    words = set(tokens(sentence))
    keys = asked_keys(sentence) or asked_keys(clause)
    low = sentence.lower()
    named = sorted(
        names_in(sentence, recs),
        key=lambda r: min(i for x in (r.name, r.id) if (i := low.find(x.lower())) >= 0),
    )
    ends = LOW_WORDS | HIGH_WORDS | BETTER_WORDS | WORSE_WORDS
    if not named and keys and words & ends:  # "the GPT with 4 heads had the lower val loss"
        named = described_records(sentence, recs)
        if len(named) > 1:  # a description that fits several picks out no end: the claim cannot stand
            return True
        # the setting that describes it ("4-layer") is no order the sentence claims an end of
        stated = {float(v) for v, _ in number_contexts(sentence)}
        own = {k: v for k, v in (named[0].config.items() if named else ())
               if isinstance(v, int | float) and not isinstance(v, bool)}  # fmt: skip
        keys = {k for k in keys if own.get(k) not in stated}
    if not keys or not named:
        return False
    subject = named[0]
    if len(named) == 1 and not words & ends:
        words = set(tokens(clause))  # "gpt-3." to "which run has the lower val loss?"
    for o in tied(recs):  # a tie has no end: "gpt-1 had the lower val loss" of two at 4.0334
        if o.kind == subject.kind and o.key in keys and subject.name in {n for _, n in o.ranked}:
            if words & ends:
                return True
    for o in orders(recs) if found is None else found:
        if o.kind != subject.kind or o.key not in keys:
            continue
        says_low = bool(words & LOW_WORDS) or (o.key in LOWER_IS_BETTER and bool(words & BETTER_WORDS))
        says_high = bool(words & HIGH_WORDS) or (o.key in LOWER_IS_BETTER and bool(words & WORSE_WORDS))
        if says_low != says_high and subject.name == (o.ranked[-1][1] if says_low else o.ranked[0][1]):
            return True
    return False


def in_order(recs: Sequence[Record], clause: str = "") -> Callable[[str], bool]:
    """The `keep` check of `grounding.ground_reply` for a reply about `recs`: True for a sentence that
    `contradicts_order` lets stand (the orders are computed once, not per sentence)."""
    found = orders(recs)
    return lambda sentence: not contradicts_order(sentence, recs, clause, found)


def picked(clause: str, recs: Sequence[Record], parameters: dict[str, Any]) -> list[Record]:
    """The records of the kinds a tool's reference arguments take that the clause names, or picks at
    an end of an order ("the shallower one", `at_ends`)."""
    kinds = {k for a in parameters.get("properties", {}) if a not in DATA_ARGS for k in ARG_KINDS.get(a, ())}
    pool = [r for r in recs if r.kind in kinds]
    if not pool:
        return []
    return names_in(clause, pool) or at_ends(clause, pool)
