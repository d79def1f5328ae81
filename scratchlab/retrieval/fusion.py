"""Reciprocal rank fusion (RRF) of several rankings.

    from scratchlab.retrieval.fusion import rrf
    rrf([[3, 1, 2], [1, 4]], rrf_k=60)   # [(1, 1/62 + 1/61), (3, 1/61), (4, 1/62), (2, 1/63)]

Each ranking contributes `weight / (rrf_k + rank)` (rank starting at 1) to every id it contains; ids
are sorted by the summed score, ties broken by first appearance. RRF needs no score calibration,
which is why it fuses cosine similarities and BM25 scores well. Source: Cormack, Clarke & Buettcher
2009, "Reciprocal Rank Fusion outperforms Condorcet and individual Rank Learning Methods" (k=60).
Our defaults, k=20 with the BM25
ranking weighted 3 against dense 1, were chosen by `benchmarks/retrieval.py --tune-rrf 1000` on the
full wiki corpus (10,087 chunks), on 1000 known-item queries disjoint from the dev set, as the best
MRR@10 + R@1 of k in {2, 5, 10, 20, 60} x weight in {1, 1.5, 2, 3}. With equal weights the fused
ranking lost R@1 to BM25 alone (Wikidata descriptions share rare words with their article, which
BM25 ranks first); the weight keeps BM25's top hit on top and lets dense lift the rest (dev set:
hybrid above both single modes on all five metrics). Every index saves its own rrf_k and weight.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

DEFAULT_RRF_K = 20  # measured, see the module docstring (benchmarks/results/retrieval.md)
DEFAULT_BM25_WEIGHT = 3.0  # weight of the BM25 ranking against dense (1.0) in hybrid search


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
