"""Optional second-stage reranking with a sentence-transformers CrossEncoder.

    from scratchlab.retrieval.rerank import CrossEncoderReranker
    rr = CrossEncoderReranker("/models/ms-marco-MiniLM-L-6-v2")   # any local CrossEncoder folder
    hits = index.search(query, k=5, reranker=rr)                   # top `depth` fused hits rescored

A cross-encoder reads (query, passage) together and outputs one relevance score, which is more
accurate than comparing two independent embeddings but costs one forward pass per candidate, so
it only rescores the first `depth` candidates of the first-stage ranking (Nogueira & Cho 2019,
"Passage Re-ranking with BERT"). No cross-encoder ships offline with scratchlab; point `model_path`
at one you have.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_RERANK_DEPTH = 20  # first-stage candidates rescored
DEFAULT_MAX_LENGTH = 512  # tokens of (query, passage) per pair


class CrossEncoderReranker:
    """Rescore hits with a local CrossEncoder.

    Args:
        model_path: a local sentence-transformers CrossEncoder folder, or a loaded `CrossEncoder`.
        depth: how many first-stage candidates to rescore.
        batch_size: pairs per forward pass.

    Raises:
        FileNotFoundError: `model_path` is not a folder.
    """

    def __init__(
        self, model_path, depth: int = DEFAULT_RERANK_DEPTH, batch_size: int = 16, device: str = "cpu"
    ):
        if isinstance(model_path, str | os.PathLike):
            if not Path(model_path).is_dir():
                raise FileNotFoundError(
                    f"cross-encoder folder {model_path} does not exist; give a local model folder"
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import CrossEncoder

            self.model = CrossEncoder(str(model_path), device=device, max_length=DEFAULT_MAX_LENGTH)
        else:
            self.model = model_path
        self.depth = int(depth)
        self.batch_size = batch_size

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(len(texts),) float32 relevance scores (higher is better)."""
        if not texts:
            return np.zeros(0, np.float32)
        out = self.model.predict(
            [(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False
        )
        out = np.asarray(out, dtype=np.float32)
        return out.reshape(len(texts), -1)[:, -1]  # one logit, or the last ("relevant") class

    def rerank(self, query: str, hits: list) -> list:
        """Return `hits` reordered by cross-encoder score (stored in `hit.score`)."""
        s = self.scores(query, [h.text for h in hits])
        order = np.argsort(-s, kind="stable")
        out = []
        for i in order:
            hits[i].score = float(s[i])
            out.append(hits[i])
        return out
