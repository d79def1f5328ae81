"""The work folder: the one writable place of a run or session, and how its changes are seen.

Files are listed with `lstat` and never followed: a symlink the code plants (to /etc/shadow, to the
user's home) is not reported, read or registered by the host side.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from scratchlab.sandbox import policy
from scratchlab.sandbox.policy import SANDBOX_UID
from scratchlab.sandbox.result import IMAGE_SUFFIXES, MAX_FILES_LISTED, FileInfo


def new_work_dir(root: str | os.PathLike, kind: str = "run") -> Path:
    """Create `<root>/<kind>-<UTC time>-<random>` and return it (writable by the sandbox uid)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{kind}-{stamp}-{secrets.token_hex(3)}"
    path.mkdir(parents=True, exist_ok=False)
    prepare_work_dir(path)
    return path


def prepare_work_dir(path: str | os.PathLike) -> Path:
    """Make `path` exist and, when we are root, belong to the sandbox uid (code runs as that uid)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if policy.is_root():
        st = path.lstat()
        if st.st_uid != SANDBOX_UID:
            os.chown(path, SANDBOX_UID, SANDBOX_UID)
    return path


def snapshot(work_dir: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """Regular files under `work_dir` -> (size bytes, mtime ns). Symlinks are never followed."""
    out: dict[str, tuple[int, int]] = {}
    root = str(work_dir)
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if (st.st_mode & 0o170000) == 0o100000:  # regular file
                out[os.path.relpath(full, root)] = (st.st_size, st.st_mtime_ns)
    return out


def disk_usage(work_dir: str | os.PathLike) -> int:
    """Bytes allocated on disk by everything under `work_dir` (st_blocks, so sparse files count truly)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(str(work_dir), followlinks=False):
        for name in filenames + dirnames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def changed_files(before: dict, after: dict) -> list[FileInfo]:
    files = []
    for rel, (size, mtime) in sorted(after.items()):
        if rel.startswith(policy.UNSAFE_TMP_NAME + os.sep):
            continue
        if rel in before and before[rel] == (size, mtime):
            continue
        status = "modified" if rel in before else "new"
        files.append(FileInfo(rel.replace(os.sep, "/"), size, rel.lower().endswith(IMAGE_SUFFIXES), status))
    return files[:MAX_FILES_LISTED]
