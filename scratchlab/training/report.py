"""Progress and metric reporting for the trainers, and stopping on a signal.

A trainer reports to a `Reporter`: a lab `JobReporter` (`scratchlab.lab.job_child`; it writes the job's
progress and metric rows to the registry and sets `stop_requested` on SIGINT/SIGTERM), a
`SignalStop` for stand-alone runs (progress lines on a stream; Ctrl-C asks for a clean stop), or
nothing.

    from scratchlab.training.report import SignalStop, Throttled
    rep = Throttled(SignalStop(sys.stderr))          # at most one SQLite write / print per 0.5 s
    rep.update(step, total, "loss 1.23", loss=1.23)  # dropped when too soon after the last one
    rep.update(step, total, "eval ...", force=True)  # always delivered
    if rep.stop_requested: ...                       # checkpoint and return "cancelled"
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any, Protocol, TextIO

REPORT_EVERY_S = 0.5  # at most this often to the job reporter (SQLite writes)


class Reporter(Protocol):
    """What the loops report to (a lab `JobReporter`, a `SignalStop`, or nothing)."""

    stop_requested: bool

    def update(self, step: int, total: int, message: str = "", **metrics: float) -> None: ...


class SignalStop:
    """Stand-alone runs: SIGINT/SIGTERM request a clean stop (checkpoint kept) instead of dying.

    Args:
        stream: where progress lines go (None: nowhere).
        every: print step lines only every `every` steps, at the last step and for eval messages
            (1: every update).
    """

    def __init__(self, stream: TextIO | None = sys.stdout, every: int = 1) -> None:
        self.stop_requested = False
        self.stream, self.every = stream, max(1, every)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.stop_requested = True

    def update(self, step: int, total: int, message: str = "", **metrics: float) -> None:
        if self.stream is None:
            return
        if step % self.every == 0 or step == total or message.startswith("eval"):
            line = message if self.every == 1 else f"step {step}/{total}: {message}"
            print(line, file=self.stream, flush=True)


class Throttled:
    """Pass updates to `reporter` at most every `every_s` seconds (forced ones always).

    Metrics whose value is None are dropped. With `reporter` None every update is a no-op and
    `stop_requested` is False.
    """

    def __init__(self, reporter: Reporter | None, every_s: float = REPORT_EVERY_S) -> None:
        self.reporter, self.every_s = reporter, every_s
        self._last = float("-inf")

    @property
    def stop_requested(self) -> bool:
        return self.reporter is not None and bool(self.reporter.stop_requested)

    def update(self, step: int, total: int, message: str = "", force: bool = False, **metrics: Any) -> None:
        if self.reporter is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        self.reporter.update(step, total, message, **{k: v for k, v in metrics.items() if v is not None})


def fmt_eta(seconds: float) -> str:
    """ "1h02m" from one hour up, else "3m05s"."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
