"""Shared CLI plumbing: the global options (`--home`), JSON output, and error exits.

Every sub-command gets its workspace and registry through `cli_context()`, prints machine-readable
output with `emit_json`, and reports user errors with `fail` (exit code 2, message on stderr).
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

from scratchlab.lab.registry import Registry
from scratchlab.lab.workspace import Workspace, get_workspace

console = Console()
err_console = Console(stderr=True)

_state: dict[str, Any] = {"home": None}


def set_home(home: str | None) -> None:
    _state["home"] = home


def workspace() -> Workspace:
    return get_workspace(_state["home"])


def registry() -> Registry:
    return Registry.from_workspace(workspace())


def tool_context(**kw: Any):
    """A `ToolContext` for the CLI's workspace (confirmations on by default)."""
    from scratchlab.tools.base import ToolContext

    return ToolContext.create(workspace(), **kw)


def emit_json(obj: Any) -> None:
    """Print `obj` as JSON on stdout (paths and other objects via str)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a user-facing error on stderr and exit with `code`."""
    import typer

    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
