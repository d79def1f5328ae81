"""Out-of-space detection: recognise a full disk behind an error and say so plainly.

A full disk shows up in many disguises: `OSError(errno.ENOSPC)` ("[Errno 28] No space left on
device"), a quota (`EDQUOT`), SQLite's "database or disk is full", or torch's "PytorchStreamWriter
failed writing file ... file write failed" or "basic_ios::clear: iostream error" (both checked against
the free space, since they carry no errno). `no_space_error(exc, path)` recognises them (following
the exception's `__cause__`/`__context__` chain) and returns one honest sentence that names the
filesystem, how much is free, and what to do::

    try:
        save(...)
    except Exception as e:
        msg = no_space_error(e, out_dir, retry="resume the run")
        if msg:
            raise OutOfSpace(msg) from e
        raise

Errors are never guessed to be a full disk from the disk's free space alone, and a full disk is never
reported as a crash or a corrupt file.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
NO_SPACE_MARKERS = (
    "no space left on device",
    "database or disk is full",
    "disk quota exceeded",
    "[errno 28]",
    "[errno 122]",
)
# torch.save on ENOSPC keeps no errno: "PytorchStreamWriter failed writing file ...: file write failed",
# or, when the end of the zip does not fit, "basic_ios::clear: iostream error"
TORCH_WRITE_MARKERS = ("file write failed", "basic_ios::clear: iostream error")
TORCH_LOW_SPACE_BYTES = 64 * 1024**2  # torch's message counts as "no space" only below this much free
NO_SPACE_TEMPLATE = (
    "no space left on {mount} ({free_mb:.0f} MB free, writing {path}): free {need_mb} MB and {retry}"
)
MB = 1024**2


class OutOfSpace(OSError):
    """The disk (or quota) holding a path is full; the message says where and what to do."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def mount_point(path: str | os.PathLike) -> Path:
    """The mount point of the filesystem holding `path` (its nearest existing ancestor)."""
    p = Path(path).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    p = p.resolve()
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes free for an unprivileged writer on the filesystem holding `path`; None if unknown."""
    try:
        return shutil.disk_usage(mount_point(path)).free
    except OSError:
        return None


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_no_space(exc: BaseException, path: str | os.PathLike | None = None) -> bool:
    """True when `exc` (or an exception it was raised from) reports a full disk or quota.

    torch's write errors carry no errno; they count only when `path` is given and its disk has less
    than `TORCH_LOW_SPACE_BYTES` free.
    """
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in NO_SPACE_ERRNOS:
            return True
        text = str(e).lower()
        if any(m in text for m in NO_SPACE_MARKERS):
            return True
        if any(m in text for m in TORCH_WRITE_MARKERS) and path is not None:
            free = free_bytes(path)
            if free is not None and free < TORCH_LOW_SPACE_BYTES:
                return True
    return False


def no_space_message(path: str | os.PathLike, retry: str = "try again", need_mb: int | None = None) -> str:
    """The sentence for a full disk at `path`: mount point, MB free, and `retry` (e.g. "resume")."""
    free = free_bytes(path)
    need = f"at least {need_mb}" if need_mb else "some"
    return NO_SPACE_TEMPLATE.format(
        mount=mount_point(path), free_mb=(free or 0) / MB, path=path, need_mb=need, retry=retry
    )


def no_space_error(
    exc: BaseException, path: str | os.PathLike, retry: str = "try again", need_mb: int | None = None
) -> str | None:
    """`no_space_message(path, retry)` if `exc` is a full disk (see `is_no_space`), else None."""
    if not is_no_space(exc, path):
        return None
    return no_space_message(path, retry, need_mb)
