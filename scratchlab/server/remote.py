"""A REPL attached to `scratchlab serve`: the turns run in the server, everything else stays local.

    lab = open_lab(model, keep_alive=True, console=console)   # RemoteLab, or a plain LabSession
    Repl(lab=lab).run()

`RemoteLab` stands in for `LabSession` in the REPL and its `TurnRunner`: `stream`, `history` and
`pending_interrupt` go to the server (`POST /turn`, NDJSON events, see `scratchlab.server.wire`);
the registry, memory store, tools list and workspace are the local session's (same SQLite file), so
slash commands work as before and the model is never loaded in the REPL. The REPL keeps its own
confirmations (an interrupt ends the served stream; the answer goes back as a resume turn) and its
Ctrl-C (the turn's cancel token is relayed to `POST /turns/{id}/cancel`, a new request typed during
a job wait to `.../detach`). While attached, the REPL holds a lease so the server does not idle out
under it. If the server is gone when a turn starts, the REPL falls back to loading the model itself.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage, messages_from_dict

from scratchlab.agent import session
from scratchlab.agent.session import InputTooLong, LabSession
from scratchlab.lab import cancel
from scratchlab.server.client import (
    CONTROL_TIMEOUT_S,
    ServeError,
    find_server,
    headers,
    request,
    start_server,
)

LEASE_RENEW_S = 60.0  # the server's lease lasts LEASE_S = 180 s after a renewal
RELAY_POLL_S = 0.1  # how often a served turn's cancel token is checked (seconds)


class RemoteInputTooLong(InputTooLong):
    """`InputTooLong` as the server reported it (its message only)."""

    def __init__(self, message: str):  # noqa: D107 - InputTooLong's numbers stay on the server
        ValueError.__init__(self, message)
        self.tokens = self.limit = None


def decode(kind: str, data: Any) -> Any:
    """A wire event's data as `LabSession.stream` yields it (ToolMessage / AIMessage for results)."""
    if kind == "tool_result":
        return ToolMessage(data["content"], tool_call_id=data["tool_call_id"], name=data["name"],
                           status=data.get("status") or "success")  # fmt: skip
    if kind == "message":
        return AIMessage(data["content"])
    return data


class RemoteLab:
    """A `LabSession` whose turns run in the server at `url`; other attributes are `local`'s.

    Args:
        url: the server's base URL (`find_server` / `start_server`).
        local: the REPL's own `LabSession` (its model is not loaded while attached).
    """

    def __init__(self, url: str, local: LabSession):
        self.url, self.local, self.attached = url, local, True
        self.client_id = request(url, "/clients", {}, timeout=CONTROL_TIMEOUT_S)["client"]
        self._stop = threading.Event()
        threading.Thread(target=self._renew, name="serve-lease", daemon=True).start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.local, name)

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_RENEW_S):
            with contextlib.suppress(ServeError):
                request(self.url, f"/clients/{self.client_id}", {}, timeout=CONTROL_TIMEOUT_S)

    def _thread_path(self, thread_id: str, what: str) -> str:
        return f"/threads/{urllib.parse.quote(thread_id, safe='')}/{what}"

    def history(self, thread_id: str) -> list:
        if not self.attached:
            return self.local.history(thread_id)
        return messages_from_dict(request(self.url, self._thread_path(thread_id, "history"), timeout=60))

    def pending_interrupt(self, thread_id: str) -> dict | None:
        if not self.attached:
            return self.local.pending_interrupt(thread_id)
        return request(self.url, self._thread_path(thread_id, "pending"), timeout=60)["interrupt"]

    def stream(self, text: str | None, thread_id: str, resume: Any = None, watch: Any = None) -> Iterator[tuple[str, Any]]:  # fmt: skip
        """`LabSession.stream`, run by the server; raises `TurnCancelled` when the turn was cancelled,
        `RemoteInputTooLong` for a request too long, `ServeError` when the server failed."""
        if not self.attached:
            yield from self.local.stream(text, thread_id, resume=resume, watch=watch)
            return
        turn_id = uuid.uuid4().hex
        body = {"text": text, "resume": resume, "thread": thread_id, "turn_id": turn_id}
        req = urllib.request.Request(
            f"{self.url}/turn", data=json.dumps(body).encode(), headers=headers(self.url)
        )
        try:
            resp = urllib.request.urlopen(req, timeout=None)  # noqa: S310 - our own localhost URL
        except urllib.error.HTTPError as e:
            raise ServeError(f"scratchlab serve refused the turn ({e.code}): {e.read()[:300]!r}") from e
        except (urllib.error.URLError, OSError):  # the server is gone: run the turn here from now on
            self.detach_server()
            yield from self.local.stream(text, thread_id, resume=resume, watch=watch)
            return
        done = threading.Event()
        relay = threading.Thread(target=self._relay, args=(cancel.current(), turn_id, done), daemon=True)
        relay.start()
        try:
            with resp:
                for raw in resp:
                    if not raw.strip():
                        continue  # heartbeat
                    event = json.loads(raw)
                    kind, data = event["kind"], event["data"]
                    if kind == "end":
                        return
                    if kind == "cancelled":
                        raise cancel.TurnCancelled
                    if kind == "too_long":
                        raise RemoteInputTooLong(data["detail"])
                    if kind == "error":
                        raise ServeError(f"the turn failed in scratchlab serve: {data['detail']}")
                    yield kind, decode(kind, data)
            raise ServeError(f"scratchlab serve at {self.url} ended the turn without a result")
        except (urllib.error.URLError, OSError) as e:
            raise ServeError(f"scratchlab serve at {self.url} stopped answering mid-turn: {e}") from e
        finally:
            done.set()

    def _relay(self, token: cancel.CancelToken | None, turn_id: str, done: threading.Event) -> None:
        """Pass the REPL's Ctrl-C (cancel) and "stop waiting for the job" (detach) on to the server."""
        detached = False
        while token is not None and not done.wait(RELAY_POLL_S):
            what = "cancel" if token.cancelled else "detach" if token.detached and not detached else None
            if what:
                with contextlib.suppress(ServeError):
                    request(self.url, f"/turns/{turn_id}/{what}", {}, timeout=CONTROL_TIMEOUT_S)
                if what == "cancel":
                    return
                detached = True

    def detach_server(self) -> LabSession:
        """Stop using the server (its lease is given back); turns then run in this process."""
        if self.attached:
            self.attached = False
            self._stop.set()
            with contextlib.suppress(ServeError):
                request(self.url, f"/clients/{self.client_id}", method="DELETE", timeout=CONTROL_TIMEOUT_S)
        return self.local

    def close(self) -> None:
        self.detach_server()
        self.local.close()


def open_lab(model: str | None, keep_alive: bool, console) -> LabSession | RemoteLab:
    """The REPL's lab: attached to a running server of this workspace and model (started first, as a
    detached `scratchlab serve`, when `keep_alive`), else a `LabSession` that loads the model itself."""
    local = session.LabSession(model=model)  # looked up now: embedding apps and tests may swap the class
    root = local.workspace.root
    url = find_server(root, model)
    if url is None and keep_alive:
        try:
            with console.status("starting scratchlab serve (it loads the model and stays after you quit)…"):
                url = start_server(root, model)
        except ServeError as e:
            console.print(f"{e}\nthe model runs in this REPL instead", style="yellow", markup=False)
    if url is None:
        return local
    try:
        return RemoteLab(url, local)
    except ServeError as e:
        console.print(f"{e}\nthe model runs in this REPL instead", style="yellow", markup=False)
        return local
