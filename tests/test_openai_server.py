"""`openai:<model>` against llama-cpp-python's own OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = [pytest.mark.model, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("langchain_openai")
    pytest.importorskip("llama_cpp.server.app")
    from scratchlab.models.weights import smollm2_path

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "8192", "--chat_format", "chatml-function-calling"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start")
    yield url
    proc.terminate()
    proc.wait(10)


def test_ask_through_openai_compatible_server(server, tmp_path):
    env = {
        **os.environ,
        "OPENAI_BASE_URL": server,
        "OPENAI_API_KEY": "sk-local",
        "SCRATCHLAB_HOME": str(tmp_path),
    }
    r = subprocess.run([sys.executable, "-m", "scratchlab", "--model", "openai:smollm2", "ask", "hi", "--json"],
                       capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert set(out) == {"answer", "thread", "tool_calls"}
    assert out["answer"] or out["tool_calls"]


def test_graph_with_openai_model_and_a_tool(server):
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    from scratchlab.agent.graph import build_graph

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    model = ChatOpenAI(model="smollm2", base_url=server, api_key="sk-local", temperature=0, max_tokens=64)
    g = build_graph(model=model, tools=[add], system_prompt="You can add numbers with the add tool.")
    out = g.invoke({"messages": [HumanMessage("what is 2 + 3?")]}, {"recursion_limit": 9})
    assert out["messages"][-1].type in ("ai", "tool")
