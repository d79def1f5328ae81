"""Attach `scratchlab ask` (and REPLs) to a running `scratchlab serve` (see `scratchlab.server.ask_server`).

    result = ask_served(home, model, "list my runs")    # None: no server for this workspace and model
    if result is None:
        result = LabSession(home, model).ask("list my runs")
    url = start_server(home, model)                     # `ask --keep-alive`: a detached `scratchlab serve`

Standard library only (urllib, subprocess), so a short `ask` pays no import cost for it. A server is used
when `<home>/serve.json` names a live process that answers `/health` quickly with the same workspace and
model spec; a file left by a killed server is ignored. `SCRATCHLAB_NO_SERVER=1` never attaches (and
`--keep-alive` then starts nothing).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

SERVE_FILE = "serve.json"  # same name as ask_server.SERVE_FILE (not imported: FastAPI is heavy)
TOKEN_HEADER = "X-Scratchlab-Token"  # same as ask_server.TOKEN_HEADER
SERVE_LOG = "serve.log"  # where a server started by `start_server` writes its output
HEALTH_TIMEOUT_S = 5.0  # a live server answers at once; a busy machine may take a few seconds
CONTROL_TIMEOUT_S = 10.0  # cancel / lease requests (seconds)
START_WAIT_S = 600.0  # seconds `start_server` waits for the model to load (minutes on a busy 2-core box)
NO_SERVER_ENV = "SCRATCHLAB_NO_SERVER"
LOG_TAIL_CHARS = 1500


_TOKENS: dict[str, str] = {}  # server URL -> its token, as read from serve.json by `find_server`


class ServeError(RuntimeError):
    """The server took the request but failed on it, or could not be started; the message says why."""


def _model_key(model: str | None) -> str:
    return model or os.environ.get("SCRATCHLAB_MODEL") or "local"


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # alive but not ours / nonsense: let /health decide
        return True
    except (TypeError, ValueError):
        return False
    return True


def headers(url: str) -> dict[str, str]:
    """The headers of a request to the server at `url` (its token, once `find_server` has read it)."""
    return {"Content-Type": "application/json", TOKEN_HEADER: _TOKENS.get(url, "")}


def request(
    url: str, path: str, body: Any = None, *, method: str | None = None, timeout: float | None = None
):
    """One JSON request to the server; returns the decoded reply.

    Raises:
        ServeError: an HTTP error status (with the server's detail) or the server stopped answering.
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}{path}", data=data, method=method, headers=headers(url))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - our own localhost URL
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:500]
        raise ServeError(f"scratchlab serve at {url} failed on the request ({e.code}): {detail}") from e
    except (urllib.error.URLError, OSError) as e:
        raise ServeError(f"scratchlab serve at {url} stopped answering: {getattr(e, 'reason', e)}") from e


def find_server(home: str | Path, model: str | None = None) -> str | None:
    """The URL of a server for this workspace and model spec that answers now, else None."""
    if os.environ.get(NO_SERVER_ENV):
        return None
    try:
        info = json.loads((Path(home) / SERVE_FILE).read_text())
        if not _pid_alive(info.get("pid")):  # left by a killed server
            return None
        with urllib.request.urlopen(f"{info['url']}/health", timeout=HEALTH_TIMEOUT_S) as r:  # noqa: S310
            health = json.loads(r.read())
    except (OSError, ValueError, KeyError, AttributeError):  # no file, stale file, gone or still starting
        return None
    if health.get("model") != _model_key(model) or Path(health.get("home", "")) != Path(home):
        return None
    _TOKENS[info["url"]] = str(info.get("token", ""))
    return info["url"]


def start_server(home: str | Path, model: str | None, idle_timeout_s: float | None = None,
                 wait_s: float = START_WAIT_S) -> str:  # fmt: skip
    """Start `scratchlab serve` for this workspace and model as a detached process and wait until it
    answers (it loads the model in its own process; nothing is forked from the caller).

    Args:
        home: the workspace folder.
        model: the model spec (None: `$SCRATCHLAB_MODEL` or the default local model).
        idle_timeout_s: its idle timeout in seconds (None: `$SCRATCHLAB_IDLE_TIMEOUT` or 15 minutes).
        wait_s: how long to wait for it to answer (seconds).

    Returns:
        The server's URL (an already running server of this workspace and model is used as is).

    Raises:
        ServeError: it exited or did not answer in time (e.g. a server for another model holds the
            workspace); the message has the tail of `<home>/serve.log`.
    """
    url = find_server(home, model)
    if url:
        return url
    if os.environ.get(NO_SERVER_ENV):
        raise ServeError(f"{NO_SERVER_ENV} is set: no server is started")
    cmd = [sys.executable, "-m", "scratchlab", *(["--model", model] if model else []), "serve"]
    if idle_timeout_s:
        cmd += ["--idle-timeout", str(idle_timeout_s)]
    log_path = Path(home) / SERVE_LOG
    env = {**os.environ, "SCRATCHLAB_HOME": str(home)}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, close_fds=True)  # fmt: skip
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        url = find_server(home, model)
        if url:
            return url
        if proc.poll() is not None:  # it exited; a concurrent start may still have won the lock
            url = find_server(home, model)
            if url:
                return url
            break
        time.sleep(0.2)
    else:
        proc.terminate()
    tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:].strip()
    raise ServeError(f"scratchlab serve did not start (see {log_path}):\n{tail}")


def ask_served(home: str | Path, model: str | None, question: str, thread: str | None = None,
               dry_run: bool = False, yes: bool = False, url: str | None = None) -> dict[str, Any] | None:  # fmt: skip
    """Ask through a running server; None when there is none (the caller then runs the request itself).

    The first Ctrl-C asks the server to cancel the turn (the result then has "cancelled": True, the
    thread and the jobs left running); a second one raises `KeyboardInterrupt` at once.

    Raises:
        ServeError: the server failed on the request (it is not retried locally: a tool may have run).
    """
    url = url or find_server(home, model)
    if url is None:
        return None
    turn_id = uuid.uuid4().hex
    body = {"question": question, "thread": thread, "dry_run": dry_run, "yes": yes, "turn_id": turn_id}
    box: dict[str, Any] = {}
    done = threading.Event()  # not Thread.join: a join that Ctrl-C interrupts can leave is_alive() wrong

    def call() -> None:
        try:
            box["result"] = request(url, "/ask", body)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=call, name="ask-served", daemon=True).start()
    cancelled = False
    while True:
        try:
            if done.wait(0.2):
                break
        except KeyboardInterrupt:
            if cancelled:
                raise
            cancelled = True
            with contextlib.suppress(ServeError):
                request(url, f"/turns/{turn_id}/cancel", {}, timeout=CONTROL_TIMEOUT_S)
    if "error" in box:
        raise box["error"]
    return box["result"]
