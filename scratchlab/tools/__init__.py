"""LangChain tools over the scratchlab engines, usable by any agent.

    from scratchlab.tools import all_tools
    tools = all_tools(workspace="~/my-lab")      # list[BaseTool]

Each module adapts one engine: `core` (memory, artifacts), `tokenizer`, `gpt`, `rag`, `lora`, `sandbox`, `board`,
`sweep`, `tune`.
"""

from __future__ import annotations

import importlib
from typing import Any

from langchain_core.tools import BaseTool

from scratchlab.tools.base import ToolContext, ToolError, lab_tool

TOOL_MODULES = ("core", "tokenizer", "gpt", "rag", "lora", "sandbox", "board", "sweep", "tune")

__all__ = ["TOOL_MODULES", "ToolContext", "ToolError", "all_tools", "lab_tool"]


def all_tools(workspace: Any = None, ctx: ToolContext | None = None, **ctx_options: Any) -> list[BaseTool]:
    """All scratchlab tools bound to one workspace.

    Args:
        workspace: a `Workspace`, a folder path, or None for the default workspace.
        ctx: an existing `ToolContext` (overrides `workspace`).
        **ctx_options: `ToolContext` fields such as `auto_confirm=True` or `confirm_threshold_s=60`.

    Returns:
        The tools, in catalogue order.
    """
    ctx = ctx or ToolContext.create(workspace, **ctx_options)
    tools: list[BaseTool] = []
    for name in TOOL_MODULES:
        mod = importlib.import_module(f"scratchlab.tools.{name}")
        tools.extend(mod.make_tools(ctx))
    return tools
