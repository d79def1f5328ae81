"""scratchlab on the LangGraph Agent Server (`langgraph dev`), driven through `langgraph_sdk`.

The server test starts `langgraph dev` on 127.0.0.1 with a `langgraph.json` like the repo's, whose graph
is scratchlab's real graph and tools with a rule-based fake chat model (`tests/langgraph_app/fake_graph.py`;
the local model is too slow for a test). Through the SDK it creates a thread, asks for a 300-token
tokenizer and gets the tool result, then has a long GPT run ask for confirmation (an interrupt) and
resumes it with "no".
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("langgraph_api")
pytest.importorskip("langgraph_sdk")

REPO = Path(__file__).resolve().parents[1]
FAKE_GRAPH = REPO / "tests" / "langgraph_app" / "fake_graph.py"
START_TIMEOUT_S = 120
RUN_TIMEOUT_S = 180


def test_repo_langgraph_json_points_at_the_studio_factory(monkeypatch, workspace):
    """The repo's langgraph.json names an async factory that builds scratchlab's graph once."""
    import importlib.util

    from scratchlab.agent import llm
    from scratchlab.agent.testing import ScriptedChatModel

    conf = json.loads((REPO / "langgraph.json").read_text())
    path, name = conf["graphs"]["scratchlab"].rsplit(":", 1)
    assert conf["dependencies"] == ["."] and (REPO / path).is_file()
    spec = importlib.util.spec_from_file_location("studio_under_test", REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(llm, "get_chat_model", lambda **kw: ScriptedChatModel(responses=[]))
    g1 = asyncio.run(getattr(module, name)({}))
    g2 = asyncio.run(getattr(module, name)({}))
    assert g1 is g2, "the model is loaded once per server"
    assert {"agent", "tools"} <= set(g1.get_graph().nodes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def agent_server(tmp_path):
    """`langgraph dev` on 127.0.0.1 with the fake-model graph; yields its URL and workspace."""
    langgraph = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which("langgraph")
    if langgraph is None:
        pytest.skip("langgraph-cli is not installed")
    conf = tmp_path / "langgraph.json"
    conf.write_text(
        json.dumps({"dependencies": [str(REPO)], "graphs": {"scratchlab": f"{FAKE_GRAPH}:graph"}})
    )
    home, port = tmp_path / "home", _free_port()
    env = {**os.environ, "SCRATCHLAB_HOME": str(home), "PYTHONPATH": str(REPO),
           "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}  # fmt: skip
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([langgraph, "dev", "--host", "127.0.0.1", "--port", str(port), "--no-browser",
                             "--no-reload", "--config", str(conf)], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "langgraph dev did not start"
                time.sleep(0.5)
        yield url, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.mark.slow
def test_sdk_thread_tool_result_and_resumed_interrupt(agent_server):
    from langgraph_sdk import get_client

    url, home = agent_server

    async def session() -> None:
        client = get_client(url=url)
        thread = await client.threads.create()
        request = {"messages": [{"role": "user", "content": "train a 300-token tokenizer on shakespeare"}]}
        out = await client.runs.wait(thread["thread_id"], "scratchlab", input=request)
        tool = [m for m in out["messages"] if m["type"] == "tool"]
        assert tool and tool[0]["name"] == "train_tokenizer"
        assert "tokenizer-1" in tool[0]["content"] and "vocab_size 300" in tool[0]["content"]
        assert (home / "tokenizers" / "bpe300-shakespeare").is_dir(), "the tool ran on the lab's workspace"

        # a long run asks first: the run stops at an interrupt, resumed through the SDK
        thread = await client.threads.create()
        out = await client.runs.wait(thread["thread_id"], "scratchlab", input={"messages": [
            {"role": "user", "content": "train a big gpt"}]})  # fmt: skip
        state = await client.threads.get_state(thread["thread_id"])
        assert state["next"] == ["tools"]
        (interrupt,) = state["interrupts"]
        assert interrupt["value"]["type"] == "confirm" and interrupt["value"]["action"] == "train_gpt"
        out = await client.runs.wait(thread["thread_id"], "scratchlab", command={"resume": "no"})
        tool = [m for m in out["messages"] if m["type"] == "tool"]
        assert tool[-1]["content"].startswith("cancelled by the user")  # nothing started
        assert (await client.threads.get_state(thread["thread_id"]))["next"] == []

    asyncio.run(asyncio.wait_for(session(), RUN_TIMEOUT_S))
