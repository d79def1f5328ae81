"""Ctrl-C between prompts is a SIGINT; `repl.sigint_calls` must act on it without deadlocking the REPL
when the signal lands while the main thread holds a lock that the action needs (the turn runner's
lock, a queue's mutex). Calling the action inside the handler would hang forever there."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from scratchlab.agent.repl import sigint_calls

pytestmark = pytest.mark.timeout(30)  # the old design hung here for ever


def test_sigint_while_the_main_thread_holds_the_actions_lock_neither_hangs_nor_is_lost():
    lock = threading.Lock()  # not re-entrant, like TurnRunner._lock and queue.Queue's mutex
    calls: list[str] = []

    def cancel() -> None:
        with lock:
            calls.append(threading.current_thread().name)

    before = signal.getsignal(signal.SIGINT)
    with sigint_calls(cancel):
        with lock:  # the signal arrives here: the handler must return at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the handler has run by now; the action still waits for the lock
            assert calls == []
        deadline = time.monotonic() + 5.0
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
    assert calls == ["scratchlab-sigint"]  # once, off the main thread
    assert signal.getsignal(signal.SIGINT) is before


def test_each_sigint_calls_the_action_once():
    calls = []
    with sigint_calls(lambda: calls.append(1)):
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        deadline = time.monotonic() + 5.0
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(calls) == 3


def test_quitting_while_a_cancelled_turn_finishes_prints_no_traceback_for_it(caplog):
    import io
    import logging
    from types import SimpleNamespace

    from rich.console import Console

    from scratchlab.agent.repl import Repl

    out = io.StringIO()
    repl = Repl.__new__(Repl)
    repl.runner = SimpleNamespace(stop=lambda timeout: False)  # the turn did not end in time
    repl.lab = SimpleNamespace(registry=SimpleNamespace(list_jobs=lambda limit: []), attached=False)
    repl.console, repl.thread = Console(file=out), "t-1"
    futures = logging.getLogger("concurrent.futures")
    level = futures.level
    try:
        repl._quit()
        with caplog.at_level(logging.NOTSET):
            futures.error("exception calling callback for <Future>")  # what the executor logs at exit
        assert "still finishing" in out.getvalue() and "bye" in out.getvalue()
        assert not [r for r in caplog.records if r.name == "concurrent.futures"]
    finally:
        futures.setLevel(level)
