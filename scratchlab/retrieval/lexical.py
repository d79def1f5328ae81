"""BM25 lexical search over chunks: a documented analyzer and the `bm25s` scorer.

    from scratchlab.retrieval.lexical import Analyzer, BM25Index
    bm = BM25Index.build(ids, texts)           # ids: chunk ids (int), texts: chunk texts
    scores, ids = bm.search("who wrote hamlet", k=10)
    bm.save(folder); bm = BM25Index.load(folder)

Analyzer: Unicode lower-casing (`str.lower`), then words = maximal runs of Unicode letters, digits
and underscore (regex `\\w+`), then the 33 Lucene English stop words removed (`STOPWORDS`, so
"the" does not touch every chunk at query time). No stemming. The same analyzer runs on chunks and
queries, and its settings are saved with the index.

Scorer: Okapi BM25 (Robertson & Zaragoza 2009) with Lucene's idf, k1=1.5, b=0.75, computed by
`bm25s` (Lù 2024, "BM25S: Orders of magnitude faster lexical search via eager sparse scoring"),
which stores every (term, chunk) score in a sparse matrix at index time, so a query is a sum of a
few sparse columns. `rank-bm25` recomputes scores in Python for every query; benchmarks/retrieval.py
measures both on the wiki corpus (same analyzer, same ranking quality) and bm25s is the faster one
by two orders of magnitude at query time and also faster to build, so it is the one used here.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scratchlab.lab.atomic import atomic_dir, atomic_write_json

BM25_K1 = 1.5
BM25_B = 0.75
BM25_METHOD = "lucene"
LEXICAL_FORMAT = 1
STOPWORDS = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with"
).split()
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Analyzer:
    """Text -> terms: lowercase, Unicode `\\w+` words, stop words dropped.

    Attributes:
        stopwords: terms dropped after lower-casing (default: Lucene's English list).
    """

    stopwords: tuple[str, ...] = field(default_factory=lambda: tuple(STOPWORDS))

    def __call__(self, text: str) -> list[str]:
        stop = self._stopset
        return [w for w in _WORD.findall(text.lower()) if w not in stop]

    @property
    def _stopset(self) -> frozenset[str]:
        cached = self.__dict__.get("_stop_cache")
        if cached is None:
            cached = frozenset(self.stopwords)
            object.__setattr__(self, "_stop_cache", cached)
        return cached

    def to_dict(self) -> dict:
        return {"stopwords": list(self.stopwords), "lowercase": True, "token_pattern": r"\w+"}

    @classmethod
    def from_dict(cls, d: dict | None) -> Analyzer:
        return cls(tuple(d["stopwords"])) if d and "stopwords" in d else cls()


def _bm25s():
    """bm25s, imported on first use (it pulls in scipy), with its logger back at WARNING: it sets
    its own to DEBUG, and a process whose root logger has a handler would print every index build."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class BM25Index:
    """BM25 over chunk texts, keyed by chunk id.

    Args:
        retriever: a fitted `bm25s.BM25`.
        ids: (N,) int64 chunk ids in the retriever's document order.
        analyzer: the analyzer used at index time (reused for queries).
    """

    def __init__(self, retriever, ids: np.ndarray, analyzer: Analyzer):
        self.retriever = retriever
        self.ids = np.asarray(ids, dtype=np.int64)
        self.analyzer = analyzer

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str], analyzer: Analyzer | None = None) -> BM25Index:
        """Index `texts` (chunk texts) under `ids`.

        Raises:
            ValueError: `ids` and `texts` differ in length.
        """
        bm25s = _bm25s()
        analyzer = analyzer or Analyzer()
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B, method=BM25_METHOD)
        if len(texts):
            retriever.index([analyzer(t) for t in texts], show_progress=False)
        return cls(retriever, np.asarray(ids, dtype=np.int64), analyzer)

    def scores(self, query: str) -> np.ndarray:
        """(N,) float32 BM25 score of every chunk for `query` (0 where no term matches)."""
        if not len(self.ids):
            return np.zeros(0, np.float32)
        terms = self.retriever.get_tokens_ids(self.analyzer(query))
        if not terms:
            return np.zeros(len(self.ids), np.float32)
        return np.asarray(self.retriever.get_scores(terms), dtype=np.float32)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k chunks with a positive score.

        Returns:
            (scores (k',) float32, ids (k',) int64), best first; k' <= k.
        """
        s = self.scores(query)
        k = min(int(k), int(np.count_nonzero(s > 0)))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        return s[top], self.ids[top]

    def save(self, folder: str | os.PathLike) -> Path:
        """Write into a NEW folder atomically (written beside it, then renamed).

        Raises:
            FileExistsError: `folder` already exists (callers use a fresh generation name).
        """
        folder = Path(folder)
        if folder.exists():
            raise FileExistsError(f"{folder} exists; BM25 folders are written once")
        with atomic_dir(folder) as tmp:
            if len(self.ids):
                self.retriever.save(str(tmp / "bm25s"), show_progress=False)
            np.save(tmp / "ids.npy", self.ids)
            atomic_write_json(tmp / "lexical.json", {"format": LEXICAL_FORMAT, "analyzer": self.analyzer.to_dict(),
                                                     "k1": BM25_K1, "b": BM25_B, "method": BM25_METHOD})  # fmt: skip
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> BM25Index:
        """Read a folder written by `save`.

        Raises:
            ValueError: missing or unreadable files, or an unknown format version.
        """
        bm25s = _bm25s()
        folder = Path(folder)
        try:
            meta = json.loads((folder / "lexical.json").read_text())
            ids = np.load(folder / "ids.npy")
        except (OSError, ValueError) as e:
            raise ValueError(
                f"BM25 index {folder} is unreadable ({e}); it is rebuilt from the chunk table on next use"
            ) from e
        if meta.get("format") != LEXICAL_FORMAT:
            raise ValueError(
                f"BM25 index {folder} has format {meta.get('format')}, expected {LEXICAL_FORMAT}"
            )
        analyzer = Analyzer.from_dict(meta.get("analyzer"))
        if not len(ids):
            return cls.build([], [], analyzer)
        retriever = bm25s.BM25.load(str(folder / "bm25s"), show_progress=False, verbosity=0)
        return cls(retriever, ids, analyzer)
