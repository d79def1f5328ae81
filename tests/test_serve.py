"""`scratchlab serve` + `ask` attaching to it: FastAPI/uvicorn on 127.0.0.1 holding one LabSession.

The server runs in a thread of the test with a scripted chat model (`ScriptedChatModel`), so an answer
that comes back through `scratchlab ask` proves the CLI attached to it: without the server, the model
spec "ScriptedChatModel" is not one `ask` could load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from scratchlab.agent.session import LabSession
from scratchlab.agent.testing import ScriptedChatModel
from scratchlab.server import client
from scratchlab.server.ask_server import SERVE_FILE, model_key, serve

REPO = Path(__file__).resolve().parents[1]
MODEL = "ScriptedChatModel"


@pytest.fixture
def served(workspace):
    """A server on a free port with a scripted model; yields (thread, LabSession)."""
    calls = [{"name": "list_artifacts", "args": {}, "id": "c1"}]
    model = ScriptedChatModel(responses=[AIMessage("", tool_calls=calls), AIMessage("Nothing built yet.")])
    lab = LabSession(home=workspace.root, model=model)
    assert model_key(model) == MODEL
    stop = threading.Event()
    t = threading.Thread(
        target=serve, args=(lab, MODEL), kwargs={"idle_timeout_s": 60, "stop": stop}, daemon=True
    )
    t.start()
    deadline = time.monotonic() + 30
    while client.find_server(workspace.root, MODEL) is None:
        assert time.monotonic() < deadline and t.is_alive(), "the server did not start"
        time.sleep(0.1)
    info = json.loads((workspace.root / SERVE_FILE).read_text())
    assert info["url"].startswith("http://127.0.0.1:") and info["model"] == MODEL
    yield t, lab
    stop.set()
    t.join(timeout=30)
    assert not t.is_alive()
    lab.close()


def test_ask_attaches_to_the_server(workspace, served):
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCRATCHLAB_HOME": str(workspace.root)}
    r = subprocess.run([sys.executable, "-m", "scratchlab", "--model", MODEL, "ask", "what have I built?", "--json"],
                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["answer"] == "Nothing built yet."
    (call,) = out["tool_calls"]  # through the server, the call carries its result like a local ask
    assert (call["name"], call["args"], call["result"], call["artifacts"]) == (
        "list_artifacts",
        {},
        "No artifacts yet.",
        [],
    )
    # the same thread continues on the server
    again = client.ask_served(workspace.root, MODEL, "and now?", thread=out["thread"])
    assert again["thread"] == out["thread"]


def test_no_server_for_another_model_or_when_disabled(workspace, served, monkeypatch):
    assert client.find_server(workspace.root, "local:0.5b") is None
    assert client.ask_served(workspace.root, "local:0.5b", "hi") is None
    monkeypatch.setenv(client.NO_SERVER_ENV, "1")
    assert client.find_server(workspace.root, MODEL) is None


def test_stale_serve_file_is_ignored(workspace):
    (workspace.root / SERVE_FILE).write_text(
        json.dumps({"url": "http://127.0.0.1:9", "pid": 1, "model": MODEL})
    )
    assert client.ask_served(workspace.root, MODEL, "hi") is None


def test_server_exits_when_idle_and_forgets_itself(workspace):
    lab = LabSession(home=workspace.root, model=ScriptedChatModel(responses=[AIMessage("hi")]))
    started = []
    t = threading.Thread(target=serve, args=(lab, MODEL), daemon=True,
                         kwargs={"idle_timeout_s": 1.0, "on_ready": started.append})  # fmt: skip
    t.start()
    t.join(timeout=30)
    assert started and not t.is_alive(), "the server stops by itself after the idle timeout"
    assert not (workspace.root / SERVE_FILE).exists()
