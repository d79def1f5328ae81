"""`scratchlab mcp`: serve the lab to MCP clients (Claude Code, Claude Desktop, Cursor, ...).

    scratchlab mcp                          # stdio (the client starts this command)
    scratchlab --home ~/lab mcp --http 8765 # streamable HTTP at http://127.0.0.1:8765/mcp

The server itself is `scratchlab.server.mcp_app`; client configuration is in the README.
"""

from __future__ import annotations

import typer

from scratchlab.cli import common

LOCALHOST = "127.0.0.1"


def mcp_command(
    http: int = typer.Option(
        None, "--http", help="Serve streamable HTTP on this port instead of stdio (path /mcp)."
    ),
    host: str = typer.Option(
        LOCALHOST, "--host", help="Address for --http; the default keeps the lab on this machine."
    ),
) -> None:
    """Serve the lab's tools, artifacts and a "lab session" prompt over MCP (stdio by default)."""
    from scratchlab.server.mcp_app import build_server

    server = build_server(common.workspace())
    if http is None:
        server.run("stdio")
        return
    if not 0 < http < 65536:
        common.fail(f"--http must be a TCP port (1-65535), got {http}")
    common.err_console.print(f"scratchlab MCP server on http://{host}:{http}/mcp (Ctrl-C stops it)")
    server.run("streamable-http", host=host, port=http)
