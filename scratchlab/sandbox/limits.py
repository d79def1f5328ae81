"""The resource limits of a sandboxed run or session call: defaults, allowed ranges, validation.

    limits = Limits(timeout_s=10, memory_mb=512)   # SandboxConfigError when a value is out of range
    limits.to_dict()                               # passed to the inside runner as JSON

The defaults are safe for a shared laptop and every one is configurable. How each is enforced is
in `scratchlab.sandbox.inside` (rlimits in the child) and `scratchlab.sandbox.runner` (wall clock,
output and disk polled by the parent).

Source: nanochat's `execution.py` (rlimits in the child), smolagents' named constants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from scratchlab.sandbox.errors import SandboxConfigError

DEFAULT_TIMEOUT_S = 60.0  # wall clock, seconds; kills the whole process tree
DEFAULT_CPU_S = 60  # CPU seconds per run / per session call (RLIMIT_CPU)
DEFAULT_SESSION_CPU_S = 1800  # CPU seconds over a session's whole life (hard RLIMIT_CPU)
DEFAULT_MEMORY_MB = 4096  # address space per process (RLIMIT_AS), MiB; `import torch` needs ~1.5 GiB
DEFAULT_MAX_PROCS = 64  # processes + threads of the sandbox uid (RLIMIT_NPROC)
DEFAULT_MAX_OPEN_FILES = 256  # RLIMIT_NOFILE
DEFAULT_MAX_FILE_MB = 64  # largest single file, MiB (RLIMIT_FSIZE)
DEFAULT_MAX_DISK_MB = 256  # total size of the work folder, MiB (polled during the run, checked after)
DEFAULT_MAX_FILES = 10_000  # files + folders in the work folder (polled during the run, checked after)
DEFAULT_TMP_MB = 256  # size of the private /tmp (tmpfs), MiB
DEFAULT_MAX_OUTPUT_BYTES = 64_000  # captured stdout and stderr, each; the rest is dropped with a marker
OUTPUT_KILL_FACTOR = 64  # a run that prints this many times the budget is killed (killed_by="output")
DEFAULT_IDLE_TIMEOUT_S = 900.0  # a session's interpreter exits after this long without a call

MB = 1024 * 1024


@dataclass
class Limits:
    """Resource limits of one run or one session call.

    Attributes:
        timeout_s: wall-clock seconds before the whole process tree is killed.
        cpu_s: CPU seconds (user + system) per run or call (RLIMIT_CPU).
        memory_mb: address-space limit per process, MiB (RLIMIT_AS). Raise it for big torch work.
        max_procs: processes + threads (RLIMIT_NPROC, counted for the sandbox uid).
        max_open_files: open file descriptors per process (RLIMIT_NOFILE).
        max_file_mb: largest file a process may write, MiB (RLIMIT_FSIZE).
        max_disk_mb: total size of the work folder, MiB.
        max_files: files, folders and links in the work folder (its inodes on the host's disk).
        tmp_mb: size of the private /tmp and of /dev/shm, MiB each (memory-backed).
        max_output_bytes: bytes of stdout and of stderr kept (each); the rest is dropped with a marker.
        session_cpu_s: CPU seconds over a whole session's life.
    """

    timeout_s: float = DEFAULT_TIMEOUT_S
    cpu_s: int = DEFAULT_CPU_S
    memory_mb: int = DEFAULT_MEMORY_MB
    max_procs: int = DEFAULT_MAX_PROCS
    max_open_files: int = DEFAULT_MAX_OPEN_FILES
    max_file_mb: int = DEFAULT_MAX_FILE_MB
    max_disk_mb: int = DEFAULT_MAX_DISK_MB
    max_files: int = DEFAULT_MAX_FILES
    tmp_mb: int = DEFAULT_TMP_MB
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    session_cpu_s: int = DEFAULT_SESSION_CPU_S

    _RANGES = {
        "timeout_s": (0.1, 24 * 3600),
        "cpu_s": (1, 24 * 3600),
        "memory_mb": (64, 1024 * 1024),
        "max_procs": (4, 100_000),
        "max_open_files": (16, 1_000_000),
        "max_file_mb": (1, 1024 * 1024),
        "max_disk_mb": (1, 1024 * 1024),
        "max_files": (16, 10_000_000),
        "tmp_mb": (1, 1024 * 1024),
        "max_output_bytes": (256, 1 << 30),
        "session_cpu_s": (1, 7 * 24 * 3600),
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = self._RANGES[f.name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise SandboxConfigError(
                    f"invalid sandbox limit {f.name}={value!r}; expected a number in [{lo}, {hi}]"
                )

    def to_dict(self) -> dict:
        return asdict(self)
