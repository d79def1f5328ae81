"""Reciprocal rank fusion (RRF) of several rankings.

    from scratchlab.retrieval.fusion import rrf
    rrf([[3, 1, 2], [1, 4]], rrf_k=60)   # [(1, 1/62 + 1/61), (3, 1/61), (4, 1/62), (2, 1/63)]

Each ranking contributes `weight / (rrf_k + rank)` (rank starting at 1) to every id it contains; ids
are sorted by the summed score, ties broken by first appearance. RRF needs no score calibration,
which is why it fuses cosine similarities and BM25 scores well. Source: Cormack, Clarke & Buettcher
2009, "Reciprocal Rank Fusion outperforms Condorcet and individual Rank Learning Methods" (k=60).
Our default is k=5, chosen by `benchmarks/retrieval.py --only-tune` on known-item queries disjoint
from the dev set (MRR@10 0.756 at k=5 vs 0.743 at k=60): a small k trusts the top of each list
more, which suits questions with one right passage; every index saves its own rrf_k.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

DEFAULT_RRF_K = 5  # measured: on 1000 wiki tuning queries k=5 beat k=60 on R@1/5/10, MRR@10 and nDCG@10
DEFAULT_BM25_WEIGHT = 1.0  # weight of the BM25 ranking against dense (1.0) in hybrid search


def rrf(
    rankings: Sequence[Sequence[Hashable]],
    rrf_k: float = DEFAULT_RRF_K,
    weights: Sequence[float] | None = None,
    top_k: int | None = None,
) -> list[tuple[Hashable, float]]:
    """Fuse rankings (best first) into one list of `(id, score)`, best first.

    Args:
        rankings: each a sequence of ids, best first (an id repeated in one ranking counts once).
        rrf_k: the smoothing constant k (>= 0); larger values flatten the head of each ranking.
        weights: one weight per ranking (default all 1.0).
        top_k: keep only the best `top_k` (default: all).

    Raises:
        ValueError: negative `rrf_k`, or `weights` of the wrong length.
    """
    if rrf_k < 0:
        raise ValueError(f"rrf_k must be >= 0, got {rrf_k}")
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    scores: dict[Hashable, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        seen = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + w / (rrf_k + rank)
    order = {item: i for i, item in enumerate(scores)}  # first appearance breaks ties
    fused = sorted(scores.items(), key=lambda t: (-t[1], order[t[0]]))
    return fused[:top_k] if top_k is not None else fused
