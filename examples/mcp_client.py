"""A real MCP client session against `scratchlab mcp`, with the official SDK's stdio client.

    python examples/mcp_client.py --home /tmp/mcp-lab

It starts the server the way Claude Code or Cursor do (a subprocess speaking JSON-RPC on stdio), lists
the tools, trains a 300-token tokenizer, reads the new artifact's resource, and prints each step.
"""

from __future__ import annotations

import argparse
import json
import sys

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def session(home: str) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "scratchlab", "--home", home, "mcp"])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
        init = await s.initialize()
        print(f"> initialize\n< {init.server_info.name}, protocol {init.protocol_version}")
        tools = (await s.list_tools()).tools
        print(f"> tools/list\n< {len(tools)} tools: {', '.join(t.name for t in tools)}")
        args = {"vocab_size": 300, "dataset": "shakespeare"}
        result = await s.call_tool("train_tokenizer", args)
        print(f"> tools/call train_tokenizer {json.dumps(args)}\n< {result.content[0].text}")
        resources = (await s.list_resources()).resources
        print(f"> resources/list\n< {', '.join(str(r.uri) for r in resources)}")
        uri = str(resources[0].uri)
        record = json.loads((await s.read_resource(uri)).contents[0].text)
        print(f"> resources/read {uri}\n< kind={record['kind']} name={record['name']} "
              f"config.vocab_size={record['config'].get('vocab_size')} files={record['files'][:3]}")  # fmt: skip
        prompt = await s.get_prompt("lab_session", {"goal": "a 2-layer GPT on shakespeare"})
        print(f"> prompts/get lab_session\n< {prompt.messages[0].content.text.splitlines()[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="Workspace folder for the server (made if missing).")
    anyio.run(session, parser.parse_args().home)


if __name__ == "__main__":
    main()
