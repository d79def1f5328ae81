"""Incremental ingest into a `DocumentIndex`: scan files, chunk, embed in slices, checkpoint.

    from scratchlab.retrieval.index import DocumentIndex
    idx = DocumentIndex.open_or_create("indexes/notes")
    report = idx.ingest(["notes/"], on_progress=print)   # calls `ingest_paths(idx, ...)` below

The commit protocol (see `scratchlab.retrieval.index`): chunks are embedded `EMBED_SLICE` at a
time; at least every `CHECKPOINT_SECONDS` the pending documents (a `PendingCommit`) are written as
the next generation: FAISS file first (atomically), then one SQLite transaction with the documents,
their chunks and the new generation number. A crash before the commit loses only the pending slice.

Embedding text: a chunk is embedded and BM25-indexed as `context + "\\n" + text` when the chunker
gives it a context header (document and section title, chunker version 2); the stored `text` and
span stay exactly the document's characters, so citations are unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scratchlab.retrieval.chunking import chunk_for_index, embed_text
from scratchlab.retrieval.dense import choose_kind
from scratchlab.retrieval.loaders import Document, LoaderError, file_sha256, find_files, load_file
from scratchlab.retrieval.store import ChunkRecord, DocRecord

EMBED_SLICE = 256  # chunks embedded between checkpoint checks
CHECKPOINT_SECONDS = 30.0  # commit at least this often (plus one slice) while embedding


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


class PendingCommit:
    """What the next checkpoint commits: documents and chunks embedded since the last one, the
    documents to delete, and the FAISS ids those make stale.

    Attributes:
        docs: DocRecord rows to upsert.
        chunks: ChunkRecord rows to insert (ids already in the in-memory FAISS index).
        remove: doc ids to delete.
        stale_ids: chunk ids to drop from FAISS (old chunks of removed or changed documents).
        since: `time.perf_counter()` of the last checkpoint.
    """

    def __init__(self, remove: Sequence[str], stale_ids: Sequence[int]):
        self.docs: list[DocRecord] = []
        self.chunks: list[ChunkRecord] = []
        self.remove = list(remove)
        self.stale_ids = list(stale_ids)
        self.since = time.perf_counter()

    def __bool__(self) -> bool:
        return bool(self.docs or self.remove)

    def add(self, doc: Document, chunks: list, ids: np.ndarray) -> None:
        """Queue one embedded document; `ids` (len(chunks),) int64 are its FAISS ids."""
        self.docs.append(DocRecord(doc.doc_id, doc.source, doc.sha256, doc.kind, len(doc.text), len(chunks)))
        for o, (c, cid) in enumerate(zip(chunks, ids, strict=True)):
            self.chunks.append(ChunkRecord(int(cid), doc.doc_id, o, c.start, c.end, c.line, c.n_tokens, c.text,
                                           context=c.context))  # fmt: skip

    def clear(self) -> None:
        self.docs, self.chunks, self.remove, self.stale_ids = [], [], [], []
        self.since = time.perf_counter()


class IngestRun:
    """One locked write: chunk, embed and commit `todo` in checkpointed slices, drop `removed`."""

    def __init__(self, index, report: IngestReport, emit: ProgressFn):
        self.index = index
        self.report = report
        self.emit = emit
        self.dense = index._dense
        self.done = 0
        self.total = 0

    def checkpoint(self, pending: PendingCommit) -> None:
        """Write the next generation (FAISS file, then one SQLite commit) if anything is pending."""
        if not pending:
            return
        idx, dense = self.index, self.dense
        dense.remove(pending.stale_ids)
        if dense.kind == "flat" and choose_kind(len(dense), idx.config.hnsw_threshold) == "hnsw":
            dense.rebuild("hnsw")
        elif dense.kind == "hnsw" and len(dense) < idx.config.hnsw_threshold // 2:
            dense.rebuild("flat")  # shrunk well below the threshold (hysteresis avoids flapping)
        gen = idx.generation() + 1
        self.emit(
            IngestProgress(
                "save", chunks_done=self.done, chunks_total=self.total, message=f"checkpoint {gen}"
            )
        )
        dense.save(idx._dense_path(gen))
        idx.store.commit(pending.docs, pending.chunks, pending.remove,
                         meta={"generation": gen, "dense_kind": dense.kind})  # fmt: skip
        idx._loaded_gen, idx._bm25 = gen, None
        idx._sweep()
        pending.clear()

    def run(self, todo: list[tuple[Document, bool]], removed: list[str]) -> None:
        idx, report = self.index, self.report
        doc_chunks = []
        for doc, is_change in todo:
            chunks = chunk_for_index(doc, idx.config.chunking, idx.counter, idx.config.chunker_version)
            if chunks:
                doc_chunks.append((doc, is_change, chunks))
            else:
                report.failed.append((doc.source, "no text to index"))
        self.total = sum(len(c) for _, _, c in doc_chunks)
        dense = self.dense
        next_id = max(idx.store.max_chunk_id(), int(dense.ids().max()) if len(dense) else -1) + 1
        pending = PendingCommit(removed, idx.store.chunk_ids(removed))
        t_embed = 0.0
        self.emit(IngestProgress("embed", chunks_done=0, chunks_total=self.total))
        batch: list[tuple[Document, bool, list]] = []
        texts: list[str] = []
        for i, item in enumerate(doc_chunks):
            batch.append(item)
            texts.extend(embed_text(c.context, c.text) for c in item[2])
            if len(texts) < EMBED_SLICE and i < len(doc_chunks) - 1:
                continue
            t1 = time.perf_counter()
            base_done, base_t = self.done, t_embed

            def on_embed(n: int, secs: float, base_done=base_done, base_t=base_t) -> None:
                self.emit(IngestProgress("embed", chunks_done=base_done + n, chunks_total=self.total,
                                         chunks_per_s=(base_done + n) / max(1e-9, base_t + secs)))  # fmt: skip

            vecs = idx.embedder.encode(texts, on_progress=on_embed)
            t_embed += time.perf_counter() - t1
            ids = np.arange(next_id, next_id + len(texts), dtype=np.int64)
            next_id += len(texts)
            # old chunks of changed documents leave FAISS at the checkpoint (HNSW removal rebuilds)
            pending.stale_ids += idx.store.chunk_ids([doc.doc_id for doc, is_change, _ in batch if is_change])
            dense.add(ids, vecs)
            j = 0
            for doc, is_change, chunks in batch:
                pending.add(doc, chunks, ids[j : j + len(chunks)])
                j += len(chunks)
                report.changed += is_change
                report.added += not is_change
            self.done += len(texts)
            report.new_chunks += len(texts)
            batch, texts = [], []
            if time.perf_counter() - pending.since >= CHECKPOINT_SECONDS:
                self.checkpoint(pending)
        report.removed = len(removed)
        report.embed_seconds = t_embed
        self.checkpoint(pending)
        if idx._bm25 is None and (report.new_chunks or report.removed):
            self.emit(IngestProgress("save", chunks_done=self.done, chunks_total=self.total, message="bm25"))
            idx._bm25 = idx._load_or_build_bm25(idx.generation())


def _apply(index, todo, removed, report: IngestReport, emit: ProgressFn) -> None:
    try:
        IngestRun(index, report, emit).run(todo, removed)
    except BaseException:
        index._loaded_gen, index._bm25 = None, None  # in-memory state is ahead of disk: reload
        raise


def _finish(index, report: IngestReport, t0: float, emit: ProgressFn, n_files: int) -> IngestReport:
    report.n_docs, report.n_chunks = index.store.counts()
    report.dense_kind = index.stats()["dense_kind"]
    report.seconds = time.perf_counter() - t0
    emit(IngestProgress("done", files_done=n_files, files_total=n_files, chunks_done=report.new_chunks,
                        chunks_total=report.new_chunks, message=f"{report.n_docs} docs, {report.n_chunks} chunks"))  # fmt: skip
    return report


def ingest_paths(index, paths: Sequence[str | os.PathLike], include: Sequence[str] | None = None,
                 exclude: Sequence[str] | None = None, on_progress: ProgressFn | None = None) -> IngestReport:  # fmt: skip
    """`DocumentIndex.ingest`: index files and folders incrementally (see its docstring)."""
    t0 = time.perf_counter()
    emit = on_progress or (lambda _e: None)
    files = find_files(paths, include, exclude)
    roots = [Path(p).expanduser().resolve() for p in paths]
    with index._writer():
        index._load()
        stored = index.store.documents()
        emit(IngestProgress("scan", files_total=len(files), message=f"{len(files)} files"))
        seen_ids: set[str] = set()
        todo: list[tuple[Document, bool]] = []  # (document, is_change)
        report = IngestReport()
        for n, (path, doc_id) in enumerate(files, 1):
            if doc_id in seen_ids:
                raise LoaderError(f"two files map to the same document id {doc_id!r}; index them separately")
            seen_ids.add(doc_id)
            old = stored.get(doc_id)
            try:
                if old is not None and old.source == str(path.resolve()) and old.sha256 == file_sha256(path):
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
        _apply(index, todo, removed, report, emit)
    return _finish(index, report, t0, emit, len(files))


def add_documents(index, docs: Sequence[Document], remove: Sequence[str] = (),
                  on_progress: ProgressFn | None = None) -> IngestReport:  # fmt: skip
    """`DocumentIndex.add_documents`: index loaded documents and/or remove doc ids (see its docstring)."""
    t0 = time.perf_counter()
    emit = on_progress or (lambda _e: None)
    with index._writer():
        index._load()
        stored = index.store.documents()
        report = IngestReport()
        todo = []
        for d in docs:
            old = stored.get(d.doc_id)
            if old is not None and old.sha256 == d.sha256:
                report.unchanged += 1
            else:
                todo.append((d, old is not None))
        _apply(index, todo, [r for r in dict.fromkeys(remove) if r in stored], report, emit)
    return _finish(index, report, t0, emit, len(docs))
