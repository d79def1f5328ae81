"""The example bank: labelled requests as data, retrieved by meaning to steer the local model.

Each line of `bank/*.jsonl` is one labelled request::

    {"id": "cmd-013", "request": "train a 4-layer GPT on shakespeare for 2000 steps",
     "action": "train_gpt", "args": {"n_layer": 4, "max_iters": 2000}}

optionally with `"carry": true` (the request repeats or corrects an earlier call: "the same but 8
heads", "no wait, make it 3 layers") and `"lab": true` (an answer that needs the lab's records: "what
was its val loss?"). Adding a capability means a schema and a few lines here, no code.
`unseen_once.jsonl` holds the single requests of the eval splits once they were scored unseen
(`benchmarks/bank_from_splits.py`), marked `"flagged": false`: they teach actions and argument words,
not the flags, which their labels do not give.

For a new request the bank gives
- `action_prior`: a distribution over actions from a classifier fit on the examples (logistic
  regression over the request's MiniLM embedding and its word and word-pair tf-idf, numbers masked),
  added to the model's own action scores in `scratchlab.agent.local_chat` (costs no prompt tokens).
  The embedding carries the topic, the words carry the form ("for future reference: ...", "according
  to my notes ..."): a nearest-neighbour vote on embeddings alone follows the topic;
- `flag`: P(flag | request) for a flag such as `carry`, from the same kind of classifier fit on the
  flag's labels (classes balanced: a flag is rare). A neighbour vote on embeddings missed forms the
  bank words differently ("again, same settings, but with seed 42" has sampling neighbours, none
  of them a repeat): 7 of 16 repeats found in the dev conversations, against 13 of 16 (1 false
  alarm in 70) for the classifier;
- `value_words`: which words stand next to a number for each argument (learned from the examples'
  arguments), used by `scratchlab.agent.extract.stated_numbers`.

Embeddings are computed once per bank content and cached as `.npy` next to the chat model's state.
Reference: dynamic few-shot selection by similarity (Liu et al. 2021, "What Makes Good In-Context
Examples for GPT-3?"); here the neighbours' labels are used as a prior instead of prompt text, since
every prompt token costs the 1.5B about 20 ms on 2 cores.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import pickle
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scratchlab.lab.atomic import atomic_path

BANK_DIR = Path(__file__).parent / "bank"
K = 8  # neighbours returned by `nearest`
CLASSIFIER_C = 16.0  # inverse L2 strength of the action classifier (benchmarks/action_scores.py --tune)
FLAG_C = 4.0  # the flags' (carry 25 positives, lab 18): C 1-16 all within one request on the dev turns
PRIOR_FLOOR = 1e-4  # probability left to an action the classifier rules out (or never saw)
MIN_SIMILARITY = 0.35  # neighbours below this are not returned
CONTEXT_WORDS = 2  # words on each side of a number that count as its label


@dataclass(frozen=True)
class Example:
    """One labelled request of the bank."""

    id: str
    request: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)
    carry: bool = False
    lab: bool = False
    kept: bool = False  # uses the settings the user keeps, naming none ("with my go-to settings")
    extend: bool = False  # a repeat that adds to the repeated call's list ("add rope as another variant")
    flagged: bool = (
        True  # carry/lab/kept/extend were labelled (False: a request from a scored split, action only)
    )


def load_examples(folder: Path = BANK_DIR) -> list[Example]:
    """Every example in `folder/*.jsonl`, in file order.

    Raises:
        ValueError: a line is not JSON or lacks `request`/`action` (the message names file and line).
    """
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out.append(
                    Example(
                        id=str(row.get("id", f"{path.stem}-{n}")),
                        request=row["request"],
                        action=row["action"],
                        args=row.get("args") or {},
                        carry=bool(row.get("carry")),
                        lab=bool(row.get("lab")),
                        kept=bool(row.get("kept")),
                        extend=bool(row.get("extend")),
                        flagged=bool(row.get("flagged", True)),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a bank example ({e})") from e
    return out


def stem(word: str) -> str:
    """The word without a trailing "s" when it has more than 3 letters ("heads" -> "head", "its" stays)."""
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


# What follows is refused: "no pruning", "not bm25", "don't wait" ("don", "t"), "rather than", "instead of",
# "skip the regex pre-splitting", "drop the position embeddings", in any form of the verb ("removing").
NEGATIONS = {
    "no",
    "not",
    "t",
    "dont",
    "never",
    "without",
    "instead",
    "than",
    "skip",
    "drop",
    "disable",
    "remove",
}
# a verb and its particle that together refuse what follows: "taking out the layer norms", "turn off rope"
PARTICLE_VERBS = {"out": {"take", "leave", "cut", "strip", "rip"}, "off": {"turn", "switch", "shut"}}


def verb_base(word: str) -> str:
    """The base of a regular verb form: "removing" -> remove, "dropped" -> drop, "takes" -> take,
    "taking" -> take; other words unchanged. A base is returned only where it is one of `NEGATIONS` or
    `PARTICLE_VERBS`' verbs (the only verbs asked about), so no dictionary is needed."""
    known = NEGATIONS | set().union(*PARTICLE_VERBS.values())
    if word in known:
        return word
    for end in ("ing", "ed", "es", "s"):
        if word.endswith(end) and len(word) > len(end) + 2:
            root = word[: -len(end)]
            for base in (root, root + "e", root[:-1]):  # "remov" + e, "dropp" less its doubled letter
                if base in known:
                    return base
    return word


def negation(toks: Sequence[str], i: int) -> bool:
    """True when `toks[i]` refuses what follows it: one of `NEGATIONS` in any regular form ("removing",
    "without"), or a particle after its verb ("taking out", "turned off")."""
    if verb_base(toks[i]) in NEGATIONS:
        return True
    verbs = PARTICLE_VERBS.get(toks[i])
    return bool(verbs) and i > 0 and verb_base(toks[i - 1]) in verbs


# words a refusal reaches across to its verb: "no need to wait", "don't have to wait", "not going to wait"
NEGATION_LINKS = {"need", "needs", "to", "have", "has", "got", "bother", "going", "gonna", "want", "wanna",
                  "should", "must", "will", "ll", "really", "even", "any"}  # fmt: skip


def refused(toks: Sequence[str], i: int, reach: int = 1) -> int | None:
    """The index of the negation that refuses `toks[i]`: one within `reach` tokens before it, or one
    before a run of `NEGATION_LINKS` ("no need to wait", "don't have to wait"); None when not refused."""
    for j in range(i - 1, max(-1, i - 1 - reach), -1):
        if negation(toks, j):
            return j
    j = i - 1
    while j >= 0 and toks[j] in NEGATION_LINKS:
        j -= 1
    return j if 0 <= j < i - 1 and negation(toks, j) else None


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers of `text`, split at every non-alphanumeric character except '.'
    inside numbers ("4L" -> ["4", "l"], "lr=3e-4" -> ["lr", "3e-4"], "dropout .1" -> ["dropout", ".1"])."""
    out, cur, kind = [], "", ""
    text = text.lower() + " "
    for n, ch in enumerate(text):
        lead = ch == "." and kind != "d" and text[n + 1 : n + 2].isdigit() and not text[n - 1 : n].isalnum()
        if lead:  # ".1": a number written without its leading zero
            if cur:
                out.append(cur)
            cur, kind = ch, "d"
            continue
        k = "d" if ch.isdigit() or (ch == "." and kind == "d") else "a" if ch.isalpha() or ch == "_" else ""
        if kind == "d" and ch == "e" and cur[-1:].isdigit() and "e" not in cur:
            cur += ch  # scientific notation: 3e-4 (a lone trailing "e" is split off below)
            continue
        if kind == "d" and ch == "-" and cur.endswith("e"):
            cur += ch
            continue
        if k and (k == kind or not cur):
            cur += ch
            kind = k
            continue
        if cur and cur[-1] == "e" and kind == "d":  # "3e" not followed by an exponent: "3", "e"
            out.append(cur[:-1])
            cur, kind = "e", "a"
            if k == "a":
                cur += ch
                continue
        if cur:
            out.append(cur.rstrip("."))
        cur, kind = (ch, k) if k else ("", "")
    return [t for t in out if t]


def phrase_ends(text: str) -> list[int]:
    """For each comma- or semicolon-separated phrase of `text`, the index in `tokens(text)` just past
    its last token: "no position embeddings, rotary" -> [3, 4]."""
    ends, total = [], 0
    for part in text.replace(";", ",").split(","):
        total += len(tokens(part))
        ends.append(total)
    return ends


COMMON_SHARE = 0.02  # a word in more of the examples than this is common (`Bank.common_words`)
QUESTION_SHARE = 0.5  # a first word this share of whose requests hold a "?" opens questions ("which")
MISSPELT_RATIO = 0.8  # an unseen word this close to a common one is it mistyped ("trian", "plase")
# an unseen word of TYPO_MIN_LETTERS+ letters this close to any seen word is it mistyped ("somethng")
TYPO_RATIO = 0.9
TYPO_MIN_LETTERS = 6


class Bank:
    """Nearest-neighbour access to the examples.

    Args:
        examples: the labelled requests (default: `load_examples()`).
        cache_dir: folder for the embedding cache (None: no cache).
        embedder: an object with `encode(list[str]) -> (N, d)` and `encode_query(str) -> (d,)`, rows
            L2-normalized (default: the shipped MiniLM, `scratchlab.retrieval.embeddings`).
    """

    def __init__(
        self, examples: list[Example] | None = None, cache_dir: str | Path | None = None, embedder: Any = None
    ):
        self.examples = list(examples) if examples is not None else load_examples()
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._embedder = embedder
        self._vectors: np.ndarray | None = None
        self._excluded: set[str] = set()
        self._value_words: dict[str | None, dict[str, Counter]] | None = None
        self._common: tuple[float, set[str]] | None = None
        self._ids: set[str] | None = None
        self._seen: tuple[frozenset[str], set[str]] | None = None
        self._firsts: list[tuple[str, Example]] | None = None
        # target ("action" or a flag) -> (excluded ids, TfidfVectorizer, LogisticRegression)
        self._classifiers: dict[str, tuple[frozenset[str], Any, Any]] = {}

    @property
    def embedder(self):
        if self._embedder is None:
            from scratchlab.retrieval.embeddings import get_embedder

            self._embedder = get_embedder()
        return self._embedder

    @property
    def embedder_id(self) -> str:
        """Which encoder made the vectors (class, model, quantization): part of every cache key, so a
        cache from another encoder is never read against this one's queries."""
        e = self.embedder
        return f"{type(e).__name__}|{getattr(e, 'name', '')}|{getattr(e, 'quantized', '')}"

    def exclude(self, ids: Iterable[str]) -> None:
        """Leave these examples out of every vote (an evaluation scores a request the bank holds), and
        refit the classifiers already in use. Ids the bank does not hold change nothing, so excluding
        an unseen request refits nothing."""
        held = {e.id for e in self.examples}
        self._excluded = {i for i in ids if i in held}
        for target in list(self._classifiers):  # refit now: a timed request after this pays nothing
            self._fit(target)

    @property
    def vectors(self) -> np.ndarray:
        """(N, d) float32 embeddings of the examples' requests, cached on disk by content."""
        if self._vectors is None:
            texts = [e.request for e in self.examples]
            digest = hashlib.sha256("\n".join([self.embedder_id, *texts]).encode()).hexdigest()[:16]
            path = self.cache_dir / f"bank-{digest}.npy" if self.cache_dir else None
            if path is not None and path.is_file():
                try:
                    vecs = np.load(path)
                    if vecs.shape[0] == len(texts):
                        self._vectors = vecs
                        return vecs
                except (OSError, ValueError):
                    pass
            vecs = np.asarray(self.embedder.encode(texts), dtype=np.float32)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as f:
                    np.save(f, vecs)
                for old in path.parent.glob("bank-*.npy"):  # embeddings of an older bank: never read again
                    if old != path:
                        old.unlink(missing_ok=True)
            self._vectors = vecs
        return self._vectors

    def nearest(self, text: str, k: int = K) -> list[tuple[Example, float]]:
        """The `k` examples most similar to `text`, with cosine similarity, best first."""
        if not self.examples:
            return []
        sims = self.vectors @ np.asarray(self.embedder.encode_query(text), dtype=np.float32)
        order = np.argsort(-sims)
        out = []
        for i in order:
            ex = self.examples[int(i)]
            if ex.id in self._excluded:
                continue
            if sims[i] < MIN_SIMILARITY or len(out) >= k:
                break
            out.append((ex, float(sims[i])))
        return out

    def action_prior(self, text: str, actions: Iterable[str]) -> dict[str, float]:
        """P(action | request) from the classifier fit on the (not excluded) examples.

        Returns:
            {action: probability}, summing to 1 over `actions`; an action no example has gets
            `PRIOR_FLOOR` before normalizing (uniform when the bank is empty).
        """
        actions = list(actions)
        known = self._predict("action", text)
        if known is None:
            return dict.fromkeys(actions, 1.0 / len(actions))
        raw = {a: float(known.get(a, 0.0)) + PRIOR_FLOOR for a in actions}
        z = sum(raw.values())
        return {a: p / z for a, p in raw.items()}

    def flag(self, text: str, name: str) -> float:
        """P(flag `name` | `text`) for a flag of the examples ("carry", "lab", "kept", "extend"), 0..1 (0 when no
        example, or every example, has it)."""
        proba = self._predict(name, text)
        return float(proba.get(True, 0.0)) if proba is not None else 0.0

    def _predict(self, target: str, text: str) -> dict[Any, float] | None:
        """{class: probability} of `text` under the classifier of `target`; None without one."""
        fit = self._fit(target)
        if fit is None:
            return None
        from scipy.sparse import csr_matrix, hstack  # lazy: see `_fit`

        _, terms, clf = fit
        query = np.asarray(self.embedder.encode_query(text), dtype=np.float32)[None, :]
        proba = clf.predict_proba(hstack([csr_matrix(query), terms.transform([text])]).tocsr())[0]
        return {
            (bool(c) if target != "action" else c): float(p) for c, p in zip(clf.classes_, proba, strict=True)
        }

    def _fit(self, target: str) -> tuple[frozenset[str], Any, Any] | None:
        """The classifier of `target` ("action" or a flag) over the examples not excluded, fit once per
        exclusion set (a few seconds; the full bank's is cached on disk next to the embeddings, keyed by
        content). None when the examples hold fewer than two classes."""
        # lazy: scipy/sklearn cost ~1 s to import, and `tokens` (used across the agent) needs neither
        import sklearn
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        key = frozenset(self._excluded)
        cached = self._classifiers.get(target)
        if cached is not None and cached[0] == key:
            return cached
        keep = [i for i, e in enumerate(self.examples)
                if e.id not in key and (target == "action" or e.flagged)]  # fmt: skip
        rows = [(self.examples[i].request, getattr(self.examples[i], target)) for i in keep]
        if len({y for _, y in rows}) < 2:
            return None
        c, weight = (CLASSIFIER_C, None) if target == "action" else (FLAG_C, "balanced")
        digest = hashlib.sha256(
            json.dumps([target, rows, c, sklearn.__version__, self.embedder_id]).encode()
        ).hexdigest()[:16]
        path = self.cache_dir / f"intent-{target}-{digest}.pkl" if self.cache_dir and not key else None
        if path is not None and path.is_file():
            try:  # our own cache file, written below; an unreadable one is refit
                with open(path, "rb") as f:
                    terms, clf = pickle.load(f)
                self._classifiers[target] = (key, terms, clf)
                return self._classifiers[target]
            except (OSError, pickle.UnpicklingError, ValueError, AttributeError, EOFError):
                pass
        terms = TfidfVectorizer(analyzer=intent_terms, sublinear_tf=True)
        words = terms.fit_transform([r for r, _ in rows])
        x = hstack([csr_matrix(self.vectors[keep]), words]).tocsr()
        clf = LogisticRegression(C=c, max_iter=2000, class_weight=weight)
        clf.fit(x, [y for _, y in rows])
        self._classifiers[target] = (key, terms, clf)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, suffix=".pkl") as tmp, open(tmp, "wb") as f:
                pickle.dump((terms, clf), f)
            for old in path.parent.glob(f"intent-{target}-*.pkl"):  # the classifier of an older bank
                if old != path:
                    old.unlink(missing_ok=True)
        return self._classifiers[target]

    def common_words(self, share: float = COMMON_SHARE) -> set[str]:
        """Words in more than `share` of the examples' requests ("what", "train", "about"): what any
        request says, so sharing one says nothing about a topic."""
        if self._common is None or self._common[0] != share:
            df = Counter(w for e in self.examples for w in set(tokens(e.request)))
            self._common = (share, {w for w, n in df.items() if n > share * max(1, len(self.examples))})
        return self._common[1]

    def id_prefixes(self) -> set[str]:
        """The words the examples' arguments join to a number by a hyphen as a record's id ("sweep-3",
        "job-12", "gpt-31"): such a word before "-N" names a record, where "rank-16" sets a rank."""
        if self._ids is None:
            values = (
                x for e in self.examples for v in e.args.values() for x in (v if isinstance(v, list) else [v])
            )
            pairs = (str(x).lower().partition("-") for x in values if isinstance(x, str))
            self._ids = {head for head, dash, tail in pairs if dash and head.isalpha() and tail.isdigit()}
        return self._ids

    def opening_words(self, action: str, min_count: int = 2) -> set[str]:
        """The first words of at least `min_count` of the bank's requests for `action` ("train", "fit"
        for train_gpt), less those that open questions (`QUESTION_SHARE` of the requests they open):
        the verbs that ask for it."""
        if self._firsts is None:  # tokenised once: this runs on every decision
            self._firsts = [(t[0], e) for e in self.examples if (t := tokens(e.request))]
        kept = [(w, e) for w, e in self._firsts if e.id not in self._excluded]
        firsts = Counter(w for w, e in kept if e.action == action)
        # a word that opens questions more often than not ("which", "how") asks; it takes no object.
        # A question after a colon is the request's text, not its own ("ask spruce: why is the sky blue?")
        asked = Counter(w for w, e in kept if "?" in e.request.partition(":")[0])
        opened = Counter(w for w, _ in kept)
        return {w for w, n in firsts.items() if n >= min_count and asked[w] < QUESTION_SHARE * opened[w]}

    def verbs(self, action: str) -> set[str]:
        """`opening_words` less `FUNCTION_WORDS`: the words that ask for `action` and take its record
        as their object ("stop thistle-lr", "train clover on ...")."""
        return self.opening_words(action) - FUNCTION_WORDS

    def unfamiliar(self, word: str) -> bool:
        """True when no request of the bank used a 3+-letter part of `word` (`seen_words`) and the word
        is no likely typo of a common one (difflib ratio >= `MISSPELT_RATIO` with a 4+-letter word of
        `common_words`: "trian", "sampel"): the shape of a name a user gave a record ("obsidian")."""
        parts = [t for t in tokens(word) if len(t) >= 3 and t.isalpha()]
        seen = self.seen_words()
        if not parts or all(t in seen or stem(t) in seen for t in parts):  # "stacks": "stack" seen
            return False
        common = [w for w in self.common_words() if len(w) >= 4 and w.isalpha()]
        if any(difflib.get_close_matches(t, common, n=1, cutoff=MISSPELT_RATIO) for t in parts):
            return False
        # a long word one slip from any word a request used: "somethng" (no common word) is "something"
        long = [t for t in parts if len(t) >= TYPO_MIN_LETTERS]
        return not (long and all(difflib.get_close_matches(t, seen, n=1, cutoff=TYPO_RATIO) for t in long))

    def seen_words(self) -> set[str]:
        """Every word of the examples' requests (less the excluded ones), and its `stem`: a word outside it is one no
        request in the bank used, such as the name a user gave a record ("obsidian", "thistle-lr")."""
        key = frozenset(self._excluded)
        if self._seen is None or self._seen[0] != key:
            words = {w for e in self.examples if e.id not in key for w in tokens(e.request)}
            self._seen = (key, words | {stem(w) for w in words})
        return self._seen[1]

    def value_words(self, action: str, args: Iterable[str] = ()) -> dict[str, Counter]:
        """{argument: Counter(word)}: the words that label an argument's number in the examples of
        `action` (`number_contexts`), learned from the examples' arguments ("layers" -> n_layer).

        Each of `args` takes the words the examples of every action teach for an argument of that
        name: a setting means the same in each tool that takes it ("2L 64d" is n_layer and n_embd in
        ablate_gpt as in train_gpt, "60 steps each" max_iters in sweep_lora), and the tools with few
        examples would otherwise know few of its words.
        """
        own = self._table().get(action, {})
        shared = self._table().get(None, {})
        return {**own, **{a: shared[a] for a in args if a in shared}}

    def _table(self) -> dict[str | None, dict[str, Counter]]:
        """{action: {argument: Counter(word)}}, with None pooling every action."""
        if self._value_words is None:
            table: dict[str | None, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
            for ex in self.examples:
                listed = _listed_numbers(ex.args)
                for value, context in number_contexts(ex.request):
                    args = [a for a, v in ex.args.items()
                            if not isinstance(v, bool) and isinstance(v, int | float) and float(v) == value]  # fmt: skip
                    # "6L 6H": a value two arguments share teaches nothing; nor one a list also holds
                    # ("a 4-layer GPT, 2 or 4 heads": n_layer 4 and n_head=2,4; "heads" is not n_layer's)
                    if len(args) == 1 and value not in listed:
                        table[ex.action][args[0]].update(context)
                        table[None][args[0]].update(context)
            self._value_words = {a: dict(v) for a, v in table.items()}
        return self._value_words


def _listed_numbers(args: dict[str, Any]) -> set[float]:
    """The numbers inside an example's list arguments: [2, 4] and the values of specs 'n_head=2,4'."""
    out: set[float] = set()
    for v in args.values():
        for item in v if isinstance(v, list) else []:
            parts = item.partition("=")[2].split(",") if isinstance(item, str) else [item]
            for p in parts:
                try:
                    out.add(float(p))
                except (TypeError, ValueError):
                    pass
    return out


def intent_terms(text: str) -> list[str]:
    """The classifier's terms: the words of `text` with every number as "#", and adjacent pairs."""
    words = ["#" if t[0].isdigit() or t[0] == "." else t for t in tokens(text)]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


SCALE_WORDS = {"k", "m", "b", "bn"}
# Closed-class words label no number: "the same but 300 steps" had taught "but" to max_iters, and "but
# 32 wide" then went to no argument.
FUNCTION_WORDS = {"a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "from", "by",
                  "as", "is", "are", "was", "be", "it", "its", "this", "that", "then", "so", "than",
                  "over", "between", "across", "through", "more"}  # fmt: skip
PHRASE_MARKS = (
    "; ",
    " - ",
    " – ",
    " — ",
)  # like ", ": each ends the phrase its words label numbers in ("lr: 3e-4" does not)
# Numbers in words: all of them, as `router.spelled_out` writes them in digits; the bank itself reads
# the lone words that measure as often as they point or count, in context (`_labelled`)
_UNIT_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_TEN_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
NUMBER_WORD_VALUES = {w: n for n, w in enumerate(_UNIT_WORDS.split())} | {
    w: 20 + 10 * n for n, w in enumerate(_TEN_WORDS.split())
}
SCALE_WORD_VALUES = {"hundred": 100, "thousand": 1000}
OF_COUNTS = {
    "pair": 2,
    "couple": 2,
    "dozen": 12,
}  # counts said with "of": "a pair of heads" (as "one of those" is not)
NEEDS_OF = {
    "pair",
    "couple",
}  # a count only with "of": a "byte-pair vocabulary" counts nothing ("a dozen trials" does)
_READ_IN_CONTEXT = "one two three four five six seven eight nine ten twelve sixteen twenty"
NUMBER_WORDS = {**OF_COUNTS, "single": 1, **{w: NUMBER_WORD_VALUES[w] for w in _READ_IN_CONTEXT.split()}}


NAME_HEAD_CHARS = 3  # letters run straight into digits after this many make a name ("mail1k"), not "r4"


def without_model_numbers(text: str) -> str:
    """`text` with the numbers of its names dropped, word by word (`_drop_model_numbers`): "rank for
    smollm2-135m" holds no 2 and no 135."""
    return " ".join(_drop_model_numbers(w) for w in text.split())


def _drop_model_numbers(word: str) -> str:
    """A name with a version number ("GPT-2", "llama-3.1's", "smollm2-135m") or with digits glued to a word of
    `NAME_HEAD_CHARS`+ letters ("mail1k", "bard350") without the number: it is no setting. As in
    the router's grounding (`router.NUMBER_RE`), which reads no number there either; a key of one or
    two letters glued to its value stays a setting ("r4 a16", "lr3e-4")."""
    if "=" in word:  # "pattern=gpt2", "name=met2k": the key's value may be such a name
        return "=".join(_drop_model_numbers(part) for part in word.split("="))
    head, sep, tail = word.partition("-")
    e_notation = head[-1:] in ("e", "E") and head[-2:-1].isdigit()  # "lr3e-4"
    if sep and any(c.isalpha() for c in head) and not e_notation and tail[:1].isdigit():
        return _drop_model_numbers(head) + tail.lstrip("0123456789.")
    core = word.lstrip("(['\"")
    cut = next((i for i, c in enumerate(core) if c.isdigit()), 0)
    if cut >= NAME_HEAD_CHARS and core[:cut].isalpha():
        return core[:cut]
    return word


POINTING_WORDS = {"that", "this", "which", "other", "each", "every", "another"}  # before a pronoun "one"
MAX_TIES = 4  # words halfway between two numbers whose readings `number_readings` tries both ways


def number_contexts(text: str, flip: int = 0) -> list[tuple[float, dict[str, float]]]:
    """Each number of `text` with the words that label it, weighted by nearness.

    A word belongs to the nearest number of its phrase (ended by a comma, a spaced dash or a semicolon) within `CONTEXT_WORDS` words (a
    tie goes to the number before it: "6 layers 8 heads" gives "layers" to 6; the k-th tie goes to
    the one after when bit k of `flip` is set: "ctx 128 lr 3e-4" gives "lr" to 3e-4), with weight
    1/distance; "with that many heads, 120 steps" gives "heads" to no number.
    "2k" counts as 2000 and "two" as 2.

    Returns:
        [(value, {word: weight})] in order of appearance.
    """
    return _labelled(text, flip)[0]


def number_readings(
    text: str, keys: Collection[str] = (), heads: Collection[str] = ()
) -> list[list[tuple[float, dict[str, float]]]]:
    """`number_contexts` of `text` under every way of giving its first `MAX_TIES` ties (a word as
    near the number before it as the one after) one way or the other; the plain reading first. `keys`:
    setting words that label a number glued after them (`bound_pairs`). `heads`: words several
    settings share ("size"); such a word heads a noun compound, and the word right before it that
    labels the same number weighs as much as the head ("embedding size 32", "batch size 16": the
    modifier says which size)."""
    first, ties = _labelled(text, 0, keys, heads)
    return [first] + [_labelled(text, flip, keys, heads)[0] for flip in range(1, 2 ** min(ties, MAX_TIES))]


def bound_pairs(text: str, keys: Collection[str] = ()) -> str:
    """Each `key=number` as a phrase of its own ("T=0.6 k=30 n=150 seed 3" -> "T 0.6, k 30, n 150,
    seed 3"): the key labels its own number and no other, and no word outside labels that number (a
    record's "max_iters=100, n_layer=2" too). A list ("r=4,8,16") stays as it is. So does a key glued
    to its number ("L6 H6 d384 lr6e-4": one or two letters, or a word of `keys`, "ctx256", "iters5k"),
    or joined to it by a hyphen ("rank-16", a word of `keys`); a longer word glued to digits is a
    name ("bard350", "gpt-2", `_drop_model_numbers`)."""
    out = []
    for word in text.split(" "):
        key, eq, value = word.partition("=")
        if not eq:
            cut = next((i for i, c in enumerate(word) if c.isdigit()), 0)
            key, value = word[:cut], word[cut:]
            eq = key.isalpha() and (len(key) <= 2 or key.lower() in keys)
            head, dash, tail = word.partition("-")
            if not eq and dash and head.isalpha() and head.lower() in keys:  # "rank-16": no name's version
                key, value, eq = head, tail, True
        core = value.rstrip(",;")
        scaled = core[:-1] if core[-1:] in ("k", "K") else core
        if eq and key and scaled and as_number(scaled) is not None:
            word = f", {key} {core}, "
        out.append(word)
    return " ".join(out)


def _labelled(
    text: str, flip: int, keys: Collection[str] = (), heads: Collection[str] = ()
) -> tuple[list[tuple[float, dict[str, float]]], int]:
    """(`number_contexts` of `text` under `flip`, how many ties it met)."""
    text = bound_pairs(_paths_as_values(text), keys)
    toks: list[str] = []
    phrase: list[int] = []  # the comma-separated phrase of each token ("1,000" has no ", ")
    for mark in PHRASE_MARKS:  # "no early stopping of bad trials - 300 steps per trial": two phrases
        text = text.replace(mark, ", ")
    for n, part in enumerate(text.split(", ")):
        part_toks = tokens(without_model_numbers(ungroup_digits(part)))
        toks += part_toks
        phrase += [n] * len(part_toks)
    nums: dict[int, float] = {}
    skip = set()
    paths = {i for i, t in enumerate(toks) if t == PATH_SLOT}  # a value too: the word next to it may label it
    nums.update(dict.fromkeys(paths, 0.0))
    for i, t in enumerate(toks):
        if i in paths:
            continue
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if nxt in SCALE_WORDS and i + 2 < len(toks) and as_number(toks[i + 2]) is not None:
            nxt = ""  # "1.2 k 40" ("T=1.2 k=40"): a scale word before a number labels it
        v = as_number(t, nxt)
        # "one of those" counts things and "train one like that" / "make one with 4 heads" points at
        # one: neither sets a number ("one layer" does)
        # and "call that one wren2" / "which one" is one picked out, after a word that points
        # and, given the setting words (`keys`), "train one using my go-to width" unless a setting's
        # noun follows: "one layer" counts, "one normal model" points
        pronoun = t == "one" and (
            not nxt
            or nxt in FUNCTION_WORDS
            or nxt == "like"
            or (i > 0 and toks[i - 1] in POINTING_WORDS and phrase[i - 1] == phrase[i])
            or bool(keys and not {nxt, stem(nxt), nxt + "s"} & set(keys))
        )
        counts = (nxt != "of" or t in OF_COUNTS) and (nxt == "of" or t not in NEEDS_OF)  # "byte-pair": none
        if v is None and t in NUMBER_WORDS and counts and not pronoun:
            v = float(NUMBER_WORDS[t])
        if v is not None:
            nums[i] = v
            if nxt in SCALE_WORDS:  # "2k", "0.45M": the scale is part of the number, not a label
                skip.add(i + 1)
    out: dict[int, dict[str, float]] = {i: {} for i in nums}
    owner: dict[int, int] = {}  # the number each label word went to
    ties = 0
    for j, w in enumerate(toks):
        if j in nums or j in skip or w in FUNCTION_WORDS:
            continue
        # (distance, number) per number of the phrase; "2 k steps": the "k" does not count as a word
        near = sorted(
            (j - i - (i + 1 in skip) if j > i else i - j, i) for i in nums if phrase[i] == phrase[j]
        )
        if not near or near[0][0] > CONTEXT_WORDS:
            continue
        (dist, i) = near[0]
        if len(near) > 1 and near[1][0] == dist:  # halfway: the number before, or after when flipped
            i = near[1][1] if flip >> ties & 1 else near[0][1]
            ties += 1
        out[i][w] = max(out[i].get(w, 0.0), 1.0 / dist)
        owner[j] = i
    for j, w in enumerate(toks):  # a compound's modifier weighs as much as its shared head
        if w in heads and j in owner and owner.get(j - 1) == owner[j] and phrase[j - 1] == phrase[j]:
            labels = out[owner[j]]
            labels[toks[j - 1]] = max(labels[toks[j - 1]], labels[w])
    return [(nums[i], out[i]) for i in sorted(nums) if i not in paths], ties


PATH_SLOT = "_path_"  # a file path's place among the words (`_paths_as_values`)
PATH_SUFFIXES = (".txt", ".md", ".markdown", ".jsonl", ".json", ".csv", ".tsv", ".pdf", ".py", ".html", ".htm",
                 ".rst", ".tex")  # fmt: skip


def _paths_as_values(text: str) -> str:
    """`text` with each file path ("data/caravan_routes.txt", "~/notes") as one `PATH_SLOT` word: a path is
    another argument's value, so its own words ("data", "txt") label no number, and a word between a number
    and a path may label the path ("drop 0.1 ds data/x.txt": "ds" is the dataset's, not the 0.1's)."""
    out = []
    for word in text.split(" "):
        core = word.strip("'\"`([").rstrip(".,;:)]'\"`")
        is_path = (
            (core[:1].isalpha() or core[:1] in "~./")
            and ("/" in core or core.lower().endswith(PATH_SUFFIXES))
            and any(c.isalpha() for c in core)
        )
        out.append(word.replace(core, PATH_SLOT) if is_path and "=" not in core and "<" not in core else word)
    return " ".join(out)


def ungroup_digits(text: str) -> str:
    """`text` without digit-grouping commas ("1,000 steps" -> "1000 steps"); "2,4,6" and a list set
    by name ("n_embd=64,128") stay lists."""
    return " ".join(word if "=" in word else _ungroup_word(word) for word in text.split(" "))


def _ungroup_word(text: str) -> str:
    keep = [
        ch != ","
        or not (
            text[i - 1 : i].isdigit()
            and len(text[i + 1 : i + 4]) == 3  # three digits after ("4,8" at the end is a list)
            and text[i + 1 : i + 4].isdigit()
            and not text[i + 4 : i + 5].isdigit()
        )
        for i, ch in enumerate(text)
    ]
    return "".join(ch for ch, k in zip(text, keep, strict=True) if k)


def as_number(tok: str, nxt: str = "") -> float | None:
    """The value of a number token, with a following "k" multiplying by 1000 ("2", "k" -> 2000)."""
    if not tok or not (tok[0].isdigit() or (tok[0] == "." and len(tok) > 1)):
        return None
    try:
        v = float(tok)
    except ValueError:
        return None
    return v * 1000 if nxt == "k" else v
