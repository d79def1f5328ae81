"""Issue 21 measurements for benchmarks/retrieval.py: learner questions, wiki R@1/R@10 with rerankers,
reranker quality per millisecond, ONNX int8 vs fp32 recall, ingest vs a plain sentence-transformers
loop, and query p95 at ~10k chunks with and without the reranker.

    .venv/bin/python benchmarks/retrieval.py --issue21 --reuse-index            # everything, writes results
    .venv/bin/python benchmarks/retrieval.py --issue21 --reuse-index --quality-only   # no timings

Quality numbers do not depend on machine load; the timings (ingest docs/s, query p95, reranker ms)
must be taken on an idle machine, so `--quality-only` skips them and keeps earlier timing results.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from scratchlab.retrieval.chunking import CHUNKER_VERSION, ChunkConfig, chunk_for_index
from scratchlab.retrieval.eval import Query, judge, load_queries
from scratchlab.retrieval.index import DocumentIndex
from scratchlab.retrieval.loaders import find_files, load_file
from scratchlab.retrieval.rerank import CrossEncoderReranker, LLMReranker, MaxSimReranker

ROOT = Path(__file__).resolve().parents[1]
LEARNER_DIR = ROOT / "benchmarks" / "data" / "learner_questions"
SEED_QUESTIONS = ROOT / "benchmarks" / "data" / "seed_questions.jsonl"  # used when present
MODES = ("bm25", "dense", "hybrid")
RERANK_DEPTH = 20
LLM_DEPTH = 10
LLM_QUERIES = 12  # the chat-model reranker is measured on this many queries (seconds per query on CPU)
INGEST_DOCS = 1000  # wiki articles in the ingest comparison
DEFAULT_RERANKER = "maxsim"  # the reranker timed in the p95 table (the default of search_documents)


def pct(xs, q) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(np.ceil(q * len(xs))) - 1))]


def hit_at(index, queries: list[Query], k: int = 5, **search_kw) -> dict:
    """Share of queries whose top k holds a relevant unit (evidence string or document), and ms/query."""
    hits, ms, ranks = 0, [], []
    for q in queries:
        t0 = time.perf_counter()
        res = index.search(q.query, k=max(k, 20), **search_kw)
        ms.append((time.perf_counter() - t0) * 1000)
        flags, _ = judge(q, res)
        rank = next((r for r, f in enumerate(flags, 1) if f), None)
        ranks.append(rank)
        hits += rank is not None and rank <= k
    return {"hit": round(hits / len(queries), 4), "n": len(queries), "hits": hits,
            "median_ms": round(statistics.median(ms), 1), "p95_ms": round(pct(ms, 0.95), 1),
            "miss_ranks": [r for r in ranks if r is None or r > k]}  # fmt: skip


def build(
    folder: Path,
    docs: list,
    embedder,
    chunker_version: int = CHUNKER_VERSION,
    chunking: ChunkConfig | None = None,
):
    shutil.rmtree(folder, ignore_errors=True)
    idx = DocumentIndex.create(folder, chunking, embedder=embedder, chunker_version=chunker_version)
    idx.ingest(docs)
    return idx


def reranker_set(embedder, ce_path: Path | None, llm_path: Path | None) -> dict:
    out = {"maxsim": MaxSimReranker(embedder, depth=RERANK_DEPTH)}
    if ce_path and ce_path.is_dir():
        out["cross-encoder"] = CrossEncoderReranker(ce_path, depth=RERANK_DEPTH)
    if llm_path and llm_path.is_file():
        from llama_cpp import Llama  # heavy optional runtime, only for the LLM reranker row

        llm = Llama(
            model_path=str(llm_path), n_ctx=2048, n_batch=512, n_threads=os.cpu_count(), verbose=False
        )
        out["llm-logprob"] = LLMReranker(llm, depth=LLM_DEPTH)
    return out


def learner(work: Path, embedder, rerankers: dict) -> dict:
    """Evidence in the top 5 per mode (+ each reranker on hybrid), chunker 2 and chunker 1."""
    qfile = LEARNER_DIR / "learner_questions.jsonl"
    if not qfile.exists():
        return {"missing": str(qfile.relative_to(ROOT))}
    qs = load_queries(qfile)
    out = {"questions": len(qs), "docs": len(find_files([LEARNER_DIR / "docs"]))}
    for ver in (2, 1):
        idx = build(work / f"learner-v{ver}", [LEARNER_DIR / "docs"], embedder, chunker_version=ver)
        row = {m: hit_at(idx, qs, 5, mode=m) for m in MODES}
        if ver == 2:
            for name, rr in rerankers.items():
                sub = qs[:LLM_QUERIES] if name == "llm-logprob" else qs
                row[f"hybrid+{name}"] = hit_at(idx, sub, 5, mode="hybrid", reranker=rr)
        row["chunks"] = idx.stats()["chunks"]
        out[f"chunker{ver}"] = row
    return out


def wiki(idx: DocumentIndex, dev: list[Query], rerankers: dict, n_rerank: int) -> dict:
    """R@1 and R@10 on wiki known-item queries per mode, and hybrid + each reranker on the first n_rerank."""
    out = {}
    for m in MODES:
        out[m] = _recall(idx, dev, mode=m)
    sub = dev[:n_rerank]
    out["hybrid_subset"] = _recall(idx, sub, mode="hybrid")
    for name, rr in rerankers.items():
        out[f"hybrid+{name}"] = _recall(idx, sub[:LLM_QUERIES] if name == "llm-logprob" else sub, mode="hybrid",
                                        reranker=rr)  # fmt: skip
    return out


def _recall(idx, qs: list[Query], **kw) -> dict:
    r1 = r10 = 0
    ms = []
    for q in qs:
        t0 = time.perf_counter()
        hits = idx.search(q.query, k=50, **kw)
        ms.append((time.perf_counter() - t0) * 1000)
        flags, _ = judge(q, hits)
        r1 += any(flags[:1])
        r10 += any(flags[:10])
    return {"r@1": round(r1 / len(qs), 4), "r@10": round(r10 / len(qs), 4), "n": len(qs),
            "median_ms": round(statistics.median(ms), 1), "p95_ms": round(pct(ms, 0.95), 1)}  # fmt: skip


def int8_vs_fp32(idx: DocumentIndex, dev: list[Query], n_chunks: int) -> dict:
    """Dense recall@10 with int8 vs fp32 ONNX vectors of the same chunks and queries.

    The chunk set: every chunk of the queries' articles, then other chunks up to `n_chunks`."""
    import faiss

    from scratchlab.retrieval.chunking import embed_text
    from scratchlab.retrieval.embeddings import get_embedder

    all_ids, all_texts = [], []
    for part_ids, part_texts, part_ctx in idx.store.iter_texts():
        all_ids += part_ids
        all_texts += [embed_text(c, t) for c, t in zip(part_ctx, part_texts, strict=True)]
    docs = idx.store.get_chunks(all_ids)
    wanted = {r for q in dev for r in q.relevant}
    keep = [i for i, cid in enumerate(all_ids) if docs[cid].doc_id in wanted]
    keep += [i for i, cid in enumerate(all_ids) if docs[cid].doc_id not in wanted][
        : max(0, n_chunks - len(keep))
    ]
    ids, texts = [all_ids[i] for i in keep], [all_texts[i] for i in keep]
    out = {"chunks": len(ids), "queries": len(dev)}
    for backend in ("onnx-fp32", "onnx-int8"):
        emb = get_embedder(backend=backend)
        X = emb.encode(texts)
        flat = faiss.IndexFlatIP(X.shape[1])
        flat.add(X)
        Q = np.stack([emb.encode_query(q.query) for q in dev])
        _, top = flat.search(Q, 50)
        hit = 0
        for q, row in zip(dev, top, strict=True):
            seen = []
            for i in row:
                d = docs[ids[i]].doc_id
                if d not in seen:
                    seen.append(d)
            hit += any(any(d == r or d.endswith("/" + r) for r in q.relevant) for d in seen[:10])
        out[backend] = round(hit / len(dev), 4)
    out["delta"] = round(out["onnx-fp32"] - out["onnx-int8"], 4)
    return out


def ingest_compare(work: Path, docs_dir: Path, n_docs: int) -> dict:
    """Docs/s: a plain SentenceTransformer.encode loop over the chunks vs our ingest (same docs, same run)."""
    from sentence_transformers import SentenceTransformer

    from scratchlab.retrieval.chunking import load_token_counter
    from scratchlab.retrieval.embeddings import get_embedder
    from scratchlab.retrieval.minilm import default_model_path

    files = sorted(docs_dir.iterdir())[:n_docs]
    sub = work / "ingest-docs" / "wiki"
    shutil.rmtree(sub.parent, ignore_errors=True)
    sub.mkdir(parents=True)
    for f in files:
        shutil.copy2(f, sub / f.name)
    load = {"before": os.getloadavg()}
    counter = load_token_counter()
    st = SentenceTransformer(str(default_model_path()), device="cpu")
    t0 = time.perf_counter()
    n_chunks = 0
    for path, doc_id in find_files([sub]):  # the baseline: load, chunk, encode one document at a time
        chunks = chunk_for_index(load_file(path, doc_id), ChunkConfig(), counter, 2)
        st.encode([c.text for c in chunks], batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        n_chunks += len(chunks)
    st_s = time.perf_counter() - t0
    out = {"docs": len(files), "chunks": n_chunks,
           "st_loop": {"seconds": round(st_s, 1), "docs_per_s": round(len(files) / st_s, 1)}}  # fmt: skip
    for backend in ("onnx-int8", "torch"):
        t0 = time.perf_counter()
        idx = build(work / f"ingest-{backend}", [sub], get_embedder(backend=backend))
        secs = time.perf_counter() - t0
        out[f"ingest_{backend}"] = {"seconds": round(secs, 1), "docs_per_s": round(len(files) / secs, 1),
                                    "chunks": idx.stats()["chunks"]}  # fmt: skip
        idx.store.close()
    out["speedup_vs_st_loop"] = round(out["ingest_onnx-int8"]["docs_per_s"] / out["st_loop"]["docs_per_s"], 2)
    load["after"] = os.getloadavg()
    out["load"] = load
    return out


def query_latency(idx: DocumentIndex, queries: list[str], reranker) -> dict:
    """p95 ms of hybrid search at k=10 with a cold query cache, without and with the reranker."""
    out = {"chunks": idx.stats()["chunks"], "load_before": os.getloadavg()}
    for name, rr in (("hybrid", None), ("hybrid+rerank", reranker)):
        idx.embedder.clear_cache()
        idx.search("warm up", k=10, reranker=rr)
        ts = []
        for q in queries:
            t0 = time.perf_counter()
            idx.search(q, k=10, reranker=rr)
            ts.append((time.perf_counter() - t0) * 1000)
        out[name] = {
            "median_ms": round(statistics.median(ts), 1),
            "p95_ms": round(pct(ts, 0.95), 1),
            "n": len(ts),
        }
    out["load_after"] = os.getloadavg()
    return out


def report_head(title: str, out: dict) -> list[str]:
    """A result page's first lines: the title, the command that ran, and the load average before and
    after (`out["load_before"]`, `out["load_after"]`, `out["cpus"]`)."""
    import sys

    lb, la = out["load_before"], out["load_after"]
    return [f"# {title}", "",
            f"Command: `.venv/bin/python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`. {out['cpus']} CPUs; "
            f"load average before {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}, after {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}.", ""]  # fmt: skip


def save_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)
