"""SQLite set-up, in one place, for every SQLite file scratchlab writes (lab.db, an index's chunks.db).

    engine = sqlite_engine(ws.db_path)                        # SQLAlchemy engine, pragmas on connect
    engine = sqlite_engine(index_dir / "chunks.db", synchronous=SYNC_FULL)
    conn = sqlite_connect(ws.db_path)                          # plain sqlite3 (LangGraph's SqliteSaver)

Every connection gets the same pragmas (`PRAGMAS`): WAL (one writer and many readers, readers never
block the writer), a 30 s busy timeout (writers from several processes wait for each other instead
of failing), and foreign keys enforced. The one choice left to the caller is durability:

- `SYNC_NORMAL` (lab.db): in WAL mode a commit survives a crash of the process; a power cut may
  roll back the last commits (never corrupt the file). No fsync per commit, so progress and metric
  rows stay cheap.
- `SYNC_FULL` (an index's chunk table): every commit is on disk before it returns (an fsync per
  commit, a few ms), because the chunk table names the FAISS file written beside it and the two
  must agree after any crash.

Source: SQLite docs "Write-Ahead Logging" and "PRAGMA synchronous"; LangGraph's `SqliteSaver`
(WAL for one writer and many readers).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_S = 30  # how long a writer waits for another process's write lock
PRAGMAS = {"journal_mode": "WAL", "busy_timeout": BUSY_TIMEOUT_S * 1000, "foreign_keys": "ON"}
SYNC_NORMAL = "NORMAL"
SYNC_FULL = "FULL"
SYNC_LEVELS = (SYNC_NORMAL, SYNC_FULL)


def apply_pragmas(conn: sqlite3.Connection, synchronous: str = SYNC_NORMAL) -> None:
    """Set `PRAGMAS` and `synchronous` on a new DB-API connection.

    Raises:
        ValueError: `synchronous` is not one of `SYNC_LEVELS`.
        sqlite3.DatabaseError: the file is not a database, or is locked past the timeout.
    """
    if synchronous not in SYNC_LEVELS:
        raise ValueError(f"synchronous must be one of {SYNC_LEVELS}, got {synchronous!r}")
    cur = conn.cursor()
    for key, value in PRAGMAS.items():
        cur.execute(f"PRAGMA {key}={value}")  # names and values are our constants, not input
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.close()


def sqlite_url(path_or_url: str | os.PathLike) -> str:
    """The URL "sqlite:///<path>" for a file path; a URL that already starts with "sqlite:" is kept."""
    text = str(path_or_url)
    return text if text.startswith("sqlite:") else f"sqlite:///{Path(text).expanduser()}"


def sqlite_engine(path_or_url: str | os.PathLike, synchronous: str = SYNC_NORMAL) -> Engine:
    """A SQLAlchemy engine on a SQLite file (or URL) whose every connection gets `apply_pragmas`.

    Connections may be used from several threads (SQLAlchemy's pool hands each to one at a time).

    Raises:
        ValueError: `synchronous` is not one of `SYNC_LEVELS`.
    """
    if synchronous not in SYNC_LEVELS:
        raise ValueError(f"synchronous must be one of {SYNC_LEVELS}, got {synchronous!r}")
    engine = create_engine(
        sqlite_url(path_or_url), connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # pragma: no cover - runs on every connection
        apply_pragmas(dbapi_conn, synchronous)

    return engine


def sqlite_connect(path: str | os.PathLike, synchronous: str = SYNC_NORMAL) -> sqlite3.Connection:
    """A plain `sqlite3` connection in autocommit mode with `apply_pragmas`, usable from any thread
    (for libraries that take one, such as LangGraph's `SqliteSaver` and `SqliteStore`).

    Raises:
        sqlite3.DatabaseError: the file is not a database, or is locked past the timeout.
    """
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        apply_pragmas(conn, synchronous)
    except BaseException:
        conn.close()
        raise
    return conn
