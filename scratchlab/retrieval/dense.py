"""FAISS inner-product vector index with stable int64 ids: exact (flat) or approximate (HNSW).

    from scratchlab.retrieval.dense import DenseIndex
    idx = DenseIndex.create(dim=384, n_expected=len(vecs))  # flat below HNSW_THRESHOLD vectors
    idx.add(ids, vecs)                                       # ids: (N,) int64, vecs: (N, 384) float32
    scores, ids = idx.search(q, k=10)                        # cosine scores for normalized vectors
    idx.save(path); idx = DenseIndex.load(path)

Exact search (`IndexFlatIP`) scans every vector: about 1 ms per 10k 384-d vectors on one core, so it
is the default. At `HNSW_THRESHOLD` vectors and above the index becomes an HNSW graph
(Malkov & Yashunin 2016, "Efficient and robust approximate nearest neighbor search using
Hierarchical Navigable Small World graphs") with `HNSW_M` links per node; `recall_vs_flat` measures
what it loses against exact search (reported by benchmarks/retrieval.py). Both are wrapped in
`IndexIDMap2` so ids are our chunk ids and vectors can be read back. HNSW cannot delete, so removals
rebuild the graph from the stored vectors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scratchlab.lab.atomic import atomic_path

HNSW_THRESHOLD = 50_000  # vectors; at or above this an HNSW graph replaces the flat index
HNSW_M = 32  # graph links per node
HNSW_EF_CONSTRUCTION = 80  # candidate list size while building
HNSW_EF_SEARCH = 96  # candidate list size while searching (higher: better recall, slower)
SEARCH_THREADS = (
    1  # OpenMP threads per search: one query is too small to split (10x slower with 2 on a busy CPU)
)
KINDS = ("flat", "hnsw")


def choose_kind(n_vectors: int, threshold: int = HNSW_THRESHOLD) -> str:
    """ "flat" below `threshold` vectors, else "hnsw"."""
    return "hnsw" if n_vectors >= threshold else "flat"


def _faiss():
    import faiss

    return faiss


def _new_inner(kind: str, dim: int):
    faiss = _faiss()
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
        return inner
    raise ValueError(f"unknown dense index kind {kind!r}; expected one of {KINDS}")


class DenseIndex:
    """A FAISS index of normalized vectors keyed by int64 ids.

    Args:
        index: a `faiss.IndexIDMap2` around `IndexFlatIP` or `IndexHNSWFlat`.
        kind: "flat" or "hnsw".
    """

    def __init__(self, index, kind: str):
        self.index = index
        self.kind = kind

    @classmethod
    def create(cls, dim: int, kind: str | None = None, n_expected: int = 0) -> DenseIndex:
        """An empty index; `kind` default from `choose_kind(n_expected)`."""
        kind = kind or choose_kind(n_expected)
        return cls(_faiss().IndexIDMap2(_new_inner(kind, dim)), kind)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """(N,) int64 ids in storage order."""
        return _faiss().vector_to_array(self.index.id_map).astype(np.int64)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All `(ids (N,) int64, vectors (N, dim) float32)` in storage order."""
        n = len(self)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return self.ids(), self.index.index.reconstruct_n(0, n)

    def reconstruct(self, ids) -> np.ndarray:
        """Stored vectors of `ids`: (len(ids), dim) float32. Raises RuntimeError for unknown ids."""
        return (
            np.stack([self.index.reconstruct(int(i)) for i in ids])
            if len(ids)
            else np.zeros((0, self.dim), np.float32)
        )

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Add vectors (N, dim) float32 under ids (N,) int64 (ids must be new)."""
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[1] != self.dim:
            raise ValueError(f"vectors have shape {vecs.shape}, expected (N, {self.dim})")
        if len(ids) != len(vecs):
            raise ValueError(f"{len(ids)} ids for {len(vecs)} vectors")
        if len(vecs):
            self.index.add_with_ids(vecs, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids) -> None:
        """Delete vectors by id (unknown ids are ignored). HNSW is rebuilt without them."""
        ids = np.asarray(list(ids), dtype=np.int64)
        if not len(ids) or not len(self):
            return
        if self.kind == "flat":
            self.index.remove_ids(_faiss().IDSelectorBatch(ids))
            return
        all_ids, vecs = self.vectors()
        keep = ~np.isin(all_ids, ids)
        self.rebuild(self.kind, all_ids[keep], vecs[keep])

    def rebuild(self, kind: str, ids: np.ndarray | None = None, vecs: np.ndarray | None = None) -> None:
        """Rebuild as `kind` from `ids`/`vecs` (default: the current contents)."""
        if ids is None:
            ids, vecs = self.vectors()
        fresh = DenseIndex.create(self.dim, kind)
        fresh.add(ids, vecs)
        self.index, self.kind = fresh.index, kind

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product.

        Args:
            queries: (dim,) or (Q, dim) float32, normalized.
            k: results per query.

        Returns:
            (scores, ids), each (Q, k') with k' = min(k, len(self)); ids int64, scores float32.
        """
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(int(k), len(self))
        if k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        faiss = _faiss()
        prev = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(SEARCH_THREADS)
        try:
            scores, ids = self.index.search(q, k)
        finally:
            faiss.omp_set_num_threads(prev)
        return scores, ids

    def save(self, path: str | os.PathLike) -> Path:
        """Write the index atomically to `path` (FAISS binary format)."""
        with atomic_path(path) as tmp:
            _faiss().write_index(self.index, str(tmp))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DenseIndex:
        """Read an index written by `save`.

        Raises:
            ValueError: the file is not a FAISS index of a kind we write.
        """
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise ValueError(
                f"{path} is not a readable FAISS index ({str(e).splitlines()[0]}); re-index to rebuild it"
            ) from e
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
        if isinstance(inner, faiss.IndexHNSWFlat):
            inner.hnsw.efSearch = HNSW_EF_SEARCH
            return cls(index, "hnsw")
        if isinstance(inner, faiss.IndexFlatIP):
            return cls(index, "flat")
        raise ValueError(
            f"{path} holds an unexpected FAISS index type {type(index).__name__}; re-index to rebuild it"
        )


def recall_vs_flat(index: DenseIndex, queries: np.ndarray, k: int = 10) -> float:
    """Recall@k of `index` against exact search over the same vectors (1.0 for a flat index).

    Args:
        index: the (approximate) index.
        queries: (Q, dim) float32 normalized query vectors.
        k: depth compared.

    Returns:
        Mean fraction of the exact top-k ids that `index` also returns in its top-k.
    """
    ids, vecs = index.vectors()
    exact = DenseIndex.create(index.dim, "flat")
    exact.add(ids, vecs)
    _, want = exact.search(queries, k)
    _, got = index.search(queries, k)
    return float(np.mean([len(set(w) & set(g)) / max(1, len(w)) for w, g in zip(want, got, strict=True)]))
