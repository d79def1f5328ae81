"""Why lab.db cannot be used, said truthfully: damaged only if `PRAGMA integrity_check` says so.

    check_sqlite_file(ws.db_path)                 # raises LabDatabaseError with the diagnosis
    describe_db_error(ws.db_path, exc)            # the sentence for any SQLite error on lab.db

A full disk is named as such (with the mount point and MB free, see `scratchlab.lab.diskspace`), a lock
is a lock, and the advice to move the file aside (`mv lab.db lab.db.bad`, which loses every thread,
memory and registry row) is given only for a file SQLite itself reports as damaged.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from scratchlab.lab.diskspace import MB, free_bytes, no_space_error

DB_CORRUPT_HELP = (
    "The lab database {path} is damaged ({reason}; PRAGMA integrity_check: {check}). Nothing was changed. "
    "Move it aside (`mv {path} {path}.bad`) and scratchlab will start a fresh one; your artifacts' files "
    "stay in the workspace folders."
)
DB_LOCKED_HELP = (
    "The lab database {path} is locked by another process ({reason}). Nothing was changed; the file is "
    "fine. Wait for the other scratchlab process to finish, or stop it."
)
DB_ERROR_HELP = (
    "The lab database {path} could not be used ({reason}). Nothing was changed, and the file itself is "
    "intact (PRAGMA integrity_check: ok): do not delete or move it. Check the folder's permissions and "
    "free space, then try again."
)
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26  # primary result codes that mean "damaged file"


class LabDatabaseError(RuntimeError):
    """lab.db is locked, full, damaged or unreadable; the message says which and what to do."""


def integrity_check(path: str | Path) -> tuple[bool | None, str]:
    """Run `PRAGMA integrity_check` on the SQLite file at `path`, read-only.

    Returns:
        (True, "ok") when intact; (False, what SQLite reports) when damaged (including "file is not a
        database"); (None, why) when the check could not run (locked, unreadable, no space for the
        WAL index): then nothing is known about the file.
    """
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchmany(5)
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        code = getattr(e, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB):
            return False, str(e)
        return None, str(e)
    found = "; ".join(str(r[0]) for r in rows)
    return found == "ok", found


def describe_db_error(path: str | Path, exc: BaseException) -> str:
    """What went wrong with lab.db, in words a user can act on.

    The file is called damaged only when `integrity_check` says so; a full disk is named as such
    (see `scratchlab.lab.diskspace`); a lock is a lock.
    """
    reason = getattr(exc, "orig", None) or exc
    text = str(reason).lower()
    full = no_space_error(reason, path, retry="try again")
    free = free_bytes(path)
    if full is None and "disk i/o" in text and free is not None and free < MB:
        full = no_space_error(OSError(errno.ENOSPC, "No space left on device"), path, retry="try again")
    if full:
        return f"The lab database {path} could not be written: {full}. Nothing was changed and the file is intact."
    if "locked" in text or "busy" in text:
        return DB_LOCKED_HELP.format(path=path, reason=reason)
    ok, found = integrity_check(path)
    if ok is False:
        return DB_CORRUPT_HELP.format(path=path, reason=reason, check=found)
    if ok is None:
        return (
            f"The lab database {path} could not be used ({reason}) nor checked ({found}). Nothing was "
            "changed; do not delete or move it. Check the folder's permissions and free space, then try again."
        )
    return DB_ERROR_HELP.format(path=path, reason=reason)


def check_sqlite_file(path: str | Path) -> None:
    """Raise `LabDatabaseError` (with a diagnosis) if `path` exists but cannot be opened as SQLite."""
    path = Path(path)
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise LabDatabaseError(describe_db_error(path, e)) from e
