"""`scratchlab serve`: keep the lab and its chat model loaded, so `ask` and new REPLs do not reload them.

    scratchlab serve                           # 127.0.0.1, a free port; exits after 15 idle minutes
    scratchlab serve --idle-timeout 3600 --port 8765
    scratchlab ask "list my runs"              # attaches when a server for this workspace and model runs
    scratchlab ask --keep-alive "list my runs" # starts one in the background first if none runs
    scratchlab --keep-alive                    # a REPL whose turns run in a server that outlives it

Every `ask` is a new process; without a server it loads the GGUF model and rebuilds the prompt state each
time. The server holds one `LabSession` (model, prompt cache, tools, SQLite memory) and answers over
HTTP on 127.0.0.1 (FastAPI + uvicorn), one turn at a time (the local model is not thread-safe):
- `GET /health` -> {"ok", "model", "home", "pid", "busy"}
- `POST /ask` {"question", "thread", "dry_run", "yes", "turn_id"} -> `LabSession.ask`'s result (answer,
  thread, tool_calls with result and artifact ids, ...), or {"cancelled": true, "thread", "jobs"}.
- `POST /turn` {"text" | "resume", "thread", "turn_id"} -> the turn's events as NDJSON lines
  (`scratchlab.server.wire`), for a REPL: it renders them and asks its own confirmations.
- `POST /turns/{turn_id}/cancel` (Ctrl-C: the model stops at its next token, a job wait returns and the
  job keeps running) and `.../detach` (stop waiting for jobs only). A client that hangs up mid-turn
  cancels it too.
- `GET /threads/{thread}/history`, `GET /threads/{thread}/pending`: a thread's messages, its open
  confirmation.
- `POST /clients`, `POST|DELETE /clients/{id}`: an attached REPL's lease; the server does not count
  idle time while a lease is fresh (renewed every `LEASE_S / 3` seconds).

Every route but `/health` needs the header `X-Scratchlab-Token` with the random token the server wrote
to serve.json (mode 0600): other users of the machine can reach 127.0.0.1 but cannot read that file.
While it runs, `<workspace>/serve.json` says where it is ({"url", "pid", "model", "home", "token"}) and the
server holds an exclusive `flock` on `<workspace>/serve.lock` (one server per workspace; the kernel
drops the lock when the process dies, so a killed server leaves no stale lock). After `idle_timeout_s`
seconds without a request it exits: it removes serve.json (only if it is still its own), then drops the
lock. A serve.json left by a killed server is ignored by clients (its pid is gone or it does not answer).
Reference: FastAPI "StreamingResponse", uvicorn `Server.should_exit`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from scratchlab.lab.atomic import atomic_path
from scratchlab.server import wire

SERVE_FILE = "serve.json"
LOCK_FILE = "serve.lock"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_IDLE_S = 900.0  # seconds without a request before the server exits
IDLE_ENV = "SCRATCHLAB_IDLE_TIMEOUT"  # default idle timeout (seconds) for `serve` and `--keep-alive`
IDLE_POLL_S = 0.5
LEASE_S = 180.0  # an attached REPL's lease lasts this long after its last renewal (seconds)
HEARTBEAT_S = 1.0  # a streaming turn sends an empty line after this much silence (seconds)
TOKEN_HEADER = "X-Scratchlab-Token"
OPEN_PATHS = ("/health",)  # the only route without the token (it says which workspace and model)

log = logging.getLogger(__name__)


class AskRequest(BaseModel):
    question: str = Field(description="The request, in plain English.")
    thread: str | None = Field(default=None, description="Continue this thread (default: a new one).")
    dry_run: bool = Field(
        default=False, description="Run no tool; return the tool call(s) the agent would make."
    )
    yes: bool = Field(default=False, description="Confirm long actions without asking.")
    turn_id: str | None = Field(default=None, description="Id the client cancels this turn by.")


class TurnRequest(BaseModel):
    text: str | None = Field(default=None, description="The request (None: resume with `resume`).")
    resume: str | None = Field(default=None, description="The answer to the thread's open confirmation.")
    thread: str = Field(description="The conversation thread.")
    turn_id: str = Field(description="Id the client cancels this turn by.")


class ServerRunning(RuntimeError):
    """Another `scratchlab serve` holds this workspace's serve.lock."""


def model_key(model: Any) -> str:
    """The model spec a server is matched on: the spec string, `$SCRATCHLAB_MODEL`, or "local"."""
    if model is None:
        model = os.environ.get("SCRATCHLAB_MODEL") or "local"
    return model if isinstance(model, str) else type(model).__name__


class ServeLock:
    """The exclusive `flock` on `<root>/serve.lock` that makes a server the workspace's only one."""

    def __init__(self, root: str | Path):
        self.path = Path(root) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another server holds it."""
        if self.fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


class _Activity:
    """When the server last finished a request, how many run, and the attached clients' leases."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.busy = 0
        self.leases: dict[str, float] = {}  # client id -> monotonic time of its last renewal
        self.lock = threading.Lock()

    def begin(self) -> None:
        with self.lock:
            self.busy += 1

    def end(self) -> None:
        with self.lock:
            self.busy -= 1
            self.last = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last request ended or the last lease lapsed (0 while busy)."""
        with self.lock:
            if self.busy:
                return 0.0
            ref = max([self.last, *(t + LEASE_S for t in self.leases.values())])
        return max(0.0, time.monotonic() - ref)


def create_app(lab, model: str, activity: _Activity | None = None, token: str | None = None):
    """The FastAPI app around one `LabSession` (`lab`) whose model spec is `model`; with `token`, every
    route but /health answers 401 to a request without it in the `X-Scratchlab-Token` header."""

    from scratchlab.agent.session import InputTooLong
    from scratchlab.server.turns import TurnHost

    activity = activity or _Activity()
    host = TurnHost(lab, activity)

    def check_token(request: Request) -> None:  # a dependency, not a middleware: those wrap the
        given = request.headers.get(TOKEN_HEADER, "")  # streaming body and hide a client's hang-up
        if token and request.url.path not in OPEN_PATHS and not secrets.compare_digest(given, token):
            where = Path(lab.workspace.root) / SERVE_FILE
            raise HTTPException(
                status_code=401, detail=f"missing or wrong {TOKEN_HEADER}: read it from {where}"
            )

    app = FastAPI(title="scratchlab", description="scratchlab ask, with the model kept loaded.",
                  dependencies=[Depends(check_token)])  # fmt: skip

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "model": model, "home": str(lab.workspace.root), "pid": os.getpid(),
                "busy": bool(activity.busy)}  # fmt: skip

    @app.post("/ask")
    def ask(req: AskRequest) -> dict[str, Any]:  # sync: FastAPI runs it in a worker thread
        if not req.question.strip():
            raise HTTPException(status_code=422, detail="question is empty")
        try:
            return host.ask(req.question, req.thread, req.dry_run, req.yes, req.turn_id)
        except InputTooLong as e:
            raise HTTPException(status_code=422, detail=str(e)) from e
        except Exception as e:  # noqa: BLE001 - the boundary: the client gets the reason, the log the trace
            log.exception("ask failed: %r", req.question)
            raise HTTPException(status_code=500, detail=f"{type(e).__name__}: {e}") from e

    @app.post("/turn")
    def turn(req: TurnRequest) -> StreamingResponse:
        if (req.text is None) == (req.resume is None):
            raise HTTPException(status_code=422, detail="give exactly one of text and resume")
        events = host.start_turn(req.text, req.thread, req.resume, req.turn_id)
        return StreamingResponse(host.stream_lines(events, req.turn_id, HEARTBEAT_S),
                                 media_type="application/x-ndjson")  # fmt: skip

    @app.post("/turns/{turn_id}/{what}")
    def control(turn_id: str, what: str) -> dict[str, Any]:
        if what not in ("cancel", "detach"):
            raise HTTPException(status_code=404, detail=f"unknown turn control {what!r}: cancel or detach")
        return {"found": host.control(turn_id, what)}

    @app.get("/threads/{thread}/history")
    def history(thread: str) -> list[dict[str, Any]]:
        from langchain_core.messages import messages_to_dict

        return messages_to_dict(lab.history(thread))

    @app.get("/threads/{thread}/pending")
    def pending(thread: str) -> dict[str, Any]:
        return {"interrupt": wire.jsonable(lab.pending_interrupt(thread))}

    @app.post("/clients")
    def attach() -> dict[str, Any]:
        cid = uuid.uuid4().hex[:12]
        with activity.lock:
            activity.leases[cid] = time.monotonic()
        return {"client": cid, "lease_s": LEASE_S}

    @app.post("/clients/{cid}")
    def renew(cid: str) -> dict[str, bool]:
        with activity.lock:
            known = cid in activity.leases
            activity.leases[cid] = time.monotonic()
        return {"known": known}

    @app.delete("/clients/{cid}")
    def leave(cid: str) -> dict[str, bool]:
        with activity.lock:
            known = activity.leases.pop(cid, None) is not None
            activity.last = time.monotonic()
        return {"known": known}

    return app


def _exit_on_signal(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(lab, model: str, *, port: int = 0, host: str = DEFAULT_HOST, idle_timeout_s: float = DEFAULT_IDLE_S,
          on_ready=None, stop: threading.Event | None = None, lock: ServeLock | None = None) -> None:  # fmt: skip
    """Serve `lab` until `idle_timeout_s` seconds pass without a request (or Ctrl-C / SIGTERM).

    Args:
        lab: a `LabSession` (its model is loaded before the server answers).
        model: the model spec clients match on (`model_key`).
        port: TCP port; 0 picks a free one.
        host: address to bind; the default keeps the server on this machine.
        idle_timeout_s: seconds without a request (and without an attached REPL) before exiting.
        on_ready: called with the URL once the server answers.
        stop: set it to stop the server (for embedding it in a thread).
        lock: the workspace's `ServeLock`, already taken (default: taken here).

    Raises:
        ServerRunning: another server holds the workspace's serve.lock.
    """
    import uvicorn

    root = Path(lab.workspace.root)
    lock = lock or ServeLock(root)
    if not lock.acquire():
        raise ServerRunning(f"another scratchlab server serves {root} (it holds {root / LOCK_FILE})")
    port = port or _free_port(host)
    url = f"http://{host}:{port}"
    activity, token = _Activity(), secrets.token_urlsafe(24)
    app = create_app(lab, model, activity, token)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    path = root / SERVE_FILE

    def watch() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "model": model, "home": str(root),
                                           "token": token}))  # fmt: skip
                os.chmod(tmp, 0o600)  # before it is in place: only this user may read the token
            activity.last = time.monotonic()
            if on_ready is not None:
                on_ready(url)
        while not server.should_exit:
            if activity.idle_for() > idle_timeout_s or (stop is not None and stop.is_set()):
                server.should_exit = True
            time.sleep(IDLE_POLL_S)

    watcher = threading.Thread(target=watch, name="serve-idle", daemon=True)
    watcher.start()
    # uvicorn stops on SIGTERM, then raises it again with the handler it found: make that one leave
    # through `finally` (serve.json removed) rather than the default action (killed on the spot)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) if main else None
    try:
        server.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        server.should_exit = True
        with contextlib.suppress(OSError, ValueError, KeyError):
            if json.loads(path.read_text())["pid"] == os.getpid():
                path.unlink()  # before the lock goes: a new server cannot have written its own yet
        lock.release()
