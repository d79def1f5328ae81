"""Long-term memory: facts kept across conversations, in LangGraph's `SqliteStore` inside lab.db.

    store = open_store(ws.db_path)                     # set up, safe to repeat
    key = add_memory(store, "the user prefers RoPE")   # "m-1a2b3c"
    search_memories(store, "rope")                     # [(key, fact, score)], best first
    forget_memory(store, key)

Facts live in namespace ("memories", "user") as {"fact": str}. The store has no embedding index,
so search ranks by word overlap (`scratchlab.lab.words`). Every connection to lab.db, this one and
the agent's checkpointer (`scratchlab.agent.memory`), is opened by `connect` with the lab's SQLite
set-up (`scratchlab.lab.sqlite`). This sits below `tools` and `agent`: the remember/recall tools and
the REPL's /memory use the same functions.

Source: LangGraph's `BaseStore` API (put/get/search/delete by namespace and key).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from langgraph.store.sqlite import SqliteStore

from scratchlab.lab.dbcheck import LabDatabaseError, check_sqlite_file, describe_db_error
from scratchlab.lab.sqlite import sqlite_connect
from scratchlab.lab.words import words_in

MEMORY_NAMESPACE = ("memories", "user")
MIN_QUERY_WORD_CHARS = 3  # query words shorter than this ("a", "of") do not count as overlap


def connect(db_path: str | Path) -> sqlite3.Connection:
    """A WAL-mode autocommit connection to lab.db for LangGraph's checkpointer or store.

    Raises:
        LabDatabaseError: the file is corrupt or locked (message says how to repair).
    """
    check_sqlite_file(db_path)
    try:
        return sqlite_connect(db_path)
    except sqlite3.DatabaseError as e:
        raise LabDatabaseError(describe_db_error(db_path, e)) from e


def open_store(db_path: str | Path) -> SqliteStore:
    """The long-term memory store on `db_path`, set up (safe to repeat), on its own connection.

    Raises:
        LabDatabaseError: lab.db is corrupt, locked or full.
    """
    store = SqliteStore(connect(db_path))
    try:
        store.setup()
    except sqlite3.DatabaseError as e:
        raise LabDatabaseError(describe_db_error(db_path, e)) from e
    return store


def list_memories(store: SqliteStore, limit: int = 200) -> list[tuple[str, str]]:
    """(key, fact) pairs, newest first."""
    items = store.search(MEMORY_NAMESPACE, limit=limit)
    items.sort(key=lambda it: it.updated_at, reverse=True)
    return [(it.key, str(it.value.get("fact", ""))) for it in items]


def add_memory(store: SqliteStore, fact: str, key: str | None = None) -> str:
    """Keep `fact` (stripped) under `key` (default a new "m-xxxxxx"); returns the key."""
    key = key or f"m-{uuid.uuid4().hex[:6]}"
    store.put(MEMORY_NAMESPACE, key, {"fact": fact.strip()})
    return key


def forget_memory(store: SqliteStore, key: str) -> bool:
    """Delete the fact under `key`; False if there was none."""
    if store.get(MEMORY_NAMESPACE, key) is None:
        return False
    store.delete(MEMORY_NAMESPACE, key)
    return True


def search_memories(store: SqliteStore, query: str, k: int = 5) -> list[tuple[str, str, float]]:
    """Facts ranked by word overlap with `query` (the store has no embedding index configured).

    Returns:
        up to `k` (key, fact, score) with score in [0, 1] (share of the query's words found); the
        newest facts when none overlaps.
    """
    q = {w for w in words_in(query) if len(w) >= MIN_QUERY_WORD_CHARS}
    scored = []
    for key, fact in list_memories(store):
        f = words_in(fact)
        overlap = sum(1 for w in q if any(w in x or x in w for x in f if len(x) >= MIN_QUERY_WORD_CHARS))
        scored.append((key, fact, overlap / (len(q) or 1)))
    scored.sort(key=lambda t: t[2], reverse=True)
    hits = [s for s in scored if s[2] > 0]
    return (hits or scored)[:k]
