"""Servers that put the lab where people already work.

- `scratchlab.server.mcp_app`: the lab's tools, artifacts and a "lab session" prompt as an MCP server
  (`scratchlab mcp`, stdio or streamable HTTP), on the official `mcp` Python SDK.
- `scratchlab.server.ask_server` (+ `turns`, `wire`): `scratchlab serve`, the model kept loaded behind
  FastAPI/uvicorn on 127.0.0.1 for `ask` and REPLs.
- `scratchlab.server.client` (standard library only: what a short `ask` imports) and
  `scratchlab.server.remote` (a REPL whose turns run in the server).
"""
