"""MaxSim second stage: quality against cost per query, for rescoring depth x passage length.

    SCRATCHLAB_CACHE_DIR=... .venv/bin/python benchmarks/retrieval_maxsim.py --work /tmp/scratchlab-retrieval-bench

Reads the indexes a `benchmarks/retrieval.py --issue21` run left in --work (the wiki index and the
chunker-2 learner index). For each (depth, max_tokens): learner-question evidence in the top 5 (95
questions), wiki known-item R@1 on the first `--queries` dev queries, and the latency of hybrid search
at k=10 with the reranker (median and p95 over `--latency-queries`, cold query cache, one at a time).
Writes benchmarks/results/retrieval_maxsim.{json,md}. Latency depends on load: run alone; the load
average is recorded before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import retrieval_i21 as i21  # noqa: E402

from scratchlab.retrieval import embeddings as emb_mod  # noqa: E402
from scratchlab.retrieval.eval import load_queries  # noqa: E402
from scratchlab.retrieval.index import DocumentIndex  # noqa: E402
from scratchlab.retrieval.rerank import MaxSimReranker  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "retrieval_maxsim"
WIKI_QUERIES = Path(__file__).parent / "data" / "wiki_queries_dev.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--work", default="/tmp/scratchlab-retrieval-bench", help="--work of a retrieval.py --issue21 run"
    )
    ap.add_argument("--depths", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--max-tokens", type=int, nargs="+", default=[96, 128, 256])
    ap.add_argument("--queries", type=int, default=300, help="wiki dev queries for R@1")
    ap.add_argument("--latency-queries", type=int, default=200)
    a = ap.parse_args()
    work = Path(a.work)
    embedder = emb_mod.get_embedder()
    wiki = DocumentIndex.open(work / "index", embedder=embedder)
    learner = DocumentIndex.open(work / "learner-v2", embedder=embedder)
    indexed = set(wiki.documents())
    dev = [q for q in load_queries(WIKI_QUERIES) if q.relevant[0] in indexed]
    lq = load_queries(i21.LEARNER_DIR / "learner_questions.jsonl")
    out = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "rows": []}
    base = {"learner": i21.hit_at(learner, lq, 5, mode="hybrid")["hit"],
            "wiki_r1": i21._recall(wiki, dev[: a.queries], mode="hybrid")["r@1"],
            "latency": i21.query_latency(wiki, [q.query for q in dev[: a.latency_queries]], None)["hybrid"]}  # fmt: skip
    out["no_reranker"] = base
    print("no reranker", base, flush=True)
    for depth in a.depths:
        for mt in a.max_tokens:
            rr = MaxSimReranker(embedder, depth=depth, max_tokens=mt)
            t0 = time.perf_counter()
            row = {"depth": depth, "max_tokens": mt,
                   "learner": i21.hit_at(learner, lq, 5, mode="hybrid", reranker=rr)["hit"],
                   "wiki_r1": i21._recall(wiki, dev[: a.queries], mode="hybrid", reranker=rr)["r@1"]}  # fmt: skip
            lat = i21.query_latency(wiki, [q.query for q in dev[: a.latency_queries]], rr)["hybrid+rerank"]
            row |= {
                "median_ms": lat["median_ms"],
                "p95_ms": lat["p95_ms"],
                "seconds": round(time.perf_counter() - t0),
            }
            out["rows"].append(row)
            print(row, flush=True)
    out["load_after"] = os.getloadavg()
    i21.save_json(RESULTS.with_suffix(".json"), out)
    lines = [*i21.report_head("MaxSim rerank: depth x passage length", out),
             f"Wiki index {wiki.stats()['chunks']} chunks; learner index {learner.stats()['chunks']} chunks (95 questions,"
             f" evidence in the top 5); wiki R@1 on the first {a.queries} dev queries; latency: hybrid search at k=10,"
             f" {a.latency_queries} queries, cold query cache. Targets: learner 0.95, wiki R@1 0.60, p95 300 ms.", "",
             "| reranker | learner top-5 | wiki R@1 | median ms | p95 ms |", "|---|---|---|---|---|",
             f"| none | {base['learner']:.3f} | {base['wiki_r1']:.3f} | {base['latency']['median_ms']} | {base['latency']['p95_ms']} |"]  # fmt: skip
    for r in out["rows"]:
        lines.append(f"| maxsim depth {r['depth']}, {r['max_tokens']} tokens | {r['learner']:.3f} | {r['wiki_r1']:.3f} | "
                     f"{r['median_ms']} | {r['p95_ms']} |")  # fmt: skip
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
