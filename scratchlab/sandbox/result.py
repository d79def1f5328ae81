"""What a sandboxed run returns: `RunResult` (JSON in and out, never pickled) and output capture.

    r = run_code(...); r.to_json(); RunResult.from_dict(json.loads(text))

`OutputBuffer` keeps the head and the tail of a stream within a byte budget (the middle is dropped
with a marker), so a program printing gigabytes costs the parent a few kilobytes. `classify` names
the limit that most likely stopped a program from its exit status and stderr.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass, field

from scratchlab.sandbox.limits import Limits

RESULT_VERSION = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp", ".pdf")
MAX_FILES_LISTED = 200
TRUNCATION_MARKER = "\n[... {n} bytes of output dropped ...]\n"
TAIL_FRACTION = 0.25
MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
KILLED_BY = ("timeout", "cpu", "memory", "disk", "files", "output", "file_size", "procs")


@dataclass
class FileInfo:
    """A file the code created or changed in its work folder.

    Attributes:
        path: relative to the work folder (POSIX separators).
        size: bytes.
        image: True for picture formats the REPL can show (png, jpg, svg, ...).
        status: "new" or "modified".
    """

    path: str
    size: int
    image: bool
    status: str


@dataclass
class RunResult:
    """What a run (or session call) did. JSON-able via `to_dict`/`to_json`; never pickled.

    Attributes:
        ok: exit status 0 and no limit hit.
        exit_code: the program's status; -N when killed by signal N; None if it never ran.
        stdout, stderr: captured text (UTF-8, invalid bytes replaced), truncated with a marker.
        timed_out: the wall-clock limit killed it.
        memory_exceeded: it ran out of its address-space limit.
        killed_by: which limit stopped it: one of `KILLED_BY`, or None.
        duration_s: wall-clock seconds.
        files: new or changed regular files in the work folder (symlinks and devices are ignored).
        work_dir: host path of the work folder.
        truncated: some output was dropped.
        sandboxed: False only for explicit `unsafe_no_sandbox` runs.
        warnings: messages for the user (unsafe mode, disk limit, ...).
    """

    ok: bool
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    memory_exceeded: bool = False
    killed_by: str | None = None
    duration_s: float = 0.0
    files: list[FileInfo] = field(default_factory=list)
    work_dir: str = ""
    truncated: bool = False
    sandboxed: bool = True
    warnings: list[str] = field(default_factory=list)
    version: int = RESULT_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> RunResult:
        """Rebuild a result from `to_dict` output. Raises ValueError on an unknown version."""
        if d.get("version", RESULT_VERSION) != RESULT_VERSION:
            raise ValueError(
                f"unsupported sandbox result version {d.get('version')!r}; expected {RESULT_VERSION}"
            )
        d = dict(d)
        d["files"] = [FileInfo(**f) for f in d.get("files", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


# ---- output capture ------------------------------------------------------------------------------------
class OutputBuffer:
    """Keeps the head and the tail of a byte stream within `budget` bytes; counts what was dropped."""

    def __init__(self, budget: int):
        self.tail_max = int(budget * TAIL_FRACTION)
        self.head_max = budget - self.tail_max
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_max - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self.tail_max:
                del self.tail[: len(self.tail) - self.tail_max]

    @property
    def dropped(self) -> int:
        return self.total - len(self.head) - min(len(self.tail), self.tail_max)

    def text(self) -> str:
        tail = bytes(self.tail[-self.tail_max :]) if self.tail_max else b""
        if self.dropped <= 0:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", errors="replace")
        marker = TRUNCATION_MARKER.format(n=self.dropped)
        return (
            bytes(self.head).decode("utf-8", errors="replace")
            + marker
            + tail.decode("utf-8", errors="replace")
        )


def pump(fd: int, buf: OutputBuffer) -> None:
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            return
        if not chunk:
            return
        buf.add(chunk)


def classify(exit_code: int | None, stderr: str, cpu_used: float, limits: Limits) -> str | None:
    """Which limit most likely stopped a program that we did not kill ourselves (None: no limit)."""
    if exit_code in (0, None):
        return None
    if exit_code == -signal.SIGXCPU or (exit_code == -signal.SIGKILL and cpu_used >= limits.cpu_s):
        return "cpu"
    if exit_code == -signal.SIGXFSZ or "[Errno 27] File too large" in stderr:
        return "file_size"
    if any(m in stderr for m in MEMORY_MARKERS):
        return "memory"
    if "[Errno 11] Resource temporarily unavailable" in stderr and ("fork" in stderr or "thread" in stderr):
        return "procs"
    return None
