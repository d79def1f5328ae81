"""Context headers as written (chunker 2) against their plain words (chunker 3), on both learner sets.

    .venv/bin/python benchmarks/retrieval_headers.py --work /tmp/scratchlab-retrieval-headers

Builds each learner-question set's documents into one index per chunker (`rag index` defaults) and
counts the questions whose evidence is in the top 5, per search mode and for the default search
(hybrid with the MaxSim reranker). A README's headings carry badge images and link targets ("# Typer
[![PyPI](https://img.shields.io/...)](https://pypi.org/...)"), which chunker 2 copied into every header
of the file. Quality only: no timings, so the load does not matter. Writes
benchmarks/results/retrieval_headers.{json,md}.
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
from scratchlab.retrieval.eval import load_queries  # noqa: E402
from scratchlab.retrieval.rerank import MaxSimReranker  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "retrieval_headers"
LEARNER_SETS = {
    "learner 1": i21.LEARNER_DIR,
    "learner 2": i21.LEARNER_DIR.parent / "learner_questions2",
    "learner 3": i21.LEARNER_DIR.parent / "learner_questions3",
}
ROWS = (*i21.MODES, "hybrid+maxsim")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/scratchlab-retrieval-headers", help="where the indexes are built")
    a = ap.parse_args()
    work = Path(a.work)
    embedder = emb_mod.get_embedder()
    rr = MaxSimReranker(embedder, depth=i21.RERANK_DEPTH)
    out: dict = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "sets": {}}
    for name, folder in LEARNER_SETS.items():
        qs = load_queries(folder / "learner_questions.jsonl")
        for ver in (2, 3):
            idx = i21.build(
                work / f"{name.replace(' ', '')}-v{ver}", [folder / "docs"], embedder, chunker_version=ver
            )
            row = {m: i21.hit_at(idx, qs, 5, mode=m) for m in i21.MODES}
            row["hybrid+maxsim"] = i21.hit_at(idx, qs, 5, mode="hybrid", reranker=rr)
            out["sets"].setdefault(name, {})[f"chunker{ver}"] = {
                k: {"hit": v["hit"], "hits": v["hits"], "n": v["n"]} for k, v in row.items()
            }
            print(name, ver, {k: v["hit"] for k, v in row.items()}, flush=True)
    out["load_after"] = os.getloadavg()
    i21.save_json(RESULTS.with_suffix(".json"), out)
    lines = [*i21.report_head("Context headers: as written (chunker 2) or plain words (chunker 3)", out),
             "Evidence in the top 5 (hits of n). `rag index` defaults: chunk 256, overlap 32.", "",
             "| set | chunker | " + " | ".join(ROWS) + " |", "|---|---|" + "---|" * len(ROWS)]  # fmt: skip
    for name, by_ver in out["sets"].items():
        for ver, row in by_ver.items():
            cells = " | ".join(f"{row[k]['hit']:.3f} ({row[k]['hits']}/{row[k]['n']})" for k in ROWS)
            lines.append(f"| {name} | {ver.removeprefix('chunker')} | {cells} |")
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
