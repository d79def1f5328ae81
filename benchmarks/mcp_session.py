"""A real MCP client session with `scratchlab mcp`, recorded message by message (issue 18's closing note).

    .venv/bin/python benchmarks/mcp_session.py             # -> benchmarks/results/mcp_session.md

The official MCP Python SDK's client starts `python -m scratchlab --home <tmp> mcp` over stdio, exactly as
Claude Code, Claude Desktop or Cursor do, and: initializes, lists the tools, trains a 300-token tokenizer
on shakespeare, lists the resources and reads the new tokenizer's artifact resource, then starts a long
`train_gpt` call with a progress callback and cancels it once the job steps (the SDK sends
`notifications/cancelled`); the job must end "cancelled". Every JSON-RPC message on the wire is written
to the transcript (long ones shortened), with the time since the start. Not a timing benchmark: the
times only show the order of events.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from scratchlab.lab.registry import Registry
from scratchlab.lab.workspace import get_workspace

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
MAX_CHARS = 700  # a message longer than this is shortened in the transcript
LONG_GPT = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 4,
            "max_iters": 200_000, "tokenizer": "char", "name": "long-run"}  # fmt: skip
TIMEOUT_S = 600


class Transcript:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        self.lines.append(f"\n**{text}**\n")

    def wire(self, arrow: str, message) -> None:
        data = message.model_dump(by_alias=True, exclude_none=True, mode="json")
        text = json.dumps(data, ensure_ascii=False)
        if len(text) > MAX_CHARS:
            text = text[:MAX_CHARS] + f" … ({len(text):,} chars)"
        self.lines.append(f"`{time.perf_counter() - self.t0:7.2f} s {arrow}` {text}\n")


async def session_run(home: Path, log: Transcript) -> dict:
    env = {"SCRATCHLAB_HOME": str(home), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.update({k: os.environ[k] for k in ("PATH", "HOME", "SCRATCHLAB_CACHE_DIR") if k in os.environ})
    params = StdioServerParameters(command=sys.executable, args=["-m", "scratchlab", "--home", str(home), "mcp"],
                                   env=env, cwd=str(REPO))  # fmt: skip
    out: dict = {}
    async with stdio_client(params) as (read, write), anyio.create_task_group() as pumps:
        to_server_send, to_server_recv = anyio.create_memory_object_stream(100)
        to_client_send, to_client_recv = anyio.create_memory_object_stream(100)

        async def outbound() -> None:
            async for msg in to_server_recv:
                log.wire("client → server", msg.message)
                await write.send(msg)

        async def inbound() -> None:
            async for msg in read:
                if not isinstance(msg, Exception):
                    log.wire("server → client", msg.message)
                await to_client_send.send(msg)

        pumps.start_soon(outbound)
        pumps.start_soon(inbound)
        async with ClientSession(to_client_recv, to_server_send) as session:
            log.note("initialize")
            await session.initialize()
            log.note("list the tools")
            out["tools"] = [t.name for t in (await session.list_tools()).tools]
            log.note("train a 300-token tokenizer on shakespeare")
            res = await session.call_tool("train_tokenizer", {"vocab_size": 300, "dataset": "shakespeare"})
            out["tokenizer"] = res.content[0].text
            log.note("list the resources, read the tokenizer's artifact resource")
            out["resources"] = [str(r.uri) for r in (await session.list_resources()).resources]
            contents = (await session.read_resource("scratchlab://artifacts/tokenizer-1")).contents
            out["resource"] = json.loads(contents[0].text)
            log.note("start a long train_gpt call with progress; cancel it once the job steps")
            progress: list[float] = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)

            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    await session.call_tool("train_gpt", LONG_GPT, progress_callback=on_progress)

                tg.start_soon(call)
                while not any(v > 0 for v in progress):
                    await anyio.sleep(0.2)
                tg.cancel_scope.cancel()
            reg = Registry.from_workspace(get_workspace(home))
            while reg.get_job("job-1").status in ("queued", "running"):
                await anyio.sleep(0.5)
            job = reg.get_job("job-1")
            out["job"] = {"status": job.status, "step": job.step}
            log.note(f"job-1 ended {job.status} at step {job.step}; ping the server (still serving)")
            await session.send_ping()
        pumps.cancel_scope.cancel()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--out", type=Path, default=RESULTS / "mcp_session.md", help="Transcript file (markdown)."
    )
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sl-mcp-")) / "home"
    log = Transcript()
    out = anyio.run(lambda: _bounded(home, log))
    head = [
        "# A real MCP client session with `scratchlab mcp` (stdio)\n",
        f"Recorded by `python benchmarks/mcp_session.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        "the official `mcp` SDK client (`mcp.client.stdio.stdio_client` + `ClientSession`) starts "
        "`python -m scratchlab --home <tmp> mcp` as Claude Code / Cursor do. Every JSON-RPC message on the "
        f"wire follows, shortened past {MAX_CHARS} characters.\n",
        "## Outcome\n",
        f"- tools listed: {len(out['tools'])} ({', '.join(out['tools'][:8])}, ...)",
        f"- train_tokenizer: {out['tokenizer'][:200]}",
        f"- resources: {', '.join(out['resources'][:6])}",
        f"- read scratchlab://artifacts/tokenizer-1: kind {out['resource']['kind']}, "
        f"vocab_size {out['resource']['config'].get('vocab_size')}, {len(out['resource']['files'])} files",
        f"- long train_gpt call cancelled by the client: job-1 ended **{out['job']['status']}** at step "
        f"{out['job']['step']} of {LONG_GPT['max_iters']:,}\n",
        "## Wire transcript\n",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("\n".join(head) + "\n" + "\n".join(log.lines))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


async def _bounded(home: Path, log: Transcript) -> dict:
    with anyio.fail_after(TIMEOUT_S):
        return await session_run(home, log)


if __name__ == "__main__":
    main()
