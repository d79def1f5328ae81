"""`scratchlab serve`: keep the lab and its chat model loaded, so `scratchlab ask` does not reload them.

    scratchlab serve                           # 127.0.0.1, a free port; exits after 15 idle minutes
    scratchlab serve --idle-timeout 3600 --port 8765
    scratchlab ask "list my runs"              # attaches when a server for this workspace and model runs

Every `ask` is a new process; without a server it loads the GGUF model and rebuilds the prompt state each
time. The server holds one `LabSession` (model, prompt cache, tools, SQLite memory) and answers over
HTTP on 127.0.0.1 (FastAPI + uvicorn):
- `GET /health` -> {"ok", "model", "home", "pid", "busy"}
- `POST /ask` {"question", "thread", "dry_run", "yes"} -> `LabSession.ask`'s result (answer, thread,
  tool_calls, ...), one request at a time (the local model is not thread-safe).
While it runs, `<workspace>/serve.json` says where it is ({"url", "pid", "model"}); `scratchlab.server.client`
finds it there. It exits after `idle_timeout_s` seconds without a request and then removes the file.
Reference: FastAPI "Server workers", uvicorn `Server.should_exit`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from scratchlab.lab.atomic import atomic_write_json

SERVE_FILE = "serve.json"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_IDLE_S = 900.0  # seconds without a request before the server exits
IDLE_POLL_S = 0.5

log = logging.getLogger(__name__)


class AskRequest(BaseModel):
    question: str = Field(description="The request, in plain English.")
    thread: str | None = Field(default=None, description="Continue this thread (default: a new one).")
    dry_run: bool = Field(
        default=False, description="Run no tool; return the tool call(s) the agent would make."
    )
    yes: bool = Field(default=False, description="Confirm long actions without asking.")


def model_key(model: Any) -> str:
    """The model spec a server is matched on: the spec string, `$SCRATCHLAB_MODEL`, or "local"."""
    if model is None:
        model = os.environ.get("SCRATCHLAB_MODEL") or "local"
    return model if isinstance(model, str) else type(model).__name__


class _Activity:
    """When the server last finished a request, and whether one is running."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.busy = 0
        self.lock = threading.Lock()

    def idle_for(self) -> float:
        return 0.0 if self.busy else time.monotonic() - self.last


def create_app(lab, model: str, activity: _Activity | None = None):
    """The FastAPI app around one `LabSession` (`lab`) whose model spec is `model`."""
    from fastapi import FastAPI, HTTPException

    activity = activity or _Activity()
    turn_lock = threading.Lock()  # one turn at a time: the model and its prompt cache are shared
    app = FastAPI(title="scratchlab", description="scratchlab ask, with the model kept loaded.")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "model": model, "home": str(lab.workspace.root), "pid": os.getpid(),
                "busy": bool(activity.busy)}  # fmt: skip

    @app.post("/ask")
    def ask(req: AskRequest) -> dict[str, Any]:  # sync: FastAPI runs it in a worker thread
        if not req.question.strip():
            raise HTTPException(status_code=422, detail="question is empty")
        with activity.lock:
            activity.busy += 1
        try:
            with turn_lock:
                lab.ctx.auto_confirm = req.yes
                return lab.ask(req.question, thread_id=req.thread, dry_run=req.dry_run)
        except Exception as e:  # noqa: BLE001 - the boundary: the client gets the reason, the log the trace
            log.exception("ask failed: %r", req.question)
            raise HTTPException(status_code=500, detail=f"{type(e).__name__}: {e}") from e
        finally:
            with activity.lock:
                activity.busy -= 1
                activity.last = time.monotonic()

    return app


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(lab, model: str, *, port: int = 0, host: str = DEFAULT_HOST, idle_timeout_s: float = DEFAULT_IDLE_S,
          on_ready=None, stop: threading.Event | None = None) -> None:  # fmt: skip
    """Serve `lab` until `idle_timeout_s` seconds pass without a request (or Ctrl-C / SIGTERM).

    Args:
        lab: a `LabSession` (its model is loaded before the server answers).
        model: the model spec clients match on (`model_key`).
        port: TCP port; 0 picks a free one.
        host: address to bind; the default keeps the server on this machine.
        idle_timeout_s: seconds without a request before exiting.
        on_ready: called with the URL once the server answers.
        stop: set it to stop the server (for embedding it in a thread).
    """
    import uvicorn

    port = port or _free_port(host)
    url = f"http://{host}:{port}"
    activity = _Activity()
    app = create_app(lab, model, activity)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    path = Path(lab.workspace.root) / SERVE_FILE

    def watch() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            atomic_write_json(
                path, {"url": url, "pid": os.getpid(), "model": model, "home": str(lab.workspace.root)}
            )
            activity.last = time.monotonic()
            if on_ready is not None:
                on_ready(url)
        while not server.should_exit:
            if activity.idle_for() > idle_timeout_s or (stop is not None and stop.is_set()):
                server.should_exit = True
            time.sleep(IDLE_POLL_S)

    watcher = threading.Thread(target=watch, name="serve-idle", daemon=True)
    watcher.start()
    try:
        server.run()
    finally:
        server.should_exit = True
        with contextlib.suppress(OSError, ValueError, KeyError):
            if json.loads(path.read_text())["pid"] == os.getpid():
                path.unlink()
