"""`scratchlab mcp` through the official MCP Python SDK's own client, over stdio.

The server is started as a real subprocess (`python -m scratchlab --home <tmp> mcp`), exactly as Claude
Code or Cursor start it; the test lists the tools, trains a tiny tokenizer, reads the artifact resource
and the prompt, and cancels a long training call (its job must end "cancelled").
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp")

from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from scratchlab.lab.registry import Registry  # noqa: E402
from scratchlab.lab.workspace import get_workspace  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120  # the server imports torch and the engines; the CI machine may be busy
CALL_TIMEOUT_S = 180


def _params(home: Path) -> StdioServerParameters:
    env = {"SCRATCHLAB_HOME": str(home), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    for key in ("SCRATCHLAB_CACHE_DIR", "PATH", "HOME"):
        if key in os.environ:
            env[key] = os.environ[key]
    return StdioServerParameters(command=sys.executable, args=["-m", "scratchlab", "--home", str(home), "mcp"],
                                 env=env, cwd=str(REPO))  # fmt: skip


async def _session_run(home: Path, body) -> None:
    with anyio.fail_after(START_TIMEOUT_S + CALL_TIMEOUT_S):
        async with stdio_client(_params(home)) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await body(session)


def test_tools_tokenizer_resource_prompt(tmp_path):
    home = tmp_path / "home"

    async def body(session: ClientSession) -> None:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        expected = {"train_tokenizer", "train_gpt", "list_artifacts", "run_python", "search_documents"}
        assert expected <= set(tools)
        schema = tools["train_tokenizer"].input_schema
        assert schema["properties"]["vocab_size"]["type"] == "integer"
        assert "256 bytes + merges" in schema["properties"]["vocab_size"]["description"]
        assert tools["list_runs"].annotations.read_only_hint is True
        assert tools["train_gpt"].annotations.read_only_hint is False

        result = await session.call_tool("train_tokenizer", {"vocab_size": 300, "dataset": "shakespeare"})
        assert not result.is_error, result.content
        text = result.content[0].text
        assert "tokenizer-1" in text and "vocab_size 300" in text

        bad = await session.call_tool("encode_text", {"text": "hi", "tokenizer": "no-such-tokenizer"})
        assert bad.is_error and "Error" in bad.content[0].text

        uris = [str(r.uri) for r in (await session.list_resources()).resources]
        assert "scratchlab://artifacts/tokenizer-1" in uris
        contents = (await session.read_resource("scratchlab://artifacts/tokenizer-1")).contents
        record = json.loads(contents[0].text)
        assert record["kind"] == "tokenizer" and record["config"]["vocab_size"] == 300
        assert record["files"], "the tokenizer folder's files are listed"

        prompts = (await session.list_prompts()).prompts
        assert [p.name for p in prompts] == ["lab_session"]
        prompt = await session.get_prompt("lab_session", {"goal": "a tiny GPT"})
        prompt_text = prompt.messages[0].content.text
        assert "My goal: a tiny GPT" in prompt_text and "bpe300-shakespeare" in prompt_text

    anyio.run(_session_run, home, body)


def test_plot_resource_is_png(tmp_path):
    """A plot artifact is served as image/png bytes."""
    home = tmp_path / "home"
    ws = get_workspace(home)
    reg = Registry.from_workspace(ws)
    reg.setup()
    png = ws.dir("plots") / "loss.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.plot([3.0, 2.0, 1.5])
    plt.savefig(png)
    plt.close("all")
    art = reg.add_artifact("plot", "loss", png)

    async def body(session: ClientSession) -> None:
        uris = [str(r.uri) for r in (await session.list_resources()).resources]
        assert f"scratchlab://artifacts/{art.id}/plot" in uris
        blob = (await session.read_resource(f"scratchlab://artifacts/{art.id}/plot")).contents[0]
        assert blob.mime_type == "image/png"
        assert base64.b64decode(blob.blob) == png.read_bytes()

    anyio.run(_session_run, home, body)


@pytest.mark.slow
def test_cancel_long_training_stops_its_job(tmp_path):
    """A long train_gpt call reports progress; cancelling the call cancels its background job."""
    home = tmp_path / "home"
    progress: list[tuple[float, float | None, str | None]] = []
    args = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 4,
            "max_iters": 200_000, "tokenizer": "char", "name": "long-run"}  # fmt: skip

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def body(session: ClientSession) -> None:
        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await session.call_tool("train_gpt", args, progress_callback=on_progress)

            tg.start_soon(call)
            with anyio.fail_after(CALL_TIMEOUT_S):
                while not any(v > 0 for v, _, _ in progress):  # the job is running and stepping
                    await anyio.sleep(0.2)
            tg.cancel_scope.cancel()  # the SDK sends notifications/cancelled for the abandoned call
        # the session stays open (as in a real client) while the server stops the job
        reg = Registry.from_workspace(get_workspace(home))
        with anyio.fail_after(60):
            while reg.get_job("job-1").status in ("queued", "running"):
                await anyio.sleep(0.5)
        assert await session.send_ping() is not None  # the server is still serving

    anyio.run(_session_run, home, body)
    assert progress[-1][1] == 200_000 and "job-1" in progress[-1][2]
    job = Registry.from_workspace(get_workspace(home)).get_job("job-1")
    assert job.status == "cancelled", (job.status, job.message, job.error)
    assert 0 < job.step < 200_000


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_streamable_http_on_localhost(tmp_path):
    """`scratchlab mcp --http PORT` serves the same tools on http://127.0.0.1:PORT/mcp."""
    import subprocess

    from mcp.client.streamable_http import streamable_http_client

    home, port = tmp_path / "home", _free_port()
    params = _params(home)
    proc = subprocess.Popen([params.command, *params.args, "--http", str(port)], env={**os.environ, **params.env},
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip

    async def body() -> None:
        url = f"http://127.0.0.1:{port}/mcp"
        with anyio.fail_after(START_TIMEOUT_S):
            while True:  # wait until the server accepts connections
                try:
                    async with await anyio.connect_tcp("127.0.0.1", port):
                        break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read().decode()
                    await anyio.sleep(0.3)
        with anyio.fail_after(CALL_TIMEOUT_S):
            async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                names = {t.name for t in (await session.list_tools()).tools}
                assert "train_tokenizer" in names
                result = await session.call_tool("list_artifacts", {})
                assert result.content[0].text == "No artifacts yet."

    try:
        anyio.run(body)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
