"""A persistent, incremental document index: chunk table + FAISS (dense) + BM25 (lexical).

    from scratchlab.retrieval.index import DocumentIndex
    idx = DocumentIndex.open_or_create("indexes/notes")
    report = idx.ingest(["notes/"], include=["*.md"], on_progress=print)   # only new/changed files embed
    hits = idx.search("how does LoRA merge weights?", k=5, mode="hybrid")  # also "dense", "bm25"
    hits[0].source, hits[0].start, hits[0].end, hits[0].line, hits[0].text

Folder layout (one folder per index)::

    config.json           format, embedding model, chunking, analyzer (atomic write, versioned)
    chunks.db             SQLite: documents (path, sha256), chunks (id, span, line, text), state
    dense-<gen>.faiss     FAISS IndexIDMap2 over flat or HNSW inner-product vectors; ids = chunk ids
    bm25-<gen>/           bm25s matrices + chunk ids (derived; rebuilt from chunks.db when missing)

Crash safety: `chunks.db` names the current generation `gen`; an ingest (`scratchlab.retrieval.ingest`)
checkpoints by writing the next generation's FAISS file, then committing documents, chunks and the
new generation in ONE SQLite transaction. A crash before that commit leaves the previous generation
intact (stray files are swept on the next ingest); after it, the next ingest only embeds what is
still new or changed (SHA-256 of the bytes). One writer at a time (`flock` on `.lock`); readers
never block. Search (dense, BM25, hybrid RRF, rerank) is in `scratchlab.retrieval.search`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scratchlab.lab.atomic import atomic_write_json
from scratchlab.retrieval import ingest as _ingest
from scratchlab.retrieval.chunking import CHUNKER_VERSION, ChunkConfig, embed_text, load_token_counter
from scratchlab.retrieval.dense import HNSW_THRESHOLD, DenseIndex
from scratchlab.retrieval.embeddings import MINILM_NAME, default_model_path, get_embedder
from scratchlab.retrieval.fusion import DEFAULT_BM25_WEIGHT, DEFAULT_RRF_K
from scratchlab.retrieval.ingest import IngestReport, ProgressFn
from scratchlab.retrieval.lexical import Analyzer, BM25Index
from scratchlab.retrieval.loaders import Document
from scratchlab.retrieval.search import CANDIDATES, MAX_K, MODES, RELEVANCE_MIN_COSINE, Hit, search_index  # noqa: F401
from scratchlab.retrieval.store import ChunkStore, DocRecord

INDEX_FORMAT = 1
CONFIG_FILE = "config.json"
STORE_FILE = "chunks.db"
LOCK_FILE = ".lock"


class IndexError_(LookupError):
    """Base class: the index is missing, busy, or incompatible."""


class IndexNotFound(IndexError_):
    """No index folder at the given path."""


class IndexBusy(IndexError_):
    """Another process is writing this index."""


@dataclass
class IndexConfig:
    """What an index was built with (saved as config.json; older files get defaults for new keys).

    Attributes:
        embedding_model: model folder name (e.g. "all-MiniLM-L6-v2").
        embedding_path: the folder it was loaded from.
        dim: embedding dimension.
        chunk_size, chunk_overlap: chunking, in embedding-tokenizer tokens.
        analyzer: BM25 analyzer settings.
        hnsw_threshold: vectors at which the dense index switches from flat to HNSW.
        rrf_k: default RRF constant for hybrid search.
        bm25_weight: weight of the BM25 ranking in hybrid RRF (the dense ranking has weight 1).
        chunker_version: 1 = plain text chunks; 2 = structure-aware chunks with context headers; 3 = the
            same with the headers' titles as plain words
            (`chunking.CHUNKER_VERSION`). A config.json without the key was written by version 1.
    """

    embedding_model: str = ""
    embedding_path: str = ""
    dim: int = 0
    chunk_size: int = ChunkConfig().chunk_size
    chunk_overlap: int = ChunkConfig().chunk_overlap
    analyzer: dict = field(default_factory=lambda: Analyzer().to_dict())
    hnsw_threshold: int = HNSW_THRESHOLD
    rrf_k: float = DEFAULT_RRF_K
    bm25_weight: float = DEFAULT_BM25_WEIGHT
    chunker_version: int = CHUNKER_VERSION
    format: int = INDEX_FORMAT

    @property
    def chunking(self) -> ChunkConfig:
        return ChunkConfig(self.chunk_size, self.chunk_overlap)

    @classmethod
    def load(cls, path: Path) -> IndexConfig:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise IndexError_(
                f"index config {path} is unreadable ({e}); remove the index and re-index"
            ) from e
        if int(raw.get("format", 0)) > INDEX_FORMAT:
            raise IndexError_(
                f"index {path.parent} has format {raw['format']}, newer than {INDEX_FORMAT}; upgrade scratchlab"
            )
        if int(raw.get("chunker_version", 1)) > CHUNKER_VERSION:
            raise IndexError_(f"index {path.parent} uses chunker {raw['chunker_version']}, newer than "
                              f"{CHUNKER_VERSION}; upgrade scratchlab")  # fmt: skip
        raw.setdefault("chunker_version", 1)  # written before the chunker was versioned
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


class DocumentIndex:
    """An index folder. Use `create`, `open` or `open_or_create`; see the module docstring."""

    def __init__(self, folder: Path, config: IndexConfig, embedder=None):
        self.folder = Path(folder)
        self.config = config
        self.store = ChunkStore.from_path(self.folder / STORE_FILE)
        self._embedder = embedder
        self._counter = None
        self._dense: DenseIndex | None = None
        self._bm25: BM25Index | None = None
        self._loaded_gen: int | None = None

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | os.PathLike, chunking: ChunkConfig | None = None, model_path: str | None = None,
               embedder=None, hnsw_threshold: int = HNSW_THRESHOLD, analyzer: Analyzer | None = None,
               chunker_version: int = CHUNKER_VERSION) -> DocumentIndex:  # fmt: skip
        """Make a new empty index folder.

        Args:
            folder: the index folder (created; must not already hold an index).
            chunking: chunk size/overlap (default `ChunkConfig()`).
            model_path: sentence-transformers folder (default the shipped MiniLM).
            embedder: has `encode`, `encode_query`, `dim`, `name`, `model_path` (default `get_embedder`).
            hnsw_threshold: vectors at which the dense index becomes HNSW.
            analyzer: BM25 analyzer (default `Analyzer()`).
            chunker_version: 3 (structure-aware chunks, plain-word context headers), 2 (headers with
                the titles' markup) or 1 (plain chunks).

        Raises:
            FileExistsError: `folder` already holds an index.
            ValueError: unknown chunker version.
        """
        folder = Path(folder)
        if (folder / CONFIG_FILE).exists():
            raise FileExistsError(f"{folder} already holds an index; open it, or remove it first")
        if not 1 <= chunker_version <= CHUNKER_VERSION:
            raise ValueError(f"chunker_version={chunker_version} is unknown; use 1 to {CHUNKER_VERSION}")
        embedder = embedder or get_embedder(model_path)
        chunking = chunking or ChunkConfig()
        config = IndexConfig(embedding_model=embedder.name, embedding_path=str(embedder.model_path), dim=int(embedder.dim),
                             chunk_size=chunking.chunk_size, chunk_overlap=chunking.chunk_overlap,
                             analyzer=(analyzer or Analyzer()).to_dict(), hnsw_threshold=int(hnsw_threshold),
                             chunker_version=int(chunker_version))  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        idx = cls(folder, config, embedder)
        idx.store.setup()
        idx.store.commit(meta={"generation": 0, "dense_kind": "flat"})
        atomic_write_json(folder / CONFIG_FILE, dataclasses.asdict(config))
        return idx

    @classmethod
    def open(cls, folder: str | os.PathLike, embedder=None) -> DocumentIndex:
        """Open an existing index folder.

        Raises:
            IndexNotFound: no index at `folder`.
            IndexError_: unreadable or newer-format config.
        """
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise IndexNotFound(
                f"no index at {folder} (missing {CONFIG_FILE}); build one with `scratchlab rag index`"
            )
        return cls(folder, IndexConfig.load(folder / CONFIG_FILE), embedder)

    @classmethod
    def open_or_create(cls, folder: str | os.PathLike, **create_kw) -> DocumentIndex:
        """`open` if `folder` holds an index, else `create(folder, **create_kw)`."""
        folder = Path(folder)
        if (folder / CONFIG_FILE).is_file():
            return cls.open(folder, embedder=create_kw.get("embedder"))
        return cls.create(folder, **create_kw)

    # ---- components --------------------------------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            path = self.config.embedding_path
            if not Path(path).is_dir():  # moved machine: fall back to the shipped model of the same name
                default = default_model_path()
                if self.config.embedding_model != MINILM_NAME:
                    raise IndexError_(
                        f"embedding model {self.config.embedding_model!r} ({path}) is not available here"
                    )
                path = str(default)
            self._embedder = get_embedder(path)
        return self._embedder

    @property
    def counter(self):
        if self._counter is None:
            self._counter = load_token_counter(self.embedder.model_path)
        return self._counter

    def _dense_path(self, gen: int) -> Path:
        return self.folder / f"dense-{gen}.faiss"

    def _bm25_path(self, gen: int) -> Path:
        return self.folder / f"bm25-{gen}"

    def generation(self) -> int:
        return int(self.store.meta().get("generation", 0))

    def _load(self) -> None:
        """(Re)load dense + BM25 for the current generation if it changed on disk."""
        for _attempt in range(3):
            gen = self.generation()
            if gen == self._loaded_gen:
                return
            try:
                path = self._dense_path(gen)
                exists = path.exists() or gen > 0
                dense = DenseIndex.load(path) if exists else DenseIndex.create(self.config.dim, "flat")
            except ValueError:
                if self.generation() != gen:
                    continue  # a writer committed meanwhile and swept the file; retry
                raise
            self._dense, self._bm25, self._loaded_gen = dense, None, gen
            return
        raise IndexBusy(f"index {self.folder} kept changing while loading; try again")

    @property
    def dense(self) -> DenseIndex:
        self._load()
        return self._dense

    @property
    def bm25(self) -> BM25Index:
        self._load()
        return self._current_bm25()

    def _current_bm25(self) -> BM25Index:
        if self._bm25 is None:
            self._bm25 = self._load_or_build_bm25(self._loaded_gen)
        return self._bm25

    def _load_or_build_bm25(self, gen: int) -> BM25Index:
        path = self._bm25_path(gen)
        if path.is_dir():
            with contextlib.suppress(ValueError):
                return BM25Index.load(path)
        ids, texts = [], []
        for part_ids, part_texts, part_contexts in self.store.iter_texts():
            ids.extend(part_ids)
            texts.extend(embed_text(c, t) for c, t in zip(part_contexts, part_texts, strict=True))
        bm = BM25Index.build(ids, texts, Analyzer.from_dict(self.config.analyzer))
        with contextlib.suppress(OSError):  # a concurrent reader may have written it first
            if not path.exists():
                bm.save(path)
        return bm

    # ---- info ----------------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counts and settings: docs, chunks, dense kind, generation, model, chunking."""
        (n_docs, n_chunks), meta = self.store.counts(), self.store.meta()
        return {"docs": n_docs, "chunks": n_chunks, "dense_kind": meta.get("dense_kind", "flat"),
                "generation": int(meta.get("generation", 0)), "embedding_model": self.config.embedding_model,
                "chunk_size": self.config.chunk_size, "chunk_overlap": self.config.chunk_overlap,
                "chunker_version": self.config.chunker_version}  # fmt: skip

    def documents(self) -> dict[str, DocRecord]:
        return self.store.documents()

    # ---- writing -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LOCK_FILE, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as e:
                raise IndexBusy(
                    f"index {self.folder} is being written by another process; wait for it to finish"
                ) from e
            try:
                self._sweep()
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _sweep(self) -> None:
        """Delete files of generations other than the current one and leftover temp files."""
        gen = self.generation()
        for p in self.folder.iterdir():
            name = p.name
            stale_dense = name.startswith("dense-") and name != self._dense_path(gen).name
            stale_bm25 = name.startswith("bm25-") and name != self._bm25_path(gen).name
            if stale_dense or stale_bm25 or ".tmp-" in name:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()

    def ingest(self, paths: Sequence[str | os.PathLike], include: Sequence[str] | None = None,
               exclude: Sequence[str] | None = None, on_progress: ProgressFn | None = None) -> IngestReport:  # fmt: skip
        """Index files and folders incrementally (`scratchlab.retrieval.ingest`).

        New files are added, changed files (by bytes) re-chunked and re-embedded, unchanged ones
        skipped, and indexed files under `paths` that are gone removed. Files that fail to load are
        reported in `failed` (an earlier indexed version of such a file is kept).

        Args:
            paths: files and folders (folders recursively; hidden entries skipped).
            include, exclude: glob filters (see `loaders.find_files`).
            on_progress: called with `IngestProgress` events.

        Returns:
            An `IngestReport`.

        Raises:
            LoaderError: a path does not exist, nothing matches, or every file failed to load.
            IndexBusy: another process is writing this index.
        """
        return _ingest.ingest_paths(self, paths, include, exclude, on_progress)

    def add_documents(self, docs: Sequence[Document], remove: Sequence[str] = (),
                      on_progress: ProgressFn | None = None) -> IngestReport:  # fmt: skip
        """Index already-loaded documents and/or remove documents by id (same commit protocol as `ingest`).

        A doc_id stored with the same sha256 is skipped; with another sha256 it is replaced.

        Args:
            docs: documents (e.g. from `loaders.load_file`, or built in memory with any unique doc_id).
            remove: doc ids to delete (unknown ids are ignored).
            on_progress: called with `IngestProgress` events.
        """
        return _ingest.add_documents(self, docs, remove, on_progress)

    def remove_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove documents by id; returns how many existed."""
        return self.add_documents([], remove=doc_ids).removed

    # ---- searching -----------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, mode: str = "hybrid", rrf_k: float | None = None,
               bm25_weight: float | None = None, candidates: int = CANDIDATES, reranker=None, query_vector: np.ndarray | None = None) -> list[Hit]:  # fmt: skip
        """Search the index.

        Args:
            query: the question or keywords.
            k: results wanted (1..MAX_K).
            mode: "hybrid" (RRF of dense and BM25), "dense" or "bm25".
            rrf_k: RRF constant (default: the index config's, `fusion.DEFAULT_RRF_K` for new indexes).
            bm25_weight: weight of the BM25 ranking in RRF, dense having 1 (default: the index config's).
            candidates: depth of each single-mode list before fusion/rerank.
            reranker: optional `rerank.CrossEncoderReranker`; reorders the top candidates.
            query_vector: (dim,) float32 to use instead of embedding `query` (HyDE passes one).

        Returns:
            Up to k hits, best first; [] for an empty index or a query with no match.

        Raises:
            ValueError: unknown mode, blank query, or k out of range.
        """
        return search_index(self, query, k, mode, rrf_k, bm25_weight, candidates, reranker, query_vector)

    def is_relevant(self, hit: Hit) -> bool:
        """Whether a hit looks relevant: cosine >= RELEVANCE_MIN_COSINE when known, else any BM25 match."""
        if hit.cosine is not None:
            return hit.cosine >= RELEVANCE_MIN_COSINE
        return (hit.bm25 or 0.0) > 0.0


def remove_index(folder: str | os.PathLike) -> None:
    """Delete an index folder (refuses folders that are not an index).

    Raises:
        IndexNotFound: `folder` holds no index.
        IndexBusy: it is being written.
    """
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file():
        raise IndexNotFound(f"no index at {folder}")
    with open(folder / LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise IndexBusy(f"index {folder} is being written; try again later") from e
        shutil.rmtree(folder)
