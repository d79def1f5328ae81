"""The work folder: the one writable place of a run or session, and how its changes are seen.

Files are listed with `lstat` and never followed: a symlink the code plants (to /etc/shadow, to the
user's home) is not reported, read or registered by the host side. `WorkDirWatch` keeps the folder
within its byte and file-count limits while code runs (no kernel quota caps the number of files, so
the host watches; see its docstring for how quickly it reacts).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import time
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


def thread_work_dir(root: str | os.PathLike, thread: str) -> Path:
    """The work folder one conversation's runs share, `<root>/thread-<hash>` (made on first use): a
    file one run writes ("write the numbers to tri.txt") is there for the next ("plot them"), each in a
    fresh interpreter. The folder is named by a hash, so no thread id reaches the file system."""
    path = Path(root) / f"thread-{hashlib.sha256(thread.encode()).hexdigest()[:16]}"
    return prepare_work_dir(path)


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


def usage(work_dir: str | os.PathLike) -> tuple[int, int]:
    """(bytes allocated on disk, number of entries: files, folders, links...) under `work_dir`."""
    total = entries = 0
    for dirpath, dirnames, filenames in os.walk(str(work_dir), followlinks=False):
        entries += len(dirnames) + len(filenames)
        for name in filenames + dirnames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total, entries


def used_inodes(path: str | os.PathLike) -> int | None:
    """Inodes in use on the filesystem holding `path` (statvfs, O(1)); None where it has no inode
    count (btrfs, some network filesystems)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_files - st.f_ffree if st.f_files else None


class WorkDirWatch:
    """Polls a work folder during a run against `max_disk_mb` (bytes) and `max_files` (entries).

    A full walk of the folder costs time, so walks back off (at most ~10% of a core, see
    `next_poll`). Between walks, the filesystem's count of used inodes (one `statvfs`) is read at
    every tick: when it has grown by more than the files still allowed, the folder is walked at once,
    so a program creating files as fast as it can is stopped within about one tick (`DISK_POLL_S`).
    """

    def __init__(self, work_dir: str | os.PathLike, max_disk_bytes: int, max_files: int, poll_s: float):
        self.work_dir = str(work_dir)
        self.max_disk_bytes, self.max_files, self.poll_s = max_disk_bytes, max_files, poll_s
        self.entries = 0
        self.inodes = used_inodes(self.work_dir)
        self.next_walk = time.monotonic() + poll_s

    def next_poll(self, started: float) -> float:
        now = time.monotonic()
        return now + max(self.poll_s, 9 * (now - started))

    def check(self) -> str | None:
        """ "files" or "disk" if the folder is over a limit now, else None."""
        now = time.monotonic()
        inodes = used_inodes(self.work_dir)
        surge = None not in (inodes, self.inodes) and inodes - self.inodes > self.max_files - self.entries
        if now < self.next_walk and not surge:
            return None
        size, self.entries = usage(self.work_dir)
        self.inodes = used_inodes(self.work_dir)
        self.next_walk = self.next_poll(now)
        return over_limits(size, self.entries, self.max_disk_bytes, self.max_files)


def over_limits(size: int, entries: int, max_disk_bytes: int, max_files: int) -> str | None:
    """ "files" when `entries` > `max_files`, "disk" when `size` > `max_disk_bytes`, else None."""
    if entries > max_files:
        return "files"
    if size > max_disk_bytes:
        return "disk"
    return None


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
