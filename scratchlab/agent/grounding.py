"""Grounded replies: a reply after tool results may only state numbers found in the results or the request.

A small model summarising "0.41 M params" wrote "4.1 million parameters"; another wrote "the model has
4.0301 parameters" when 4.0301 was the train loss. `ground_reply` reads every number of the reply with
its scale word ("4.1 million", "0.41M", "12k", "35%"), and keeps a sentence only if each of its numbers
matches a number of the sources at the precision the reply wrote it ("1.87" matches 1.8694), and is not
labelled with a word that the sources give to another number (`mislabelled`). Sentences that fail are dropped; when none is left, the reply falls back to
the first line of the last tool result, which is grounded by construction.

    ground_reply("It has 4.1 million parameters. Val loss 1.87.", ["run gpt-2: val loss 1.8694, 0.41M params"])
    # "Val loss 1.87."

After a document search, `with_sources` names the passages a reply draws on ("Sources: [1]
seeds/guide.txt:1782-1808"), since the small model seldom writes the citations it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from scratchlab.agent.bank import FUNCTION_WORDS, number_contexts, tokens
from scratchlab.agent.extract import value_lists
from scratchlab.agent.state import gloss_words
from scratchlab.retrieval.answer import FENCE_CLOSE, FENCE_OPEN

SCALES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "mb": 1e6, "b": 1e9, "billion": 1e9,
          "bn": 1e9, "gb": 1e9}  # fmt: skip


def numbers_with_scale(text: str) -> list[tuple[float, float]]:
    """(value, tolerance) of each number in `text`, scale words applied ("0.41M" -> (410000, 5000)).
    The number of an id ("ablation-1", "job-12", "GPT-2") is no quantity and is left out; "LLaMA-65B"
    states a size and stays."""
    toks = tokens(" ".join(_without_id_number(w) for w in text.replace(",", "").split()))
    out = []
    for i, t in enumerate(toks):
        if not t[0].isdigit():
            continue
        try:
            v = float(t)
        except ValueError:
            continue
        decimals = len(t.split(".")[1].split("e")[0]) if "." in t and "e" not in t else 0
        scale = SCALES.get(toks[i + 1], 1.0) if i + 1 < len(toks) else 1.0
        tol = 0.5 * 10 ** (-decimals) * scale if "e" not in t else abs(v) * 1e-6
        out.append((v * scale, tol))
    return out


def _without_id_number(word: str) -> str:
    """ "ablation-1," -> "ablation,": a name and a number joined by a dash, the number its end."""
    head, sep, tail = word.partition("-")
    number = tail.rstrip(".;:!?)'\"")
    bare = head.lstrip("(\"'`*")  # '"GPT-2' opening a quote is GPT-2
    return head + tail[len(number) :] if sep and bare.isalpha() and number.isdigit() else word


def supported(value: float, tol: float, sources: Iterable[float]) -> bool:
    return any(abs(value - s) <= tol + 1e-12 or abs(value - s) <= 1e-9 * max(1.0, abs(s)) for s in sources)


def source_values(texts: Iterable[str]) -> list[float]:
    """The numbers a reply may state from `texts`: each number (scale words applied), as a percentage
    too ("0.35" -> "35%"), and the count of each list of values ("a grid over 32, 64 and 96" is 3
    trials; `extract.value_lists`)."""
    vals = []
    for text in texts:
        found = [v for v, _ in numbers_with_scale(text)]
        vals += found + [v * 100 for v in found]
        vals += [float(len(values)) for values, _ in value_lists(text)]
    return vals


def sentences(text: str) -> list[str]:
    """Split at ". ", "! ", "? " and newlines, keeping each sentence's own end. A list item's number
    ("1. The passage ...") stays with its item: alone it would be kept, its item dropped ("1.2.")."""
    out, cur = [], ""
    for i, ch in enumerate(text):
        cur += ch
        nxt = text[i + 1] if i + 1 < len(text) else " "
        if ch == "." and nxt == " " and cur.strip()[:-1].isdigit():
            continue
        if ch == "\n" or (ch in ".!?" and nxt in " \n"):
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


def unsupported_numbers(sentence: str, values: list[float]) -> list[float]:
    return [v for v, tol in numbers_with_scale(sentence) if not supported(v, tol, values)]


def _stem5(word: str) -> str:
    """The first 5 letters of the singular ("steps" and "step" both "step")."""
    return (word[:-1] if word.endswith("s") and not word.endswith("ss") else word)[:5]


def labels(text: str) -> list[tuple[float, set[str]]]:
    """Each number of `text` with the words that label it ("0.45M params" -> {"param"}), stemmed to
    5 letters; short words (val, of, the) do not label. A record's key labels with its glosses too
    (`state.gloss_words`: "max_iters=100" -> max_iters, steps, iterations)."""
    out = []
    for value, context in number_contexts(text.replace(",", "")):
        words = {g for w in context for g in [w, *gloss_words(w)]}
        out.append((value, {_stem5(w) for w in words if len(w) >= 4}))
    return out


def mislabelled(sentence: str, sources: list[str]) -> list[float]:
    """Numbers of `sentence` that a source holds, but labelled with a word the sources give another
    number ("4.0301 parameters" when the result says "train 4.0301; 0.45M params")."""
    src = [lab for text in sources for lab in labels(text)]
    bad = []
    for value, words in labels(sentence):
        same = [
            w
            for v, w in src
            if abs(v - value) <= 0.5 * 10**-4 * max(1.0, abs(v)) or round(v, 2) == round(value, 2)
        ]
        if not same:
            continue
        own = set().union(*same)
        other = set().union(*(w for v, w in src if all(w is not s for s in same)))
        if words & (other - own) and not words & own:
            bad.append(value)
    return bad


def ground_reply(
    reply: str, sources: list[str], fallback: str | None = None, keep: Callable[[str], bool] | None = None
) -> str:
    """`reply` without the sentences that state a number no source contains (see module docstring).

    Args:
        reply: the model's answer.
        sources: the texts it may draw on: tool results, the lab's records, the user's request.
        fallback: the reply when no sentence is left (default: the first line of the last source).
        keep: a further check each kept sentence must pass (`compare.in_order` for answers from
            the lab's records: "gpt-3 beat gpt-2" when its val loss is the higher).

    Returns:
        The reply, possibly shortened, or the fallback.
    """
    values = source_values(sources)
    kept = [s for s in sentences(reply) if not unsupported_numbers(s, values) and not mislabelled(s, sources)
            and (keep is None or keep(s))]  # fmt: skip
    text = "".join(kept).strip()
    if text:
        return text
    if fallback is not None:
        return fallback
    fallback = next((s for s in reversed(sources) if s.strip()), "")
    return fallback.strip().splitlines()[0] if fallback.strip() else ""


MAX_SOURCES = 2  # passages named after a reply


def passages(text: str, outside: list[str] | None = None) -> list[tuple[str, str]]:
    """("[n] path:lines", passage text) for each passage of a `search_documents` result in `text`; the
    lines outside the passages (the request, the result's header) are appended to `outside` if given."""
    out: list[tuple[str, str]] = []
    head, body, inside = None, [], False
    for line in text.splitlines():
        s = line.strip()
        if inside and s == FENCE_CLOSE:
            inside = False
            if head:
                out.append((head, " ".join(body)))
            head = None
        elif inside:
            body.append(s)
        elif s == FENCE_OPEN:
            inside, body = True, []
        elif s.startswith("[") and "] " in s and s[1 : s.index("]")].isdigit():
            head = s.split(" (section:")[0]
        elif outside is not None:
            outside.append(s)
    return out


def cited_only(reply: str) -> bool:
    """True when `reply` says nothing but citations ("Sources: [1] seeds/a.txt:3-9, [2] ..."): the
    small model, told to cite the passages, sometimes writes only that."""
    rest = [w for w in reply.split() if "/" not in w and ":" not in w and not w.startswith("[")]
    return bool(reply.strip()) and not any(len(w) > 2 for w in tokens(" ".join(rest)) if w.isalpha())


def quoted_answer(sources: list[str], asked: str) -> str | None:
    """The sentence of the search passages in `sources` that shares the most words of 3+ letters (or
    digits) with the question `asked`, quoted: an answer taken from the documents when the model's
    own says nothing ("and Llama 3?" -> "GPT-2 uses 50,257 tokens; Llama 3 uses 128,000."). None when
    there are no passages or no sentence shares a word."""
    want = {w for w in tokens(asked) if (len(w) > 2 or w.isdigit()) and w not in FUNCTION_WORDS}
    best, score = None, 0
    for _, body in (p for src in sources for p in passages(src)):
        for sentence in sentences(body.replace("...", " ")):
            shared = len(want & set(tokens(sentence)))
            if shared > score:
                best, score = sentence.strip(), shared
    return f'The documents say: "{best}"' if best else None


def with_sources(reply: str, sources: list[str]) -> str:
    """`reply` with "Sources: [n] path:lines" for the search passages it draws on: a passage holds every
    number of the reply that the request did not give ("LLaMA-65B" in the question need not be in the
    passage), or (a reply without such numbers) half of its longer words. Unchanged when there were no
    passages, the reply cites some already, or it draws on none of them."""
    given: list[str] = []
    found = [p for src in sources for p in passages(src, given)]
    if not found or not reply.strip() or any(f"[{n}]" in reply for n in range(1, len(found) + 1)):
        return reply
    asked = source_values(["\n".join(given)])
    nums = [(v, tol) for v, tol in numbers_with_scale(reply) if not supported(v, tol, asked)]
    words = {w for w in tokens(reply) if len(w) > 3 and not w[0].isdigit()}
    used = []
    for head, body in found:
        values = source_values([body])
        if nums:
            ok = all(supported(v, tol, values) for v, tol in nums)
        else:
            ok = len(words & set(tokens(body))) >= max(3, len(words) // 2)
        if ok and head not in used:
            used.append(head)
    return f"{reply.rstrip()}\nSources: {'; '.join(used[:MAX_SOURCES])}" if used else reply
