"""Servers that put the lab where people already work.

- `scratchlab.server.mcp_app`: the lab's tools, artifacts and a "lab session" prompt as an MCP server
  (`scratchlab mcp`, stdio or streamable HTTP), on the official `mcp` Python SDK.
"""
