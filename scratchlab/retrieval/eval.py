"""Retrieval evaluation: Recall@k, MRR@10 and nDCG@10 per search mode, from a JSONL query file.

    from scratchlab.retrieval.eval import load_queries, evaluate, format_table
    queries = load_queries("dev.jsonl")
    results = evaluate(index, queries, modes=("bm25", "dense", "hybrid"))
    print(format_table(results))

Query file: one JSON object per line with "query" (or "question") and either
- "relevant": a list of document ids (as stored in the index, e.g. "wiki/Ada_Lovelace.txt"; an id
  also matches a stored id that ends with "/" + id), judged at the document level: the chunk
  ranking is collapsed to documents (first occurrence wins); or
- "evidence": a list of strings, judged at the chunk level: a chunk is relevant if it contains one
  of them (case-insensitive, whitespace-normalized); recall counts evidence strings found.
An optional "id" names the query in per-query output.

Metrics (binary relevance; Manning, Raghavan & Schütze 2008, ch. 8; Järvelin & Kekäläinen 2002):
Recall@k = relevant items in the top k / all relevant items; MRR@10 = mean of 1/rank of the first
relevant result within the top 10 (0 if none); nDCG@10 = DCG@10 / ideal DCG@10 with gain 1 and
discount 1/log2(rank + 1).
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

RECALL_KS = (1, 5, 10)
MRR_K = 10
NDCG_K = 10
CHUNKS_PER_DOC_DEPTH = 5  # chunk hits fetched per wanted document (documents repeat across chunks)
_WS = re.compile(r"\s+")


class QueryFileError(ValueError):
    """The query file is missing or a line is malformed; the message names the line."""


@dataclass
class Query:
    """One evaluation query: relevant document ids and/or evidence strings."""

    query: str
    relevant: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    qid: str = ""


def load_queries(path: str | os.PathLike) -> list[Query]:
    """Read a JSONL query file (see the module docstring).

    Raises:
        QueryFileError: missing file, bad JSON, or a line without "query" and "relevant"/"evidence".
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise QueryFileError(f"cannot read query file {p}: {e.strerror or e}") from e
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise QueryFileError(f"{p}:{n}: not JSON ({e.msg})") from e
        if isinstance(obj, dict) and "query" not in obj and "question" in obj:
            obj["query"] = obj["question"]  # learner-question files name it "question"
        if not isinstance(obj, dict) or not str(obj.get("query", "")).strip():
            raise QueryFileError(f'{p}:{n}: each line needs a "query" (or "question") string')
        rel, ev = obj.get("relevant") or [], obj.get("evidence") or []
        if isinstance(rel, str):
            rel = [rel]
        if isinstance(ev, str):
            ev = [ev]
        if not rel and not ev:
            raise QueryFileError(f'{p}:{n}: give "relevant" (document ids) or "evidence" (strings)')
        out.append(
            Query(str(obj["query"]), [str(r) for r in rel], [str(e) for e in ev], str(obj.get("id", n)))
        )
    if not out:
        raise QueryFileError(f"{p} has no queries")
    return out


def _norm(s: str) -> str:
    return _WS.sub(" ", s).strip().lower()


def doc_matches(doc_id: str, wanted: str) -> bool:
    """True if stored `doc_id` is the document `wanted` names."""
    return doc_id == wanted or doc_id.endswith("/" + wanted)


def judge(query: Query, hits: Sequence) -> tuple[list[bool], int]:
    """Relevance flags of the ranked units and the number of relevant units.

    Document ids: units are distinct documents in hit order. Evidence: units are chunks, and each
    evidence string counts once (at its first chunk).
    """
    if query.relevant:
        docs: list[str] = []
        for h in hits:
            if h.doc_id not in docs:
                docs.append(h.doc_id)
        return [any(doc_matches(d, r) for r in query.relevant) for d in docs], len(query.relevant)
    ev = [_norm(e) for e in query.evidence]
    found: set[int] = set()
    flags = []
    for h in hits:
        text = _norm(h.text)
        new = {i for i, e in enumerate(ev) if i not in found and e in text}
        found |= new
        flags.append(bool(new))
    return flags, len(ev)


def recall_at(flags: Sequence[bool], n_relevant: int, k: int) -> float:
    return sum(flags[:k]) / n_relevant if n_relevant else 0.0


def mrr_at(flags: Sequence[bool], k: int = MRR_K) -> float:
    return next((1.0 / r for r, f in enumerate(flags[:k], 1) if f), 0.0)


def ndcg_at(flags: Sequence[bool], n_relevant: int, k: int = NDCG_K) -> float:
    dcg = sum(1.0 / math.log2(r + 1) for r, f in enumerate(flags[:k], 1) if f)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(n_relevant, k) + 1))
    return dcg / ideal if ideal else 0.0


@dataclass
class ModeResult:
    """Mean metrics of one mode and its query latencies (milliseconds)."""

    mode: str
    metrics: dict[str, float]
    latencies_ms: list[float] = field(default_factory=list)
    per_query: list[dict] = field(default_factory=list)

    @property
    def latency(self) -> dict[str, float]:
        if not self.latencies_ms:
            return {}
        xs = sorted(self.latencies_ms)
        return {
            "median_ms": statistics.median(xs),
            "p95_ms": xs[min(len(xs) - 1, math.ceil(0.95 * len(xs)) - 1)],
        }


def evaluate(index, queries: Sequence[Query], modes: Sequence[str] = ("bm25", "dense", "hybrid"),
             ks: Sequence[int] = RECALL_KS, **search_kw) -> dict[str, ModeResult]:  # fmt: skip
    """Run every query in every mode and average the metrics.

    Args:
        index: a `DocumentIndex` (anything with `search(query, k, mode, **kw)` returning hits).
        queries: from `load_queries`.
        modes: search modes to compare.
        ks: cut-offs for Recall@k.
        **search_kw: passed to `index.search` (rrf_k, reranker, ...).

    Returns:
        {mode: ModeResult} with metrics "recall@k" for each k, "mrr@10", "ndcg@10".
    """
    want = max(max(ks), MRR_K, NDCG_K)
    out = {}
    for mode in modes:
        sums: dict[str, float] = {}
        res = ModeResult(mode, {})
        for q in queries:
            depth = min(200, want * CHUNKS_PER_DOC_DEPTH) if q.relevant else want
            t0 = time.perf_counter()
            hits = index.search(q.query, k=depth, mode=mode, **search_kw)
            res.latencies_ms.append((time.perf_counter() - t0) * 1000)
            flags, n_rel = judge(q, hits)
            row = {f"recall@{k}": recall_at(flags, n_rel, k) for k in ks}
            row["mrr@10"] = mrr_at(flags)
            row["ndcg@10"] = ndcg_at(flags, n_rel)
            for key, v in row.items():
                sums[key] = sums.get(key, 0.0) + v
            res.per_query.append({"id": q.qid, **row})
        res.metrics = {key: v / len(queries) for key, v in sums.items()}
        out[mode] = res
    return out


def format_table(results: dict[str, ModeResult], digits: int = 3) -> str:
    """A Markdown table: one row per mode, one column per metric (plus latency when measured)."""
    if not results:
        return ""
    first = next(iter(results.values()))
    cols = list(first.metrics)
    lat = bool(first.latencies_ms)
    head = ["mode", *cols] + (["median ms", "p95 ms"] if lat else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for mode, r in results.items():
        cells = [mode, *(f"{r.metrics[c]:.{digits}f}" for c in cols)]
        if lat:
            cells += [f"{r.latency['median_ms']:.1f}", f"{r.latency['p95_ms']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
