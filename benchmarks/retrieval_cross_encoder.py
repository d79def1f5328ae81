"""Issue 21, option (a): mine pairs, then compare a fine-tuned MiniLM cross-encoder with MaxSim.

    .venv/bin/python benchmarks/retrieval_cross_encoder.py mine --work /tmp/ce
    .venv/bin/python -m scratchlab.retrieval.rerank_train --pairs /tmp/ce/pairs_mix.jsonl --out /tmp/ce/model \\
        --max-length 160 --lr 5e-5
    .venv/bin/python benchmarks/retrieval_cross_encoder.py eval --work /tmp/ce --model /tmp/ce/model

`mine`: wiki known-item tuning queries (disjoint from the dev file; 1 positive + 3 hard negatives from
the hybrid top 20 each, `rerank_train.mine_pairs`) and the learner sets 1 and 2 (dev sets; the chunk
holding the evidence + 4 hybrid hits without it), the learner pairs repeated 3 times. Learner set 3
is left out of training, so its row is the one that says whether the model generalises.
`eval`: evidence in the top 5 on the learner sets for hybrid, hybrid + MaxSim, hybrid + the
cross-encoder and the z-scored sum of both, each over the same 20 candidates (`search.rerank_pool`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import retrieval as wiki  # noqa: E402
import retrieval_i21 as i21  # noqa: E402

from scratchlab.retrieval import embeddings as emb_mod  # noqa: E402
from scratchlab.retrieval.chunking import embed_text  # noqa: E402
from scratchlab.retrieval.eval import _norm, load_queries  # noqa: E402
from scratchlab.retrieval.index import DocumentIndex  # noqa: E402
from scratchlab.retrieval.rerank import CrossEncoderReranker, MaxSimReranker, Reranker  # noqa: E402
from scratchlab.retrieval.rerank_train import mine_pairs  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
TRAIN_SETS = ("learner_questions", "learner_questions2")
EVAL_SETS = ("learner_questions3", *TRAIN_SETS)
LEARNER_REPEAT = 3


def _index(folder: Path, docs: Path, embedder) -> DocumentIndex:
    if (folder / "config.json").exists():
        return DocumentIndex.open(folder, embedder=embedder)
    idx = DocumentIndex.create(folder, embedder=embedder)
    idx.ingest([docs])
    return idx


def learner_pairs(name: str, work: Path, embedder, negatives: int = 4) -> list[dict]:
    idx = _index(work / f"{name}-ix", DATA / name / "docs", embedder)
    chunks = idx.store.get_chunks(idx.store.chunk_ids(idx.documents())).values()
    pairs = []
    for q in load_queries(DATA / name / "learner_questions.jsonl"):
        ev = [_norm(e) for e in q.evidence]

        def holds(h, ev=ev) -> bool:
            return any(e in _norm(h.text) for e in ev)

        hits = idx.search(q.query, k=20, mode="hybrid")
        pos = [h for h in hits if holds(h)][:1] or [c for c in chunks if holds(c)][:1]
        pairs += [{"query": q.query, "passage": embed_text(h.context, h.text), "label": 1.0} for h in pos]
        pairs += [{"query": q.query, "passage": embed_text(h.context, h.text), "label": 0.0}
                  for h in [h for h in hits if not holds(h)][:negatives]]  # fmt: skip
    return pairs


def mine(args) -> None:
    work = Path(args.work)
    embedder = emb_mod.get_embedder()
    corpus = wiki.load_corpus()
    if not (work / "wiki-ix" / "config.json").exists():
        wiki.write_docs(work / "docs" / "wiki", corpus)
    idx = _index(work / "wiki-ix", work / "docs" / "wiki", embedder)
    tq = wiki.tuning_queries(corpus, load_queries(wiki.QUERIES_FILE), args.wiki_queries, set(idx.documents()))
    tq = tq[: args.keep or None]  # the first of a larger sample (stop 41 mined 3000 and kept 2000)
    pairs = mine_pairs(idx, tq, negatives=3, depth=20)
    learner = [p for s in TRAIN_SETS for p in learner_pairs(s, work, embedder)]
    mix = pairs + learner * LEARNER_REPEAT
    (work / "pairs_mix.jsonl").write_text("".join(json.dumps(p) + "\n" for p in mix))
    print(json.dumps({"wiki_pairs": len(pairs), "learner_pairs": len(learner), "written": len(mix)}))


class _Sum(Reranker):
    """The z-scored sum of two rerankers' scores over the same candidates."""

    def __init__(self, a: Reranker, b: Reranker):
        self.a, self.b, self.depth = a, b, a.depth

    def scores(self, query, texts):
        def z(x):
            return (x - x.mean()) / (x.std() + 1e-6)

        return z(self.a.scores(query, texts)) + z(self.b.scores(query, texts))


def evaluate(args) -> None:
    work = Path(args.work)
    embedder = emb_mod.get_embedder()
    ce = CrossEncoderReranker(args.model, depth=i21.RERANK_DEPTH)
    ms = MaxSimReranker(embedder, depth=i21.RERANK_DEPTH)
    rerankers = {"maxsim": ms, "cross-encoder": ce, "cross-encoder+maxsim": _Sum(ce, ms)}
    out = {"model": str(args.model), "load_before": os.getloadavg()}
    for name in EVAL_SETS:
        idx = _index(work / f"{name}-ix", DATA / name / "docs", embedder)
        qs = load_queries(DATA / name / "learner_questions.jsonl")
        row = {"hybrid": i21.hit_at(idx, qs, 5, mode="hybrid")}
        row |= {n: i21.hit_at(idx, qs, 5, mode="hybrid", reranker=r) for n, r in rerankers.items()}
        out[name] = {k: {"hits": v["hits"], "n": v["n"], "median_ms": v["median_ms"]} for k, v in row.items()}
        print(name, {k: f"{v['hits']}/{v['n']}" for k, v in row.items()}, flush=True)
        out["load_after"] = os.getloadavg()
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mine", help="write <work>/pairs_mix.jsonl")
    m.add_argument("--work", required=True)
    m.add_argument("--wiki-queries", type=int, default=3000, help="tuning queries sampled")
    m.add_argument("--keep", type=int, default=2000, help="of which the first N give pairs (0: all)")
    e = sub.add_parser("eval", help="learner-set hits in the top 5 per reranker")
    e.add_argument("--work", required=True)
    e.add_argument("--model", required=True, help="a CrossEncoder folder (rerank_train's --out)")
    e.add_argument(
        "--out", default=str(Path(__file__).resolve().parent / "results" / "retrieval_cross_encoder.json")
    )
    a = ap.parse_args()
    mine(a) if a.cmd == "mine" else evaluate(a)


if __name__ == "__main__":
    main()
