"""Cooperative cancellation of one agent turn, seen by every loop that may run long inside it.

A face (the REPL) runs each turn in a worker thread inside `active(token)`; Ctrl-C in the face calls
`token.cancel()`. The loops that can run for long check the token of the turn they run in:

    with cancel.active(token):          # in the worker thread; LangGraph copies the context into
        lab.stream(...)                 # the threads that run its nodes and tools
    ...
    cancel.check()                      # in a model's token loop: raises TurnCancelled when cancelled
    if cancel.detached(): ...           # in `lab.jobs.wait_for_job`: stop waiting, the job keeps running

Two levels: `detach()` only stops waiting for background jobs (the tool returns "left running in the
background as job-N" and the turn goes on: a new request typed while a job runs); `cancel()` also stops
the model at its next token (Ctrl-C). Nothing is killed mid-call, so every tool call still gets a
result message and the conversation thread stays valid.

The token lives in a `contextvars.ContextVar` (PEP 567), so concurrent turns in one process (servers)
each see their own. Outside `active`, `check()` does nothing and `detached()` is False.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class TurnCancelled(BaseException):
    """The user cancelled the turn (Ctrl-C); raised by `check()` in a model's token loop.

    A `BaseException`, like `KeyboardInterrupt` and `asyncio.CancelledError`: no `except Exception`
    on the way (a tool's error handling, LangChain's callback logging) swallows or reports it.
    """


class CancelToken:
    """The cancel state of one turn: `detach()` (stop waiting for jobs) < `cancel()` (stop everything)."""

    def __init__(self) -> None:
        self._detach = threading.Event()
        self._cancel = threading.Event()

    def detach(self) -> None:
        """Stop waiting for background jobs; they keep running and the turn goes on."""
        self._detach.set()

    def cancel(self) -> None:
        """Stop the turn: job waits return at once and the model stops at its next token."""
        self._cancel.set()
        self._detach.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def detached(self) -> bool:
        return self._detach.is_set()

    def wait_detached(self, seconds: float) -> bool:
        """Sleep up to `seconds` (returns early, True, once detached or cancelled)."""
        return self._detach.wait(seconds)


_CURRENT: ContextVar[CancelToken | None] = ContextVar("scratchlab_cancel_token", default=None)


def current() -> CancelToken | None:
    """The token of the turn running in this context, or None."""
    return _CURRENT.get()


@contextmanager
def active(token: CancelToken) -> Iterator[CancelToken]:
    """Make `token` the current turn's token for the code run inside the block (and threads it starts
    with a copied context, as LangGraph and LangChain do)."""
    reset = _CURRENT.set(token)
    try:
        yield token
    finally:
        _CURRENT.reset(reset)


def check() -> None:
    """Raise `TurnCancelled` if the current turn was cancelled; a no-op outside a turn.

    Raises:
        TurnCancelled: the current token's `cancel()` was called.
    """
    token = _CURRENT.get()
    if token is not None and token.cancelled:
        raise TurnCancelled("cancelled by the user")


def detached() -> bool:
    """True if the current turn asked to stop waiting for background jobs (or was cancelled)."""
    token = _CURRENT.get()
    return token is not None and token.detached
