"""The chunk table of an index: documents, chunks and index state in a SQLite file (SQLAlchemy Core).

    store = ChunkStore.from_path(index_dir / "chunks.db")
    store.setup()                                         # lazy, safe to repeat
    store.commit(docs=[...], chunks=[...], remove_docs=["old.md"], meta={"generation": 3})
    store.get_chunks([12, 7])                             # {id: ChunkRecord}

Shaped like LangGraph's `SqliteSaver`: the engine is injected, `from_path` builds one, `setup()`
creates tables lazily, SQL is parameterized, and the file runs in WAL mode (one writer, many
readers). `commit` is a single transaction: the documents, their chunks and the `generation` that
names the matching FAISS file change together or not at all, which is what makes an interrupted
ingest lose nothing that was already committed (see `scratchlab.retrieval.index`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError

from scratchlab.lab.sqlite import SYNC_FULL, sqlite_engine

STORE_FORMAT = 2  # bump when the tables change (2: rag_chunks.context)
SQL_IN_BATCH = 500  # ids per IN (...) query

metadata = MetaData()
meta_table = Table("rag_meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))
doc_table = Table(
    "rag_documents",
    metadata,
    Column("doc_id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("n_chars", Integer, nullable=False),
    Column("n_chunks", Integer, nullable=False),
    Column("indexed_at", String(32), nullable=False),
)
chunk_table = Table(
    "rag_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # == FAISS id
    Column("doc_id", Text, nullable=False, index=True),
    Column("ord", Integer, nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("line", Integer, nullable=False),
    Column("n_tokens", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("context", Text, nullable=False, server_default=""),  # "Document > Section" header (store 2)
)


class StoreError(ValueError):
    """The chunk table is unreadable or from an unknown format version."""


@dataclass(frozen=True)
class DocRecord:
    """A document row: `sha256` of its bytes decides whether re-indexing must re-embed it."""

    doc_id: str
    source: str
    sha256: str
    kind: str
    n_chars: int
    n_chunks: int
    indexed_at: str = ""


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk row: `text == document_text[start:end]`; `line` is the 1-based line of `start`;
    `context` is the chunk's "Document > Section" header ("" in stores from before format 2)."""

    id: int
    doc_id: str
    ord: int
    start: int
    end: int
    line: int
    n_tokens: int
    text: str
    source: str = ""
    context: str = ""


def _engine(path: Path) -> Engine:
    return sqlite_engine(path, synchronous=SYNC_FULL)  # the chunk table must agree with the FAISS file


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _batches(ids: Sequence, n: int = SQL_IN_BATCH) -> Iterator[list]:
    ids = list(ids)
    for i in range(0, len(ids), n):
        yield ids[i : i + n]


def _upgrade(conn) -> None:
    """Bring an older chunk table up to STORE_FORMAT in place (format 1 lacks `context`)."""
    columns = {col["name"] for col in inspect(conn).get_columns("rag_chunks")}
    if "context" not in columns:  # constant DDL, no values interpolated
        conn.execute(text("ALTER TABLE rag_chunks ADD COLUMN context TEXT NOT NULL DEFAULT ''"))


class ChunkStore:
    """Documents, chunks and key/value state of one index."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._is_setup = False

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> ChunkStore:
        return cls(_engine(Path(path)))

    def setup(self) -> None:
        """Create the tables if missing and check the format version. Safe to repeat.

        Raises:
            StoreError: the file is not SQLite or was written by a newer scratchlab.
        """
        if self._is_setup:
            return
        try:
            metadata.create_all(self.engine)
            with self.engine.begin() as c:
                got = c.scalar(select(meta_table.c.value).where(meta_table.c.key == "store_format"))
                if got is not None and int(json.loads(got)) > STORE_FORMAT:
                    raise StoreError(
                        f"chunk table format {got} is newer than this scratchlab ({STORE_FORMAT}); upgrade scratchlab"
                    )
                if got is None or int(json.loads(got)) < STORE_FORMAT:
                    _upgrade(c)
                    c.execute(delete(meta_table).where(meta_table.c.key == "store_format"))
                    c.execute(insert(meta_table).values(key="store_format", value=json.dumps(STORE_FORMAT)))
        except DatabaseError as e:
            raise StoreError(
                f"chunk table {self.engine.url.database} is unreadable ({e.orig}); remove the index and re-index"
            ) from e
        self._is_setup = True

    def close(self) -> None:
        self.engine.dispose()

    # ---- reads -----------------------------------------------------------------------------------
    def meta(self) -> dict:
        """All key/value state (values decoded from JSON)."""
        self.setup()
        with self.engine.connect() as c:
            return {k: json.loads(v) for k, v in c.execute(select(meta_table.c.key, meta_table.c.value))}

    def documents(self) -> dict[str, DocRecord]:
        """Every document row by doc_id."""
        self.setup()
        with self.engine.connect() as c:
            return {r.doc_id: DocRecord(**r._mapping) for r in c.execute(select(doc_table))}

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        self.setup()
        with self.engine.connect() as c:
            return int(c.scalar(select(func.count()).select_from(doc_table))), int(
                c.scalar(select(func.count()).select_from(chunk_table))
            )

    def max_chunk_id(self) -> int:
        """Largest chunk id in use, -1 when empty."""
        self.setup()
        with self.engine.connect() as c:
            got = c.scalar(select(func.max(chunk_table.c.id)))
        return -1 if got is None else int(got)

    def chunk_ids(self, doc_ids: Iterable[str]) -> list[int]:
        """Ids of all chunks of these documents."""
        self.setup()
        out: list[int] = []
        with self.engine.connect() as c:
            for part in _batches(list(doc_ids)):
                out.extend(c.scalars(select(chunk_table.c.id).where(chunk_table.c.doc_id.in_(part))))
        return out

    def get_chunks(self, ids: Iterable[int]) -> dict[int, ChunkRecord]:
        """Chunk rows (with their document's source path) by id; unknown ids are absent."""
        self.setup()
        out: dict[int, ChunkRecord] = {}
        q = select(chunk_table, doc_table.c.source).join(
            doc_table, doc_table.c.doc_id == chunk_table.c.doc_id
        )
        with self.engine.connect() as c:
            for part in _batches([int(i) for i in ids]):
                for r in c.execute(q.where(chunk_table.c.id.in_(part))):
                    out[r.id] = ChunkRecord(**r._mapping)
        return out

    def iter_texts(self, batch: int = 5000) -> Iterator[tuple[list[int], list[str], list[str]]]:
        """All (ids, texts, contexts) in id order, `batch` rows at a time (for rebuilding BM25)."""
        self.setup()
        last = -1
        with self.engine.connect() as c:
            while True:
                rows = c.execute(
                    select(chunk_table.c.id, chunk_table.c.text, chunk_table.c.context)
                    .where(chunk_table.c.id > last)
                    .order_by(chunk_table.c.id)
                    .limit(batch)
                ).all()
                if not rows:
                    return
                last = rows[-1][0]
                yield [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    # ---- the one write -----------------------------------------------------------------------------
    def commit(
        self,
        docs: Sequence[DocRecord] = (),
        chunks: Sequence[ChunkRecord] = (),
        remove_docs: Sequence[str] = (),
        meta: dict | None = None,
    ) -> None:
        """In one transaction: delete `remove_docs` (and their chunks), upsert `docs`, insert
        `chunks`, and set `meta` keys. Re-adding a doc_id replaces its old row and chunks."""
        self.setup()
        stamp = _now()
        replace = list(remove_docs) + [d.doc_id for d in docs]
        with self.engine.begin() as c:
            for part in _batches(replace):
                c.execute(delete(chunk_table).where(chunk_table.c.doc_id.in_(part)))
                c.execute(delete(doc_table).where(doc_table.c.doc_id.in_(part)))
            if docs:
                c.execute(
                    insert(doc_table), [{**d.__dict__, "indexed_at": d.indexed_at or stamp} for d in docs]
                )
            if chunks:
                rows = [{k: v for k, v in ch.__dict__.items() if k != "source"} for ch in chunks]
                c.execute(insert(chunk_table), rows)
            for k, v in (meta or {}).items():
                c.execute(delete(meta_table).where(meta_table.c.key == k))
                c.execute(insert(meta_table).values(key=k, value=json.dumps(v)))
