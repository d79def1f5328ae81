"""What the reranker sees: the dense list's share of its candidates, against quality and latency.

    .venv/bin/python benchmarks/retrieval_pool.py --work /tmp/scratchlab-retrieval-bench --shares 0 0.5

Reads the wiki index a `benchmarks/retrieval.py --issue21` run left in --work (`index`), and builds
the two learner-question indexes there (the current chunker, `rag index` defaults). For each share of the
MaxSim reranker's 20 candidates taken from the top of the dense list (`search.DENSE_SHARE`; 0 is the
fused top 20 alone): evidence in the top 5 on both learner sets, wiki known-item R@1 and R@10 on the
first `--queries` dev queries, and the latency of hybrid search at k=10 with the reranker (median and
p95 over `--latency-queries`, cold query cache, one at a time). Writes
benchmarks/results/retrieval_pool.{json,md}. Latency depends on load: run alone; the load average is
recorded before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import retrieval_i21 as i21  # noqa: E402

from scratchlab.retrieval import embeddings as emb_mod  # noqa: E402
from scratchlab.retrieval import search as search_mod  # noqa: E402
from scratchlab.retrieval.eval import load_queries  # noqa: E402
from scratchlab.retrieval.index import DocumentIndex  # noqa: E402
from scratchlab.retrieval.rerank import MaxSimReranker  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "retrieval_pool"
WIKI_QUERIES = Path(__file__).parent / "data" / "wiki_queries_dev.jsonl"
LEARNER_SETS = {"learner 1": i21.LEARNER_DIR, "learner 2": i21.LEARNER_DIR.parent / "learner_questions2"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--work", default="/tmp/scratchlab-retrieval-bench", help="--work of a retrieval.py --issue21 run"
    )
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.5])
    ap.add_argument("--queries", type=int, default=1000, help="wiki dev queries for R@1 and R@10")
    ap.add_argument("--latency-queries", type=int, default=200)
    a = ap.parse_args()
    work = Path(a.work)
    embedder = emb_mod.get_embedder()
    wiki = DocumentIndex.open(work / "index", embedder=embedder)
    indexed = set(wiki.documents())
    dev = [q for q in load_queries(WIKI_QUERIES) if q.relevant[0] in indexed][: a.queries]
    sets = {}
    for name, folder in LEARNER_SETS.items():
        idx = i21.build(work / f"pool-{name.replace(' ', '')}", [folder / "docs"], embedder)
        sets[name] = (idx, load_queries(folder / "learner_questions.jsonl"))
    out = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "wiki_queries": len(dev), "rows": []}
    rr = MaxSimReranker(embedder, depth=i21.RERANK_DEPTH)
    for share in a.shares:
        search_mod.DENSE_SHARE = share
        row: dict = {"share": share, "dense_candidates": int(rr.depth * share)}
        for name, (idx, qs) in sets.items():
            h = i21.hit_at(idx, qs, 5, mode="hybrid", reranker=rr)
            row[name] = {"hit": h["hit"], "hits": h["hits"], "n": h["n"]}
        row["wiki"] = i21._recall(wiki, dev, mode="hybrid", reranker=rr)
        row["latency"] = i21.query_latency(wiki, [q.query for q in dev[: a.latency_queries]], rr)[
            "hybrid+rerank"
        ]
        out["rows"].append(row)
        print(row, flush=True)
    out["load_after"] = os.getloadavg()
    i21.save_json(RESULTS.with_suffix(".json"), out)
    lines = [*i21.report_head("The reranker's candidates: the dense list's share", out),
             f"MaxSim over {rr.depth} candidates (hybrid first stage, BM25 weighted 3:1 in RRF). Learner sets: evidence in the"
             f" top 5. Wiki: {len(dev)} known-item dev queries, {wiki.stats()['chunks']} chunks; latency at k=10 over"
             f" {a.latency_queries} queries, cold query cache. Targets: learner 0.95, wiki R@1 0.60, p95 300 ms.", "",
             "| dense candidates | learner 1 (95) | learner 2 (117) | wiki R@1 | wiki R@10 | median ms | p95 ms |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in out["rows"]:
        l1, l2, w, lat = r["learner 1"], r["learner 2"], r["wiki"], r["latency"]
        lines.append(f"| {r['dense_candidates']} of {rr.depth} | {l1['hit']:.3f} ({l1['hits']}) | {l2['hit']:.3f} ({l2['hits']}) | "
                     f"{w['r@1']:.3f} | {w['r@10']:.3f} | {lat['median_ms']} | {lat['p95_ms']} |")  # fmt: skip
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
