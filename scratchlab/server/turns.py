"""The turns `scratchlab serve` runs: one at a time on its one `LabSession`, each with a cancel token.

`TurnHost.ask` answers `POST /ask` (a whole turn, collected); `start_turn` + `stream_lines` answer
`POST /turn` (the turn's events as NDJSON, `scratchlab.server.wire`). Every turn runs inside
`scratchlab.lab.cancel.active(token)` with a token the client names (`turn_id`), so
`POST /turns/{turn_id}/cancel` stops it as Ctrl-C does in the REPL: the model stops at its next token,
a job wait returns and the job keeps running, and every tool call of the thread keeps a result.
A streaming client that hangs up cancels its turn.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
from langchain_core.messages import AIMessage, ToolMessage

from scratchlab.agent import memory
from scratchlab.agent.session import InputTooLong
from scratchlab.agent.turns import DANGLING_RESULT
from scratchlab.lab import cancel
from scratchlab.lab.jobs import ACTIVE
from scratchlab.server import wire

log = logging.getLogger(__name__)


def close_dangling_calls(lab, thread_id: str) -> None:
    """Answer any tool call of `thread_id` left without a result, so the thread stays valid."""
    try:
        msgs = lab.history(thread_id)
        if msgs and isinstance(msgs[-1], AIMessage) and msgs[-1].tool_calls:
            results = [ToolMessage(DANGLING_RESULT, tool_call_id=tc["id"], name=tc["name"])
                       for tc in msgs[-1].tool_calls]  # fmt: skip
            lab.graph.update_state(lab.config(thread_id), {"messages": results}, as_node="tools")
    except Exception:  # noqa: BLE001 - best effort after a failed turn; the log keeps the trace
        log.exception("could not close the dangling tool calls of %s", thread_id)


class TurnHost:
    """Runs the server's turns one at a time and keeps each running turn's cancel token.

    Args:
        lab: the `LabSession` (model, graph, tools) every turn runs on.
        activity: the server's `_Activity`: a running turn counts as busy (no idle exit).
    """

    def __init__(self, lab, activity):
        self.lab, self.activity = lab, activity
        self.turn_lock = threading.Lock()  # the model, its prompt cache and `lab.ctx` are shared
        self.tokens: dict[str, cancel.CancelToken] = {}  # turn_id -> token of a waiting or running turn
        self._lock = threading.Lock()

    def _register(self, turn_id: str | None) -> cancel.CancelToken:
        token = cancel.CancelToken()
        if turn_id:
            with self._lock:
                self.tokens[turn_id] = token
        return token

    def _unregister(self, turn_id: str | None) -> None:
        with self._lock:
            self.tokens.pop(turn_id or "", None)

    def control(self, turn_id: str, what: str) -> bool:
        """`cancel` or `detach` the turn `turn_id`; False if no such turn waits or runs."""
        with self._lock:
            token = self.tokens.get(turn_id)
        if token is not None:
            token.cancel() if what == "cancel" else token.detach()
        return token is not None

    def _running_jobs(self) -> list[str]:
        return [j.id for j in self.lab.registry.list_jobs(limit=20) if j.status in ACTIVE]

    def ask(self, question: str, thread: str | None, dry_run: bool, yes: bool, turn_id: str | None) -> dict:
        """`LabSession.ask` under the turn lock; {"cancelled": True, "thread", "jobs"} if cancelled.

        Raises:
            InputTooLong: the request does not fit the model's window (nothing stored).
        """
        thread = thread or memory.new_thread_id()
        token = self._register(turn_id)
        self.activity.begin()
        try:
            with self.turn_lock:
                if token.cancelled:
                    return {"cancelled": True, "thread": thread, "jobs": self._running_jobs()}
                self.lab.ctx.auto_confirm = yes
                try:
                    with cancel.active(token):
                        return self.lab.ask(question, thread_id=thread, dry_run=dry_run)
                except cancel.TurnCancelled:
                    close_dangling_calls(self.lab, thread)
                    return {"cancelled": True, "thread": thread, "jobs": self._running_jobs()}
                finally:
                    self.lab.ctx.auto_confirm = False
        finally:
            self._unregister(turn_id)
            self.activity.end()

    def start_turn(self, text: str | None, thread: str, resume: str | None, turn_id: str) -> queue.Queue:
        """Start a turn in its own thread; its events (wire dicts) arrive on the returned queue."""
        token = self._register(turn_id)
        events: queue.Queue = queue.Queue()
        self.activity.begin()
        worker = threading.Thread(target=self._run, args=(text, thread, resume, turn_id, token, events),
                                  name=f"turn-{turn_id}", daemon=True)  # fmt: skip
        worker.start()
        return events

    def _run(self, text, thread, resume, turn_id, token: cancel.CancelToken, events: queue.Queue) -> None:
        try:
            with self.turn_lock:
                try:
                    if token.cancelled:
                        raise cancel.TurnCancelled
                    self.lab.ctx.auto_confirm = False  # the client asks its own user
                    with cancel.active(token):
                        for kind, data in self.lab.stream(text, thread, resume=resume):
                            events.put(wire.encode(kind, data))
                    events.put({"kind": "end", "data": None})
                except cancel.TurnCancelled:
                    close_dangling_calls(self.lab, thread)
                    events.put({"kind": "cancelled", "data": {"jobs": self._running_jobs()}})
                except InputTooLong as e:
                    events.put({"kind": "too_long", "data": {"detail": str(e)}})
                except Exception as e:  # noqa: BLE001 - the client shows the reason, the log the trace
                    log.exception("turn failed in %s", thread)
                    close_dangling_calls(self.lab, thread)
                    events.put({"kind": "error", "data": {"detail": f"{type(e).__name__}: {e}"}})
        finally:
            self._unregister(turn_id)
            self.activity.end()

    async def stream_lines(
        self, events: queue.Queue, turn_id: str, heartbeat_s: float
    ) -> AsyncIterator[bytes]:
        """The NDJSON body of `POST /turn`; an empty line after `heartbeat_s` seconds of silence.

        An async generator, so that when the client hangs up, Starlette's cancellation lands in this
        frame and the `finally` cancels the turn (a sync iterator would be left to the garbage collector).
        """
        done = False
        try:
            while not done:
                try:
                    event: dict[str, Any] = await anyio.to_thread.run_sync(events.get, True, heartbeat_s)
                except queue.Empty:
                    yield b"\n"
                    continue
                done = event["kind"] in wire.END_KINDS
                yield wire.line(event)
        finally:
            if not done:
                self.control(turn_id, "cancel")
