"""Attach `scratchlab ask` to a running `scratchlab serve` (see `scratchlab.server.ask_server`).

    result = ask_served(home, model, "list my runs")    # None: no server for this workspace and model
    if result is None:
        result = LabSession(home, model).ask("list my runs")

Standard library only (urllib), so a short `ask` pays no import cost for it. A server is used when
`<home>/serve.json` names one that answers `/health` quickly with the same model spec; otherwise `ask`
runs in its own process as before. `SCRATCHLAB_NO_SERVER=1` never attaches.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SERVE_FILE = "serve.json"  # same name as ask_server.SERVE_FILE (not imported: FastAPI is heavy)
HEALTH_TIMEOUT_S = 1.0
NO_SERVER_ENV = "SCRATCHLAB_NO_SERVER"


class ServeError(RuntimeError):
    """The server took the request but failed on it; the message has its detail."""


def _model_key(model: str | None) -> str:
    return model or os.environ.get("SCRATCHLAB_MODEL") or "local"


def find_server(home: str | Path, model: str | None = None) -> str | None:
    """The URL of a server for this workspace and model spec that answers now, else None."""
    if os.environ.get(NO_SERVER_ENV):
        return None
    try:
        info = json.loads((Path(home) / SERVE_FILE).read_text())
        with urllib.request.urlopen(f"{info['url']}/health", timeout=HEALTH_TIMEOUT_S) as r:  # noqa: S310
            health = json.loads(r.read())
    except (OSError, ValueError, KeyError):  # no file, stale file, server gone or busy starting
        return None
    if health.get("model") != _model_key(model) or Path(health.get("home", "")) != Path(home):
        return None
    return info["url"]


def ask_served(home: str | Path, model: str | None, question: str, thread: str | None = None,
               dry_run: bool = False, yes: bool = False) -> dict[str, Any] | None:  # fmt: skip
    """Ask through a running server; None when there is none (the caller then runs the request itself).

    Raises:
        ServeError: the server failed on the request (it is not retried locally: a tool may have run).
    """
    url = find_server(home, model)
    if url is None:
        return None
    body = json.dumps({"question": question, "thread": thread, "dry_run": dry_run, "yes": yes}).encode()
    req = urllib.request.Request(f"{url}/ask", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=None) as r:  # noqa: S310 - our own localhost URL
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:500]
        raise ServeError(f"scratchlab serve at {url} failed on the request ({e.code}): {detail}") from e
    except urllib.error.URLError as e:
        raise ServeError(f"scratchlab serve at {url} stopped answering: {e.reason}") from e
