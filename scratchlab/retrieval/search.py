"""Search over a `DocumentIndex`: dense (FAISS), lexical (BM25) or hybrid (RRF), then optional rerank.

    hits = idx.search("how does LoRA merge weights?", k=5, mode="hybrid")   # calls `search_index`
    hits[0].source, hits[0].start, hits[0].end, hits[0].line, hits[0].text

Hybrid fuses the dense and BM25 candidate lists (each `CANDIDATES` deep) with reciprocal rank
fusion (Cormack et al. 2009, `scratchlab.retrieval.fusion`); a reranker (`scratchlab.retrieval.rerank`)
then rescores `reranker.depth` candidates: the dense list's top half (`DENSE_SHARE`) and the best of
the rest of the fused list (`rerank_pool`). The fusion weighs BM25 3:1 (best on wiki known-item
queries), which buries a paraphrased question's passage that only dense search finds: "what does it
mean to quantize a model?" has it first in the dense list and 44th fused, out of a reranker's reach.
With the dense top half in the pool, MaxSim lifts learner questions (`benchmarks/retrieval_pool.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scratchlab.retrieval.fusion import rrf

MODES = ("hybrid", "dense", "bm25")
CANDIDATES = 50  # depth of each single-mode list fed to fusion and rerank
DENSE_SHARE = 0.5  # share of a reranker's candidates taken from the top of the dense list
MAX_K = 200
RELEVANCE_MIN_COSINE = 0.25  # a dense/hybrid hit below this cosine is "not relevant" (see tools)


@dataclass
class Hit:
    """One search result.

    Attributes:
        chunk_id: id in the chunk table and FAISS.
        doc_id: document id (path relative to the indexed folder, prefixed by its name).
        source: absolute path of the document.
        start, end: character span of `text` in the document text (end exclusive).
        line: 1-based line of `start`.
        text: the chunk text.
        score: the ranking score of the mode (RRF score, cosine, BM25 score or rerank score).
        rank: 1-based position.
        cosine: cosine similarity to the query (dense/hybrid modes), else None.
        bm25: BM25 score when the chunk was in the BM25 candidates, else None.
        context: the chunk's context header ("Document > Section"), "" for chunker-1 indexes.
    """

    chunk_id: int
    doc_id: str
    source: str
    start: int
    end: int
    line: int
    text: str
    score: float
    rank: int = 0
    cosine: float | None = None
    bm25: float | None = None
    context: str = ""

    def to_json(self) -> dict:
        return {"source": self.source, "doc_id": self.doc_id, "span": [self.start, self.end], "line": self.line,
                "score": round(float(self.score), 6), "section": self.context, "text": self.text}  # fmt: skip


def rerank_pool(ranked: list[tuple[int, float]], also: list[int], depth: int) -> list[tuple[int, float]]:
    """The `depth` candidates a reranker sees: the ids in `also` (best first, which `ranked` holds)
    and the best of the rest of `ranked`, in `ranked`'s order."""
    keep = set(also[:depth])
    for i, _ in ranked:
        if len(keep) >= depth:
            break
        keep.add(i)
    return [(i, s) for i, s in ranked if i in keep]


def search_index(index, query: str, k: int = 10, mode: str = "hybrid", rrf_k: float | None = None,
                 bm25_weight: float | None = None, candidates: int = CANDIDATES, reranker=None,
                 query_vector: np.ndarray | None = None) -> list[Hit]:  # fmt: skip
    """`DocumentIndex.search` (see its docstring for arguments, returns and errors)."""
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    if not query or not query.strip():
        raise ValueError("the query is empty; give a question or keywords")
    if not 1 <= int(k) <= MAX_K:
        raise ValueError(f"k={k} is out of range; use 1..{MAX_K}")
    k = int(k)
    depth = max(candidates, k, reranker.depth if reranker else 0)
    index._load()  # one look at the generation per search; below uses the loaded components
    dense = index._dense
    if len(dense) == 0:
        return []
    qv = None
    dense_ids, dense_scores, bm_ids, bm_scores = [], {}, [], {}
    if mode in ("dense", "hybrid"):
        qv = query_vector if query_vector is not None else index.embedder.encode_query(query)
        s, ids = dense.search(qv, depth)
        dense_ids = [int(i) for i in ids[0] if i >= 0]
        dense_scores = {int(i): float(v) for i, v in zip(ids[0], s[0], strict=True) if i >= 0}
    if mode in ("bm25", "hybrid"):
        s, ids = index._current_bm25().search(query, depth)
        bm_ids = [int(i) for i in ids]
        bm_scores = dict(zip(bm_ids, (float(v) for v in s), strict=True))
    if mode == "dense":
        ranked = [(i, dense_scores[i]) for i in dense_ids]
    elif mode == "bm25":
        ranked = [(i, bm_scores[i]) for i in bm_ids]
    else:
        w = index.config.bm25_weight if bm25_weight is None else bm25_weight
        ranked = rrf(
            [dense_ids, bm_ids], rrf_k=index.config.rrf_k if rrf_k is None else rrf_k, weights=[1.0, w]
        )
    if reranker is not None:
        ranked = rerank_pool(ranked, dense_ids[: int(reranker.depth * DENSE_SHARE)], reranker.depth)
    else:
        ranked = ranked[:k]
    if not ranked:
        return []
    rows = index.store.get_chunks([i for i, _ in ranked])
    missing_cos = [i for i, _ in ranked if qv is not None and i not in dense_scores]
    if missing_cos:
        for i, v in zip(missing_cos, dense.reconstruct(missing_cos) @ qv, strict=True):
            dense_scores[i] = float(v)
    hits = []
    for cid, score in ranked:
        r = rows.get(cid)
        if r is None:  # committed meanwhile by a writer; skip rather than fail
            continue
        hits.append(Hit(cid, r.doc_id, r.source, r.start, r.end, r.line, r.text, float(score),
                        cosine=dense_scores.get(cid) if qv is not None else None, bm25=bm_scores.get(cid),
                        context=r.context))  # fmt: skip
    if reranker is not None:
        hits = reranker.rerank(query, hits)
    hits = hits[:k]
    for n, h in enumerate(hits, 1):
        h.rank = n
    return hits
