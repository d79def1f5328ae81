"""Conversation and long-term memory in the lab's one SQLite file.

- Threads: LangGraph's `SqliteSaver` checkpointer (`langgraph-checkpoint-sqlite`). Old checkpoints are
  pruned to the newest `keep` per thread (each checkpoint holds the full state, so nothing is lost).
- Long-term facts: LangGraph's `SqliteStore`, namespace ("memories", <user>), written by the
  `remember` tool, read by `recall` and `/memory`. Its functions live below the agent, in
  `scratchlab.lab.memory` (the tools use them too), and are re-exported here.
- Thread titles for `/threads`: our registry (`scratchlab.lab.registry`).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.sqlite import SqliteStore

from scratchlab.lab.dbcheck import LabDatabaseError, describe_db_error
from scratchlab.lab.memory import (  # noqa: F401 - re-exported: the agent's face of long-term memory
    MEMORY_NAMESPACE,
    add_memory,
    connect,
    forget_memory,
    list_memories,
    search_memories,
)

KEEP_CHECKPOINTS = 20


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
