"""Where learner-question retrieval loses its misses: the first stage's pool or the re-ranker's judgement.

    .venv/bin/python benchmarks/retrieval_ceiling.py --work /tmp/scratchlab-retrieval-ceiling

For learner sets 1 and 2 (dev), builds each set's index (`rag index` defaults, chunker 3) and counts
the questions whose evidence is in the top 5: (a) the default search (hybrid, MaxSim over 20
candidates), (b) MaxSim over every chunk of the index (no first stage: the re-ranker's ceiling),
(c) MaxSim plus a weight of the dense cosine and the normalised BM25 score, over pools of 20 and 40
candidates, best weights per pool. Quality only: no timings. Writes
benchmarks/results/retrieval_ceiling.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import retrieval_i21 as i21  # noqa: E402

from scratchlab.retrieval import embeddings as emb_mod  # noqa: E402
from scratchlab.retrieval.chunking import embed_text  # noqa: E402
from scratchlab.retrieval.eval import _norm, judge, load_queries  # noqa: E402
from scratchlab.retrieval.rerank import MaxSimReranker  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "retrieval_ceiling"
SETS = {"learner 1": i21.LEARNER_DIR, "learner 2": i21.LEARNER_DIR.parent / "learner_questions2"}
WEIGHTS = [(a, b) for a in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0) for b in (0.0, 0.02, 0.05, 0.1)]


class _Pool:
    """A reranker stand-in that keeps the first stage's pool as it is (to read its candidates)."""

    def __init__(self, depth: int):
        self.depth = depth

    def rerank(self, query, hits):
        return hits


def _holds(q, text: str) -> bool:
    """The chunk holds one of the question's evidence strings (as `judge` compares them)."""
    return any(_norm(e) in _norm(text) for e in q.evidence)


def _in_top5(flags: list[bool], scores: np.ndarray) -> bool:
    return bool(np.asarray(flags)[np.argsort(-scores, kind="stable")[:5]].any())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/scratchlab-retrieval-ceiling", help="where the indexes are built")
    a = ap.parse_args()
    embedder = emb_mod.get_embedder()
    rr = MaxSimReranker(embedder, depth=i21.RERANK_DEPTH)
    out: dict = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "sets": {}}
    for name, folder in SETS.items():
        qs = load_queries(folder / "learner_questions.jsonl")
        idx = i21.build(Path(a.work) / name.replace(" ", ""), [folder / "docs"], embedder)
        rows = idx.store.get_chunks(range(idx.stats()["chunks"] + 1))
        chunks = list(rows.values())
        tokens_all = embedder.token_embeddings(
            [embed_text(c.context, c.text) for c in chunks], max_tokens=rr.max_tokens
        )
        row = {"n": len(qs), "default": 0, "maxsim_all_chunks": 0}
        feats: dict[int, list] = {20: [], 40: []}
        for q in qs:
            hits = idx.search(q.query, k=5, reranker=rr)
            row["default"] += any(judge(q, hits)[0])
            qt = embedder.token_embeddings([q.query], threads=1)[0]
            s = np.array([float((qt @ p.T).max(1).mean()) if len(p) else 0.0 for p in tokens_all])
            row["maxsim_all_chunks"] += _in_top5([_holds(q, c.text) for c in chunks], s)
            for depth in feats:
                pool = idx.search(q.query, k=depth, reranker=_Pool(depth))
                ms = rr.scores(q.query, [embed_text(h.context, h.text) for h in pool])
                rel = [_holds(q, h.text) for h in pool]
                bm = np.array([h.bm25 or 0.0 for h in pool])
                feats[depth].append(
                    (rel, ms, np.array([h.cosine or 0.0 for h in pool]), bm / max(bm.max(), 1e-9))
                )
        for depth, fs in feats.items():
            row[f"maxsim_pool{depth}"] = sum(_in_top5(r, ms) for r, ms, _, _ in fs)
            row[f"in_pool{depth}"] = sum(any(r) for r, *_ in fs)
            row[f"weighted_pool{depth}"] = {f"{wa}/{wb}": sum(_in_top5(r, ms + wa * c + wb * b) for r, ms, c, b in fs)
                                            for wa, wb in WEIGHTS}  # fmt: skip
        out["sets"][name] = row
        print(name, {k: v for k, v in row.items() if not isinstance(v, dict)}, flush=True)
    out["load_after"] = os.getloadavg()
    i21.save_json(RESULTS.with_suffix(".json"), out)
    lines = [*i21.report_head("Learner questions: the first stage's pool or the re-ranker?", out),
             "Evidence in the top 5 (of n). Chunker 3, `rag index` defaults; MaxSim reads 256 tokens a passage.", "",
             "| set | n | default (MaxSim over 20) | MaxSim over every chunk | in pool 20 | in pool 40 | MaxSim over 40 "
             "| best weighted over 20 (cos/bm25) | best weighted over 40 |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in out["sets"].items():
        best = {d: max(r[f"weighted_pool{d}"].items(), key=lambda kv: kv[1]) for d in (20, 40)}
        lines.append(f"| {name} | {r['n']} | {r['default']} | {r['maxsim_all_chunks']} | {r['in_pool20']} | "
                     f"{r['in_pool40']} | {r['maxsim_pool40']} | {best[20][1]} ({best[20][0]}) | {best[40][1]} ({best[40][0]}) |")  # fmt: skip
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
