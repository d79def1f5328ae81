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

Crash safety: `chunks.db` names the current generation `gen`. An ingest embeds in slices and, at
least every `CHECKPOINT_SECONDS` (checked after each slice of `EMBED_SLICE` chunks), writes the FAISS file of the next generation (atomically) and then
commits, in ONE SQLite transaction, the finished documents, their chunks and the new generation.
A crash before that commit leaves the previous generation fully intact (stray files are swept on
the next ingest); a crash after it keeps everything committed so far, and the next ingest only
embeds what is still new or changed (files are compared by the SHA-256 of their bytes).
One writer at a time (an exclusive `flock` on `.lock`); readers never block.

Hybrid search fuses the dense and BM25 candidate lists with reciprocal rank fusion
(`scratchlab.retrieval.fusion`); optional cross-encoder rerank and HyDE plug in at search time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scratchlab.lab.atomic import atomic_write_json
from scratchlab.retrieval.chunking import ChunkConfig, chunk_text, load_token_counter
from scratchlab.retrieval.dense import HNSW_THRESHOLD, DenseIndex, choose_kind
from scratchlab.retrieval.embeddings import get_embedder
from scratchlab.retrieval.fusion import DEFAULT_BM25_WEIGHT, DEFAULT_RRF_K, rrf
from scratchlab.retrieval.lexical import Analyzer, BM25Index
from scratchlab.retrieval.loaders import Document, LoaderError, file_sha256, find_files, load_file
from scratchlab.retrieval.store import ChunkRecord, ChunkStore, DocRecord

INDEX_FORMAT = 1
CONFIG_FILE = "config.json"
STORE_FILE = "chunks.db"
LOCK_FILE = ".lock"
MODES = ("hybrid", "dense", "bm25")
CANDIDATES = 50  # depth of each single-mode list fed to fusion and rerank
EMBED_SLICE = 256  # chunks embedded between checkpoint checks
CHECKPOINT_SECONDS = 30.0  # commit at least this often (plus one slice) while embedding
MAX_K = 200
RELEVANCE_MIN_COSINE = 0.25  # a dense/hybrid hit below this cosine is "not relevant" (see tools)


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
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class Hit:
    """One search result.

    Attributes:
        chunk_id: id in the chunk table and FAISS.
        doc_id: document id (path relative to the indexed folder, prefixed by its name).
        source: absolute path of the document.
        start, end: character span of `text` in the document text (end exclusive).
        line: 1-based line of `start`.
        text: the chunk text.
        score: the ranking score of the mode (RRF score, cosine, BM25 score or rerank score).
        rank: 1-based position.
        cosine: cosine similarity to the query (dense/hybrid modes), else None.
        bm25: BM25 score when the chunk was in the BM25 candidates, else None.
    """

    chunk_id: int
    doc_id: str
    source: str
    start: int
    end: int
    line: int
    text: str
    score: float
    rank: int = 0
    cosine: float | None = None
    bm25: float | None = None

    def to_json(self) -> dict:
        return {"source": self.source, "doc_id": self.doc_id, "span": [self.start, self.end], "line": self.line,
                "score": round(float(self.score), 6), "text": self.text}  # fmt: skip


@dataclass
class IngestProgress:
    """A progress event: `stage` is "scan", "load", "embed", "save" or "done"."""

    stage: str
    files_done: int = 0
    files_total: int = 0
    chunks_done: int = 0
    chunks_total: int = 0
    chunks_per_s: float = 0.0
    message: str = ""


@dataclass
class IngestReport:
    """What an ingest did. Counts of documents unless named `chunks`; seconds are wall clock."""

    n_docs: int = 0
    n_chunks: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    new_chunks: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    dense_kind: str = "flat"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


ProgressFn = Callable[[IngestProgress], None]


def _is_under(path: str, roots: Sequence[Path]) -> bool:
    p = Path(path)
    return any(p == r or r in p.parents for r in roots)


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
               embedder=None, hnsw_threshold: int = HNSW_THRESHOLD, analyzer: Analyzer | None = None) -> DocumentIndex:  # fmt: skip
        """Make a new empty index folder.

        Args:
            folder: the index folder (created; must not already hold an index).
            chunking: chunk size/overlap (default `ChunkConfig()`).
            model_path: sentence-transformers folder (default the shipped MiniLM).
            embedder: an object with `encode`, `encode_query`, `dim`, `name`, `model_path`
                (default: `get_embedder(model_path)`); benchmarks pass a caching one.
            hnsw_threshold: vectors at which the dense index becomes HNSW.
            analyzer: BM25 analyzer (default `Analyzer()`).

        Raises:
            FileExistsError: `folder` already holds an index.
        """
        folder = Path(folder)
        if (folder / CONFIG_FILE).exists():
            raise FileExistsError(f"{folder} already holds an index; open it, or remove it first")
        embedder = embedder or get_embedder(model_path)
        chunking = chunking or ChunkConfig()
        config = IndexConfig(
            embedding_model=embedder.name, embedding_path=str(embedder.model_path), dim=int(embedder.dim),
            chunk_size=chunking.chunk_size, chunk_overlap=chunking.chunk_overlap,
            analyzer=(analyzer or Analyzer()).to_dict(), hnsw_threshold=int(hnsw_threshold),
        )  # fmt: skip
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
                from scratchlab.retrieval.embeddings import MINILM_NAME, default_model_path

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
                dense = (
                    DenseIndex.load(path)
                    if path.exists() or gen > 0
                    else DenseIndex.create(self.config.dim, "flat")
                )
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
        for part_ids, part_texts in self.store.iter_texts():
            ids.extend(part_ids)
            texts.extend(part_texts)
        bm = BM25Index.build(ids, texts, Analyzer.from_dict(self.config.analyzer))
        with contextlib.suppress(OSError):  # a concurrent reader may have written it first
            if not path.exists():
                bm.save(path)
        return bm

    # ---- info ----------------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counts and settings: docs, chunks, dense kind, generation, model, chunking."""
        n_docs, n_chunks = self.store.counts()
        meta = self.store.meta()
        return {"docs": n_docs, "chunks": n_chunks, "dense_kind": meta.get("dense_kind", "flat"),
                "generation": int(meta.get("generation", 0)), "embedding_model": self.config.embedding_model,
                "chunk_size": self.config.chunk_size, "chunk_overlap": self.config.chunk_overlap}  # fmt: skip

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
        """Index files and folders incrementally.

        New files are added, files whose bytes changed are re-chunked and re-embedded, unchanged
        files are skipped, and previously indexed files under the given paths that are gone now
        are removed. Files that fail to load are reported in `failed` (an earlier indexed version
        of such a file is kept).

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
        t0 = time.perf_counter()
        emit = on_progress or (lambda _e: None)
        files = find_files(paths, include, exclude)
        roots = [Path(p).expanduser().resolve() for p in paths]
        with self._writer():
            self._load()
            stored = self.store.documents()
            emit(IngestProgress("scan", files_total=len(files), message=f"{len(files)} files"))
            seen_ids: set[str] = set()
            todo: list[tuple[Document, bool]] = []  # (document, is_change)
            report = IngestReport()
            for n, (path, doc_id) in enumerate(files, 1):
                if doc_id in seen_ids:
                    raise LoaderError(
                        f"two files map to the same document id {doc_id!r}; index them separately"
                    )
                seen_ids.add(doc_id)
                old = stored.get(doc_id)
                try:
                    if (
                        old is not None
                        and old.source == str(path.resolve())
                        and old.sha256 == file_sha256(path)
                    ):
                        report.unchanged += 1
                    else:
                        todo.append((load_file(path, doc_id), old is not None))
                except LoaderError as e:
                    report.failed.append((str(path), str(e)))
                emit(IngestProgress("load", files_done=n, files_total=len(files)))
            if report.failed and len(report.failed) == len(files):
                reasons = "; ".join(msg for _, msg in report.failed[:3])
                raise LoaderError(f"no file could be loaded: {reasons}")
            removed = [d for d, rec in stored.items() if d not in seen_ids and _is_under(rec.source, roots)]
            self._apply_safely(todo, removed, report, emit)
        return self._finish(report, t0, emit, len(files))

    def add_documents(self, docs: Sequence[Document], remove: Sequence[str] = (),
                      on_progress: ProgressFn | None = None) -> IngestReport:  # fmt: skip
        """Index already-loaded documents and/or remove documents by id (same commit protocol as `ingest`).

        A document whose doc_id is stored with the same sha256 is skipped; with another sha256 it
        replaces the stored one.

        Args:
            docs: documents (e.g. from `loaders.load_file`, or built in memory with any unique doc_id).
            remove: doc ids to delete (unknown ids are ignored).
            on_progress: called with `IngestProgress` events.
        """
        t0 = time.perf_counter()
        emit = on_progress or (lambda _e: None)
        with self._writer():
            self._load()
            stored = self.store.documents()
            report = IngestReport()
            todo = []
            for d in docs:
                old = stored.get(d.doc_id)
                if old is not None and old.sha256 == d.sha256:
                    report.unchanged += 1
                else:
                    todo.append((d, old is not None))
            self._apply_safely(todo, [r for r in dict.fromkeys(remove) if r in stored], report, emit)
        return self._finish(report, t0, emit, len(docs))

    def remove_documents(self, doc_ids: Sequence[str]) -> int:
        """Remove documents by id; returns how many existed."""
        return self.add_documents([], remove=doc_ids).removed

    def _apply_safely(self, todo, removed, report, emit) -> None:
        try:
            self._apply(todo, removed, report, emit)
        except BaseException:
            self._loaded_gen, self._bm25 = None, None  # in-memory state is ahead of disk: reload
            raise

    def _finish(self, report: IngestReport, t0: float, emit: ProgressFn, n_files: int) -> IngestReport:
        report.n_docs, report.n_chunks = self.store.counts()
        report.dense_kind = self.stats()["dense_kind"]
        report.seconds = time.perf_counter() - t0
        emit(IngestProgress("done", files_done=n_files, files_total=n_files, chunks_done=report.new_chunks,
                            chunks_total=report.new_chunks, message=f"{report.n_docs} docs, {report.n_chunks} chunks"))  # fmt: skip
        return report

    def _apply(
        self, todo: list[tuple[Document, bool]], removed: list[str], report: IngestReport, emit: ProgressFn
    ) -> None:
        """Chunk, embed and commit `todo` in checkpointed slices; drop `removed`. Holds the lock."""
        chunking = self.config.chunking
        doc_chunks = []
        for doc, is_change in todo:
            chunks = chunk_text(doc.text, chunking, self.counter)
            if chunks:
                doc_chunks.append((doc, is_change, chunks))
            else:
                report.failed.append((doc.source, "no text to index"))
        total = sum(len(c) for _, _, c in doc_chunks)
        dense = self._dense
        next_id = max(self.store.max_chunk_id(), int(dense.ids().max()) if len(dense) else -1) + 1
        pending_docs, pending_chunks = [], []
        pending_remove = list(removed)
        stale_ids = self.store.chunk_ids(removed)
        texts: list[str] = []
        done = 0
        t_embed = 0.0
        last_ckpt = time.perf_counter()
        emit(IngestProgress("embed", chunks_done=0, chunks_total=total))

        def checkpoint() -> None:
            nonlocal pending_docs, pending_chunks, pending_remove, stale_ids, last_ckpt
            if not (pending_docs or pending_remove):
                return
            dense.remove(stale_ids)
            if dense.kind == "flat" and choose_kind(len(dense), self.config.hnsw_threshold) == "hnsw":
                dense.rebuild("hnsw")
            elif dense.kind == "hnsw" and len(dense) < self.config.hnsw_threshold // 2:
                dense.rebuild("flat")  # shrunk well below the threshold (hysteresis avoids flapping)
            gen = self.generation() + 1
            emit(IngestProgress("save", chunks_done=done, chunks_total=total, message=f"checkpoint {gen}"))
            dense.save(self._dense_path(gen))
            self.store.commit(
                pending_docs,
                pending_chunks,
                pending_remove,
                meta={"generation": gen, "dense_kind": dense.kind},
            )
            self._loaded_gen, self._bm25 = gen, None
            self._sweep()
            pending_docs, pending_chunks, pending_remove, stale_ids = [], [], [], []
            last_ckpt = time.perf_counter()

        batch_docs: list[tuple[Document, bool, list]] = []
        for i, item in enumerate(doc_chunks):
            batch_docs.append(item)
            texts.extend(c.text for c in item[2])
            last = i == len(doc_chunks) - 1
            if len(texts) < EMBED_SLICE and not last:
                continue
            t1 = time.perf_counter()
            base_done, base_t = done, t_embed

            def on_embed(n: int, secs: float, base_done=base_done, base_t=base_t) -> None:
                emit(IngestProgress("embed", chunks_done=base_done + n, chunks_total=total,
                                    chunks_per_s=(base_done + n) / max(1e-9, base_t + secs)))  # fmt: skip

            vecs = self.embedder.encode(texts, on_progress=on_embed)
            t_embed += time.perf_counter() - t1
            ids = np.arange(next_id, next_id + len(texts), dtype=np.int64)
            next_id += len(texts)
            changed_docs = [doc.doc_id for doc, is_change, _ in batch_docs if is_change]
            stale_ids += self.store.chunk_ids(
                changed_docs
            )  # removed at the checkpoint (HNSW removal rebuilds)
            dense.add(ids, vecs)
            j = 0
            for doc, is_change, chunks in batch_docs:
                pending_docs.append(
                    DocRecord(doc.doc_id, doc.source, doc.sha256, doc.kind, len(doc.text), len(chunks))
                )
                for o, c in enumerate(chunks):
                    pending_chunks.append(
                        ChunkRecord(int(ids[j]), doc.doc_id, o, c.start, c.end, c.line, c.n_tokens, c.text)
                    )
                    j += 1
                report.changed += is_change
                report.added += not is_change
            done += len(texts)
            report.new_chunks += len(texts)
            batch_docs, texts = [], []
            if time.perf_counter() - last_ckpt >= CHECKPOINT_SECONDS:
                checkpoint()
        report.removed = len(removed)
        report.embed_seconds = t_embed
        checkpoint()
        if self._bm25 is None and (report.new_chunks or report.removed):
            emit(IngestProgress("save", chunks_done=done, chunks_total=total, message="bm25"))
            self._bm25 = self._load_or_build_bm25(self.generation())

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
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        if not query or not query.strip():
            raise ValueError("the query is empty; give a question or keywords")
        if not 1 <= int(k) <= MAX_K:
            raise ValueError(f"k={k} is out of range; use 1..{MAX_K}")
        k = int(k)
        depth = max(candidates, k, reranker.depth if reranker else 0)
        self._load()  # one look at the generation per search; below uses the loaded components
        dense = self._dense
        if len(dense) == 0:
            return []
        qv = None
        dense_ids, dense_scores, bm_ids, bm_scores = [], {}, [], {}
        if mode in ("dense", "hybrid"):
            qv = query_vector if query_vector is not None else self.embedder.encode_query(query)
            s, ids = dense.search(qv, depth)
            dense_ids = [int(i) for i in ids[0] if i >= 0]
            dense_scores = {int(i): float(v) for i, v in zip(ids[0], s[0], strict=True) if i >= 0}
        if mode in ("bm25", "hybrid"):
            s, ids = self._current_bm25().search(query, depth)
            bm_ids = [int(i) for i in ids]
            bm_scores = dict(zip(bm_ids, (float(v) for v in s), strict=True))
        if mode == "dense":
            ranked = [(i, dense_scores[i]) for i in dense_ids]
        elif mode == "bm25":
            ranked = [(i, bm_scores[i]) for i in bm_ids]
        else:
            w = self.config.bm25_weight if bm25_weight is None else bm25_weight
            ranked = rrf(
                [dense_ids, bm_ids], rrf_k=self.config.rrf_k if rrf_k is None else rrf_k, weights=[1.0, w]
            )
        ranked = ranked[: (reranker.depth if reranker else k)]
        if not ranked:
            return []
        rows = self.store.get_chunks([i for i, _ in ranked])
        missing_cos = [i for i, _ in ranked if qv is not None and i not in dense_scores]
        if missing_cos:
            for i, v in zip(missing_cos, dense.reconstruct(missing_cos) @ qv, strict=True):
                dense_scores[i] = float(v)
        hits = []
        for cid, score in ranked:
            r = rows.get(cid)
            if r is None:  # committed meanwhile by a writer; skip rather than fail
                continue
            hits.append(Hit(cid, r.doc_id, r.source, r.start, r.end, r.line, r.text, float(score),
                            cosine=dense_scores.get(cid) if qv is not None else None, bm25=bm_scores.get(cid)))  # fmt: skip
        if reranker is not None:
            hits = reranker.rerank(query, hits)
        hits = hits[:k]
        for n, h in enumerate(hits, 1):
            h.rank = n
        return hits

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
