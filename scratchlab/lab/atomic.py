"""Atomic file writes: write to a temporary file in the same folder, fsync, then `os.replace`.

A crash (or SIGKILL, or a full disk) in the middle of a write leaves the previous file intact and at
worst a stray `*.tmp-*` file, never half a checkpoint, index or tokenizer.

    from scratchlab.lab.atomic import atomic_write_text, atomic_path
    atomic_write_text(path, "hello")
    with atomic_path(ckpt_path) as tmp:   # any writer that takes a path
        torch.save(state, tmp)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically.

    Args:
        path: the final destination. Its parent folder is created if missing.
        suffix: suffix for the temporary name (some writers look at the extension).

    Raises:
        OSError: if writing or renaming fails (e.g. disk full); `path` is then untouched and the
            temporary file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically. Returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically (UTF-8 by default). Returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write `obj` as JSON (sorted keys, UTF-8) to `path` atomically. Returns the path."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n")
