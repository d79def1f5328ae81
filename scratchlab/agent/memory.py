"""Conversation and long-term memory in the lab's one SQLite file.

- Threads: LangGraph's `SqliteSaver` checkpointer (`langgraph-checkpoint-sqlite`). Old checkpoints are
  pruned to the newest `keep` per thread (each checkpoint holds the full state, so nothing is lost).
- Long-term facts: LangGraph's `SqliteStore`, namespace ("memories", <user>), written by the
  `remember` tool, read by `recall` and `/memory`.
- Thread titles for `/threads`: our registry (`scratchlab.lab.registry`).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.sqlite import SqliteStore

from scratchlab.lab.registry import LabDatabaseError, check_sqlite_file, describe_db_error

KEEP_CHECKPOINTS = 20
MEMORY_NAMESPACE = ("memories", "user")


def connect(db_path: str | Path) -> sqlite3.Connection:
    """A WAL-mode connection shared by the checkpointer and the store.

    Raises:
        LabDatabaseError: the file is corrupt or locked (message says how to repair).
    """
    check_sqlite_file(db_path)
    try:
        conn = sqlite3.connect(str(db_path), check_same_thread=False, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.DatabaseError as e:
        raise LabDatabaseError(describe_db_error(db_path, e)) from e
    return conn


def open_memory(db_path: str | Path) -> tuple[SqliteSaver, SqliteStore, sqlite3.Connection]:
    """Checkpointer and store on `db_path`, set up (safe to repeat).

    Each gets its own connection: they lock separately, and the tool node writes to the store from
    a worker thread while the checkpointer writes from the graph's thread (one shared connection
    raced: "cannot commit - no transaction is active"). Returns the checkpointer's connection.
    """
    conn = connect(db_path)
    saver = SqliteSaver(conn)
    store = SqliteStore(connect(db_path))
    try:
        saver.setup()
        store.setup()
    except sqlite3.DatabaseError as e:
        raise LabDatabaseError(describe_db_error(db_path, e)) from e
    return saver, store, conn


def prune_checkpoints(conn: sqlite3.Connection, thread_id: str, keep: int = KEEP_CHECKPOINTS) -> int:
    """Delete all but the newest `keep` checkpoints (and their pending writes) of a thread.

    Returns:
        Number of checkpoints deleted.
    """
    rows = conn.execute(
        "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
        "ORDER BY checkpoint_id DESC LIMIT -1 OFFSET ?",
        (thread_id, keep),
    ).fetchall()
    ids = [r[0] for r in rows]
    for cid in ids:
        conn.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_id = ?", (thread_id, cid))
        conn.execute("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id = ?", (thread_id, cid))
    return len(ids)


def new_thread_id() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def list_memories(store: SqliteStore, limit: int = 200) -> list[tuple[str, str]]:
    """(key, fact) pairs, newest first."""
    items = store.search(MEMORY_NAMESPACE, limit=limit)
    items.sort(key=lambda it: it.updated_at, reverse=True)
    return [(it.key, str(it.value.get("fact", ""))) for it in items]


def add_memory(store: SqliteStore, fact: str, key: str | None = None) -> str:
    key = key or f"m-{uuid.uuid4().hex[:6]}"
    store.put(MEMORY_NAMESPACE, key, {"fact": fact.strip()})
    return key


def forget_memory(store: SqliteStore, key: str) -> bool:
    if store.get(MEMORY_NAMESPACE, key) is None:
        return False
    store.delete(MEMORY_NAMESPACE, key)
    return True


def search_memories(store: SqliteStore, query: str, k: int = 5) -> list[tuple[str, str, float]]:
    """Facts ranked by word overlap with `query` (the store has no embedding index configured)."""
    from scratchlab.agent.router import words_in

    q = {w for w in words_in(query) if len(w) > 2}
    scored = []
    for key, fact in list_memories(store):
        f = words_in(fact)
        overlap = sum(1 for w in q if any(w in x or x in w for x in f if len(x) > 2))
        scored.append((key, fact, overlap / (len(q) or 1)))
    scored.sort(key=lambda t: t[2], reverse=True)
    hits = [s for s in scored if s[2] > 0]
    return (hits or scored)[:k]
