"""The REPL's turn runner: `busy` holds from `submit` until the turn has ended."""

from __future__ import annotations

import io
import threading
import time

from rich.console import Console

from scratchlab.agent import turns
from scratchlab.lab import cancel


class QuietLab:
    """A lab whose turns print one answer token and end."""

    def stream(self, text, thread_id, resume=None):
        yield "token", f"ok: {text}"


def until_idle(runner: turns.TurnRunner, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while runner.busy:
        assert time.monotonic() < deadline, "the runner stays busy"
        time.sleep(0.05)


def test_busy_has_no_gap_between_taking_a_request_and_running_it(monkeypatch):
    taken, go = threading.Event(), threading.Event()
    make_token = cancel.CancelToken

    def slow_token():  # the worker makes the turn's token right after it took the request off the queue
        taken.set()
        go.wait(10)
        return make_token()

    monkeypatch.setattr(turns.cancel, "CancelToken", slow_token)
    out = io.StringIO()
    runner = turns.TurnRunner(QuietLab(), Console(file=out), lambda payload, request: "no")
    runner.submit("hello", "t-1")
    assert runner.busy
    assert taken.wait(10)
    assert runner.busy, "taken off the queue, not yet started: still busy"
    go.set()
    until_idle(runner)
    assert "ok: hello" in out.getvalue()
    runner.submit("a", "t-1")
    runner.submit("b", "t-1")
    runner.cancel()  # drops what is queued: nothing is left pending once the running one ends
    until_idle(runner)
    assert runner.stop(5)
