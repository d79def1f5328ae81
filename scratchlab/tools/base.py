"""What every scratchlab tool shares: the context it runs in, its error type, and a constructor.

A tool module (`scratchlab/tools/<engine>.py`) defines pydantic argument schemas (their
`Field(description=...)` text is the schema the LLM sees) and `make_tools(ctx) -> list[BaseTool]`
whose functions call an engine and return a short, model-readable string with artifact ids.

Errors: a mistake of the model or user (unknown artifact, bad value, missing file) is raised as
`ToolError` (or an engine's ValueError/LookupError/OSError subclass, which `lab_tool` converts) and
goes back to the model as a tool message saying how to fix it. Anything else is our bug and raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel

from scratchlab.lab.registry import Job, Registry
from scratchlab.lab.workspace import Workspace, get_workspace

BUG_ERRORS = (KeyError, IndexError, AttributeError, TypeError, NameError, AssertionError)
USER_ERRORS = (ValueError, LookupError, OSError)
CONFIRM_YES = {"y", "yes", "ok", "okay", "sure", "go", "confirm", "true", "1", "approve", "approved"}


class ToolError(Exception):
    """A user/model mistake in a tool call. Its message goes back to the model as the tool result."""


@dataclass
class ToolContext:
    """Everything a tool needs: the workspace, the registry, and hooks the face (REPL/CLI) provides.

    Attributes:
        workspace: where artifacts live.
        registry: artifacts, jobs, metrics in lab.db.
        confirm_threshold_s: runs estimated longer than this (seconds) ask the user first.
        auto_confirm: skip confirmations (CLI `--yes`, tests, embedding apps that confirm themselves).
        on_progress: called with a `Job` while a tool waits for a background job (REPL progress bar).
        thread_id: the conversation thread, for per-thread state such as sandbox sessions.
    """

    workspace: Workspace
    registry: Registry
    confirm_threshold_s: float = 120.0
    auto_confirm: bool = False
    on_progress: Callable[[Job], None] | None = None
    thread_id: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, workspace: Workspace | str | None = None, **kw: Any) -> ToolContext:
        ws = workspace if isinstance(workspace, Workspace) else get_workspace(workspace)
        return cls(workspace=ws, registry=Registry.from_workspace(ws), **kw)

    def confirm(self, action: str, details: dict[str, Any]) -> bool:
        """Ask the user to approve a long or destructive action; True when approved.

        Inside a LangGraph run this is a `langgraph.types.interrupt` with payload
        `{"type": "confirm", "action": action, **details}`; the face resumes the graph with
        `Command(resume="yes"|"no")`. The tool body re-runs on resume (LangGraph semantics), so the
        work before `confirm` must be cheap and side-effect free.
        """
        if self.auto_confirm:
            return True
        from langgraph.types import interrupt

        answer = interrupt({"type": "confirm", "action": action, **details})
        if isinstance(answer, bool):
            return answer
        if isinstance(answer, dict):
            answer = answer.get("answer", "")
        return str(answer).strip().lower() in CONFIRM_YES


def lab_tool(name: str, args_schema: type[BaseModel], description: str | None = None):
    """Decorator: turn `fn(args: Schema) -> str` into a LangChain `StructuredTool`.

    The function receives the validated pydantic model. User errors (ToolError and engine
    ValueError/LookupError/OSError subclasses that are not programming errors) are returned to the
    model as "Error: ... " text; other exceptions propagate.
    """

    def wrap(fn: Callable[[BaseModel], str]) -> BaseTool:
        @functools.wraps(fn)
        def run(**kwargs: Any) -> str:
            args = args_schema(**kwargs)
            try:
                return fn(args)
            except ToolError as e:
                return f"Error: {e}"
            except BUG_ERRORS:
                raise
            except USER_ERRORS as e:
                return f"Error: {e}"

        return StructuredTool.from_function(
            func=run,
            name=name,
            description=(description or fn.__doc__ or "").strip(),
            args_schema=args_schema,
        )

    return wrap


# ---- argument normalisation shared by every tool schema ----------------------------------------
_SUFFIX = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


def parse_count(value: Any) -> Any:
    """Normalise shorthand counts: "2k" -> 2000, "1.5k" -> 1500, "1,000" -> 1000, "2e3" -> 2000, "1M" -> 10**6.

    Non-strings and strings that are not counts are returned unchanged (pydantic then validates them).
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        return value
    s = value.strip().lower().replace(",", "").replace("_", "")
    for word in (" steps", " step", " iterations", " iters", " tokens", " merges", " layers", " heads"):
        s = s.removesuffix(word)
    try:
        if s and s[-1] in _SUFFIX:
            return int(round(float(s[:-1]) * _SUFFIX[s[-1]]))
        f = float(s)
        return int(f) if f.is_integer() else value
    except ValueError:
        return value


def _count_validator():
    from pydantic import BeforeValidator

    return BeforeValidator(parse_count)


from typing import Annotated  # noqa: E402

Count = Annotated[int, _count_validator()]
"""An int tool argument that also accepts "2k", "1,000", "2e3" (see `parse_count`)."""
