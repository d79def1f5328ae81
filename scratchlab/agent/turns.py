"""`TurnRunner`: the REPL's agent turns, run one after another in a worker thread.

The REPL's main thread only reads input (prompt_toolkit) and so stays responsive: slash commands run at
once, a new request is queued, and Ctrl-C cancels the running turn through its `CancelToken`
(`scratchlab.lab.cancel`): a job wait returns "left running in the background as job-N" at once, and
the model stops at its next token. Nothing is killed mid-call, so the thread keeps a result for every
tool call. Output is printed with rich from this thread; the REPL's `patch_stdout` puts it above the
prompt. A confirmation is handed to the main thread (`ask_confirm`) and answered there.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from rich.console import Console
from rich.markdown import Markdown

from scratchlab.agent.render import tool_call_panel, tool_result_panel
from scratchlab.agent.session import InputTooLong, LabSession
from scratchlab.lab import cancel

CANCELLED_NOTE = "turn cancelled (the conversation is kept; background jobs keep running: /jobs)"
DANGLING_RESULT = "cancelled by the user before this call finished"
PARTIAL_CHARS = 70  # characters of a streaming answer shown in the status line


class TurnRunner:
    """Runs submitted requests one at a time in a daemon worker thread.

    Args:
        lab: the session whose graph runs the turns.
        console: where the turn is printed.
        ask_confirm: called in the worker with (payload, request); blocks until the user answers and
            returns the answer ("yes"/"no"/...). The REPL asks on its main thread.
    """

    def __init__(self, lab: LabSession, console: Console, ask_confirm: Callable[[dict, str | None], str]):
        self.lab = lab
        self.console = console
        self.ask_confirm = ask_confirm
        self.requests: queue.Queue = queue.Queue()  # (kind, text-or-payload, thread_id) | None to stop
        self.token: cancel.CancelToken | None = None  # the running turn's
        self.state = ""  # what the running turn does now, for the status line
        self.partial = ""  # the tail of the answer being written
        self.started_at = 0.0
        self._pending = 0  # submitted and not yet finished: queued or running
        self._buffer = ""
        self._streamed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="scratchlab-turns", daemon=True)
        self._thread.start()

    # ---- control (main thread) ------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True from `submit` until that turn has ended (no gap between taking it off the queue and
        starting it)."""
        return self._pending > 0

    def submit(self, text: str, thread_id: str) -> None:
        """Queue a request; it runs after the running turn (if any)."""
        self._put(("request", text, thread_id))

    def submit_resume(self, payload: dict, thread_id: str) -> None:
        """Queue the answer to a confirmation left pending in `thread_id` (asked when it runs)."""
        self._put(("resume", payload, thread_id))

    def _put(self, item: tuple) -> None:
        with self._lock:
            self._pending += 1
        self.requests.put(item)

    def detach(self) -> None:
        """Stop waiting for jobs in the running turn; they keep running and the turn goes on."""
        with self._lock:
            if self.token is not None:
                self.token.detach()

    def cancel(self) -> int:
        """Cancel the running turn and drop queued requests. Returns how many were dropped."""
        dropped = 0
        while True:
            try:
                dropped += self.requests.get_nowait() is not None  # a stop's None is no request
            except queue.Empty:
                break
        with self._lock:
            self._pending -= dropped
            if self.token is not None:
                self.token.cancel()
                self.state = "cancelling"
        return dropped

    def stop(self, timeout: float) -> bool:
        """Cancel everything and end the worker; True if it ended within `timeout` seconds."""
        self.cancel()
        self.requests.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---- the worker -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            item = self.requests.get()
            if item is None:
                return
            kind, data, thread_id = item
            token = cancel.CancelToken()
            with self._lock:
                self.token, self.state, self.started_at = token, "thinking", time.monotonic()
            try:
                with cancel.active(token):
                    if kind == "request":
                        self._turn(data, thread_id, None, token)
                    else:
                        answer = self._answer(data, None, token)
                        self.state = f"running {data.get('action', 'the tool')}"
                        self._turn(None, thread_id, answer, token)
            finally:
                with self._lock:
                    self.token, self.state, self.partial = None, "", ""
                    self._pending -= 1

    def _answer(self, payload: dict, request: str | None, token: cancel.CancelToken) -> str:
        self.state = "waiting for your answer"
        return "no" if token.cancelled else self.ask_confirm(payload, request)

    def _turn(self, text: str | None, thread_id: str, resume: Any, token: cancel.CancelToken) -> None:
        request = text
        try:
            while True:
                interrupt = None
                for kind, data in self.lab.stream(text, thread_id, resume=resume):
                    if kind == "interrupt":
                        interrupt = interrupt or data
                    else:
                        self._render(kind, data)
                self._flush()
                if interrupt is None:
                    return
                resume, text = self._answer(interrupt, request, token), None
                self.state = f"running {interrupt.get('action', 'the tool')}"
        except InputTooLong as e:
            self.console.print(str(e), style="yellow", markup=False, highlight=False)
        except cancel.TurnCancelled:
            self._flush()
            self._close_dangling_calls(thread_id)
            self.console.print(CANCELLED_NOTE, style="yellow", markup=False)
        except Exception as e:  # noqa: BLE001 - a failed turn must not end the REPL; show what happened
            self._flush()
            self._close_dangling_calls(thread_id)
            self.console.print(f"error in this turn: {type(e).__name__}: {e}", style="bold red", markup=False)
            self.console.print(traceback.format_exc(limit=-3), style="dim", markup=False)

    def _render(self, kind: str, data: Any) -> None:
        if kind == "token":
            self._streamed = True
            self._buffer += data
            self.state = "answering"
            self.partial = " ".join(self._buffer.split())[-PARTIAL_CHARS:]
            head, sep, rest = self._buffer.rpartition("\n\n")
            if sep and head.count("```") % 2 == 0:  # whole paragraphs, outside a code block
                self.console.print(Markdown(head))
                self._buffer = rest
            return
        self._flush()
        if kind == "tool_call":
            self.state = f"running {data['name']}"
            self.console.print(tool_call_panel(data["name"], data["args"]))
        elif kind == "tool_result":
            self.state = "thinking"
            self.console.print(tool_result_panel(data))
        elif kind == "message":
            if not self._streamed and data.content:
                self.console.print(Markdown(str(data.content)))
            self._streamed = False

    def _flush(self) -> None:
        if self._buffer.strip():
            self.console.print(Markdown(self._buffer))
        self._buffer, self.partial = "", ""

    def _close_dangling_calls(self, thread_id: str) -> None:
        """Answer any tool call left without a result (a tool crashed) so the thread stays valid."""
        try:
            msgs = self.lab.history(thread_id)
        except Exception:  # noqa: BLE001 - best effort; the turn already failed
            return
        if msgs and isinstance(msgs[-1], AIMessage) and msgs[-1].tool_calls:
            results = [ToolMessage(DANGLING_RESULT, tool_call_id=tc["id"], name=tc["name"])
                       for tc in msgs[-1].tool_calls]  # fmt: skip
            self.lab.graph.update_state(self.lab.config(thread_id), {"messages": results}, as_node="tools")
