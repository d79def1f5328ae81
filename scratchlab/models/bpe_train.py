"""Byte-level BPE training: the fast incremental trainer and the slow recount-every-merge reference.

    from scratchlab.models.bpe_train import chunk_counts, learn_merges, train_merges
    counts = chunk_counts(text, pattern)             # Counter: chunk bytes -> occurrences
    merges = train_merges(counts, num_merges=3840)   # [(a, b), ...]; merge i creates id 256 + i
    learned = learn_merges(text, vocab_size=4096)    # the same from raw text, arguments checked

How it is fast (the idea of Sennrich et al. 2016's reference code and of HF `tokenizers`'
BpeTrainer, written here from scratch):
- the text is pre-tokenized once and only the *unique* chunks are kept, each with its count, so a
  word that occurs 20 000 times is one list of ids with weight 20 000;
- pair counts are computed once, then kept up to date: a merge of (a, b) rewrites only the chunks
  that contain (a, b), found through an index `pair -> set of chunk indices`;
- the next merge comes from a max-heap with lazy invalidation: an entry whose stored count is stale
  is re-pushed with the current count when it reaches the top (counts of existing pairs only ever
  go down, and a pair's count only goes up in the merge that creates one of its tokens, when it is
  pushed fresh; so the first valid entry is the true maximum).

Tie-break (deterministic, documented, shared with the reference): the pair with the highest count
wins; among equal counts, the smallest pair of ids in lexicographic order `(a, b)` wins.
Merging within a chunk is left to right and non-overlapping (`a a a` -> `aa a`), as in minbpe.

Source: Sennrich, Haddow, Birch, "Neural Machine Translation of Rare Words with Subword Units"
(ACL 2016); karpathy/minbpe (the recount reference); GPT-2/GPT-4 byte-level regex splitting.
"""

from __future__ import annotations

import heapq
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import regex

from scratchlab.models.bpe_base import DEFAULT_PATTERN, NUM_BYTES, TokenizerError, resolve_pattern

PROGRESS_STEPS = 200  # the progress callback is called about this many times per training run
MAX_MERGES = 1 << 20  # most merges a tokenizer may have

ProgressFn = Callable[[int, int], None]
"""progress(merges_done, total_merges)"""


def split_on_specials(text: str, special_tokens: Iterable[str]) -> list[str]:
    """Split `text` around any of `special_tokens` (which are dropped); no specials -> [text]."""
    specials = sorted(set(special_tokens), key=lambda s: (-len(s), s))
    if not specials:
        return [text]
    pat = "|".join(regex.escape(s) for s in specials)
    return [part for part in regex.split(pat, text) if part]


def chunk_counts(
    text: str, pattern: str | None, special_tokens: Iterable[str] = (), covers_all: bool = False
) -> Counter[bytes]:
    """Pre-tokenize `text` and count each unique chunk.

    Args:
        text: training text.
        pattern: split regex (the `regex` package dialect), or None for no split (one chunk per
            stretch of text between special tokens, plain byte BPE).
        special_tokens: strings that are boundaries and are never learned from.
        covers_all: True when `pattern` is known to match every character (the presets), so the
            faster `findall` loses nothing; otherwise text between matches is kept as chunks too.

    Returns:
        Counter mapping chunk UTF-8 bytes -> number of occurrences.
    """
    strs: Counter[str] = Counter()
    compiled = regex.compile(pattern) if pattern is not None else None
    for part in split_on_specials(text, special_tokens):
        if compiled is None:
            strs[part] += 1
        elif covers_all:
            strs.update(compiled.findall(part))
        else:
            strs.update(split_keep_gaps(compiled, part))
    return Counter({s.encode("utf-8"): n for s, n in strs.items()})


def split_keep_gaps(compiled: regex.Pattern, text: str) -> list[str]:
    """Like `findall`, but text the pattern does not match is kept as its own chunks (HF "isolated")."""
    out, pos = [], 0
    for m in compiled.finditer(text):
        s, e = m.span()
        if s > pos:
            out.append(text[pos:s])
        if e > s:
            out.append(text[s:e])
        pos = e
    if pos < len(text):
        out.append(text[pos:])
    return out


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair` in `ids`, left to right, with `new_id`."""
    a, b = pair
    out, i, n = [], 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_merges(
    counts: Mapping[bytes, int],
    num_merges: int,
    progress: ProgressFn | None = None,
    report: dict | None = None,
) -> list[tuple[int, int]]:
    """Learn up to `num_merges` merges from unique chunks with counts (the fast incremental trainer).

    All unique chunks live in flat arrays as linked lists of token ids (a chunk's positions are
    linked with `nxt`/`prv`; -1 ends a chunk), each position weighted by its chunk's count. A merge
    visits only the positions where its pair occurs (`where[pair]`, kept in increasing order) and
    updates the counts of the neighbouring pairs, so a chunk of any length (the "none" preset
    makes the whole text one chunk) costs O(occurrences) per merge.

    Args:
        counts: chunk bytes -> occurrences (see `chunk_counts`).
        num_merges: how many merges to learn (>= 0). Fewer are returned when no pair is left.
        progress: optional callback `progress(merges_done, num_merges)`, called ~200 times.
        report: optional dict, filled with "bytes" (training bytes) and "tokens" (tokens of the
            training chunks after all merges, the same count the encoder gives).

    Returns:
        merges in order; merge i joins ids (a, b) into the new id 256 + i.
    """
    single = sum(n for chunk, n in counts.items() if len(chunk) == 1 and n > 0)
    vals = array("i")  # position -> token id (-1: merged into its left neighbour)
    nxt = array("i")  # position -> next live position in the chunk, -1 at the end
    prv = array("i")  # position -> previous live position in the chunk, -1 at the start
    wts = array("i")  # position -> count of its chunk
    stats: dict[tuple[int, int], int] = {}  # pair -> count over the corpus
    where: dict[tuple[int, int], array] = {}  # pair -> positions of its left element (may be stale)
    for chunk, n in counts.items():
        L = len(chunk)
        if L < 2 or n <= 0:
            continue
        base = len(vals)
        vals.extend(chunk)
        wts.extend([n] * L)
        nxt.extend(range(base + 1, base + L))
        nxt.append(-1)
        prv.append(-1)
        prv.extend(range(base, base + L - 1))
        for pos, p in enumerate(zip(chunk, chunk[1:], strict=False), base):
            stats[p] = stats.get(p, 0) + n
            w = where.get(p)
            if w is None:
                where[p] = array("i", [pos])
            else:
                w.append(pos)
    heap = [(-c, p) for p, c in stats.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int]] = []
    every = max(1, num_merges // PROGRESS_STEPS)
    while len(merges) < num_merges:
        pair = None
        while heap:
            neg, p = heapq.heappop(heap)
            c = stats.get(p, 0)
            if c == -neg:
                pair = p
                break
            if c > 0:
                heapq.heappush(heap, (-c, p))
        if pair is None:
            break
        new_id = NUM_BYTES + len(merges)
        merges.append(pair)
        a, b = pair
        touched: set[tuple[int, int]] = set()
        for i in where.pop(pair):  # increasing positions: left-to-right, non-overlapping merges
            if vals[i] != a:
                continue
            j = nxt[i]
            if j < 0 or vals[j] != b:
                continue
            n = wts[i]
            h = prv[i]
            if h >= 0:
                x = vals[h]
                stats[(x, a)] -= n
                q = (x, new_id)
                stats[q] = stats.get(q, 0) + n
                touched.add(q)
                w = where.get(q)
                if w is None:
                    where[q] = array("i", [h])
                else:
                    w.append(h)
            k = nxt[j]
            if k >= 0:
                y = vals[k]
                stats[(b, y)] -= n
                q = (new_id, y)
                stats[q] = stats.get(q, 0) + n
                touched.add(q)
                w = where.get(q)
                if w is None:
                    where[q] = array("i", [i])
                else:
                    w.append(i)
                prv[k] = i
            vals[i] = new_id
            vals[j] = -1
            nxt[i] = k
        stats.pop(pair, None)
        for q in touched:
            c = stats.get(q, 0)
            if c > 0:
                heapq.heappush(heap, (-c, q))
        if progress is not None and (len(merges) % every == 0):
            progress(len(merges), num_merges)
    if progress is not None:
        progress(len(merges), num_merges)
    if report is not None:
        report["bytes"] = sum(len(chunk) * n for chunk, n in counts.items() if n > 0)
        report["tokens"] = single + sum(w for v, w in zip(vals, wts, strict=True) if v >= 0)
    return merges


def train_merges_reference(
    chunks: Iterable[tuple[bytes, int]], num_merges: int, progress: ProgressFn | None = None
) -> list[tuple[int, int]]:
    """The textbook trainer (minbpe's algorithm): recount every pair over every chunk after each merge.

    Same tie-break as `train_merges`, so both return the same merges. O(num_merges * corpus size):
    use it for tests and as the benchmark baseline only.

    Args:
        chunks: (chunk bytes, count) pairs; pass each chunk with count 1 to mimic minbpe exactly.
        num_merges: how many merges to learn.
        progress: optional callback `progress(merges_done, num_merges)`.
    """
    items = [(list(c), n) for c, n in chunks if len(c) >= 2 and n > 0]
    merges: list[tuple[int, int]] = []
    for k in range(num_merges):
        stats: dict[tuple[int, int], int] = {}
        for ids, n in items:
            for p in zip(ids, ids[1:], strict=False):
                stats[p] = stats.get(p, 0) + n
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        merges.append(pair)
        items = [(merge_pair(ids, pair, NUM_BYTES + k), n) for ids, n in items]
        if progress is not None:
            progress(k + 1, num_merges)
    return merges


@dataclass
class Learned:
    """What `learn_merges` learned: the arguments of `Tokenizer(...)` and the trainer's report.

    Attributes:
        merges: list of (int, int) in merge order.
        pattern: the preset name, or the custom regex.
        special_tokens: list of str, deduplicated, in the order given.
        report: dict with "bytes", "tokens" and "compression_ratio" (UTF-8 bytes per token) of
            the training text without its special tokens.
    """

    merges: list[tuple[int, int]]
    pattern: str | None
    special_tokens: list[str]
    report: dict = field(default_factory=dict)


def learn_merges(
    text: str,
    vocab_size: int,
    pattern: str | None = DEFAULT_PATTERN,
    special_tokens: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> Learned:
    """Check the arguments of a training run, count the chunks of `text` and learn the merges.

    Args: as `scratchlab.models.bpe.train_tokenizer` (which builds the Tokenizer from the result).

    Raises:
        TokenizerError: vocab_size too small or too large, empty text, bad pattern or special tokens.
    """
    specials = list(dict.fromkeys(special_tokens or ()))
    if any(not isinstance(s, str) or not s for s in specials):
        raise TokenizerError(f"special tokens must be non-empty strings, got {specials!r}")
    vocab_size = int(vocab_size)
    if vocab_size < NUM_BYTES + len(specials):
        raise TokenizerError(
            f"vocab_size {vocab_size} is too small: it must be at least 256 (bytes) + {len(specials)} "
            f"(special tokens) = {NUM_BYTES + len(specials)}"
        )
    if vocab_size - NUM_BYTES > MAX_MERGES:
        raise TokenizerError(f"vocab_size {vocab_size} is too large (at most {NUM_BYTES + MAX_MERGES})")
    if not text:
        raise TokenizerError("cannot train a tokenizer on an empty text; give a non-empty dataset")
    pattern_name, pat = resolve_pattern(pattern)
    num_merges = vocab_size - NUM_BYTES - len(specials)
    counts = chunk_counts(text, pat, specials, covers_all=pattern_name != "custom")
    if not counts:
        raise TokenizerError("the text has no trainable content (only special tokens?)")
    report: dict = {}
    merges = train_merges(counts, num_merges, progress, report)
    report["compression_ratio"] = report["bytes"] / max(report["tokens"], 1)
    return Learned(merges, pat if pattern_name == "custom" else pattern_name, specials, report)
