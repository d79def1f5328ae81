"""Atomic file writes: write to a temporary file in the same folder, fsync, then `os.replace`.

A crash (or SIGKILL, or a full disk) in the middle of a write leaves the previous file intact and at
worst a stray `*.tmp-*` file, never half a checkpoint, index or tokenizer.

    from scratchlab.lab.atomic import atomic_write_text, atomic_path, atomic_dir, atomic_files
    atomic_write_text(path, "hello")
    with atomic_path(ckpt_path) as tmp:   # any writer that takes a path
        torch.save(state, tmp)
    with atomic_dir(model_dir) as tmp:    # any writer that fills a folder (HF save_pretrained)
        model.save_pretrained(tmp)        # model_dir appears complete, or not at all
    with atomic_files(adapter_dir) as tmp:  # a folder writer whose files join an existing folder
        peft_model.save_pretrained(tmp)     # each file replaces its namesake atomically

This module is the one place that writes through a temporary file or folder and `os.replace`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


def _fsync_tree(folder: Path) -> None:
    """fsync every file under `folder`, then the folders themselves (so a rename publishes data)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """Yield a new empty folder beside `path`; on success it is renamed to `path` in one step.

    For writers that fill a whole folder (HF `save_pretrained`, bm25s, a font cache): `path` then
    appears complete or not at all. The folder gets the usual permissions (umask), not mkdtemp's 0700.

    Args:
        path: the final folder. Its parent is created if missing. It must not exist, or be empty.
        fsync: flush every file to disk before the rename (False for caches that can be rebuilt).

    Raises:
        OSError: writing or renaming failed (e.g. disk full, or `path` exists and is not empty);
            `path` is then untouched and the temporary folder removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        tmp.chmod(0o777 & ~_umask())
        yield tmp
        if fsync:
            _fsync_tree(tmp)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_files(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder inside `folder`; on success each file written there replaces its
    namesake in `folder` atomically (file by file: a crash between two files leaves some new and
    some old, never a torn one). The temporary folder is always removed.

    Raises:
        OSError: writing or moving failed.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".files.tmp-", dir=folder))
    try:
        yield tmp
        _fsync_tree(tmp)
        for f in tmp.iterdir():
            os.replace(f, folder / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
