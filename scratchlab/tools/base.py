"""What every scratchlab tool shares: the context it runs in, its error type, and a constructor.

A tool module (`scratchlab/tools/<engine>.py`) defines pydantic argument schemas (their
`Field(description=...)` text is the schema the LLM sees) and `make_tools(ctx) -> list[BaseTool]`
whose functions call an engine and return a short, model-readable string with artifact ids.

Errors: a mistake of the model or user (unknown artifact, bad value, missing file) is raised as
`ToolError` (or an engine's ValueError/LookupError/OSError subclass, which `lab_tool` converts) and
goes back to the model as a tool message saying how to fix it. Anything else is our bug and raises.

Confirmation: `ToolContext.confirm` asks the user (a LangGraph interrupt) before a long action. Any
answer outside `CONFIRM_YES` (also Ctrl-C or EOF at the prompt, which the faces send as "no") raises
`Declined`, which `lab_tool` turns into the tool result "cancelled by the user: ..." before anything
starts; the graph then ends the turn. A job wait that the user leaves (Ctrl-C) returns "left running in
the background as job-N" (`scratchlab.lab.jobs.JobLeftRunning`), so every tool call gets a result.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.tools import BaseTool, StructuredTool
from langgraph.types import interrupt
from pydantic import BaseModel, BeforeValidator

from scratchlab.lab.jobs import JobLeftRunning
from scratchlab.lab.registry import Job, Registry
from scratchlab.lab.workspace import Workspace, get_workspace

BUG_ERRORS = (KeyError, IndexError, AttributeError, TypeError, NameError, AssertionError)
USER_ERRORS = (ValueError, LookupError, OSError)
CONFIRM_YES = {"y", "yes", "ok", "okay", "sure", "go", "confirm", "true", "1", "approve", "approved"}
CANCELLED_RESULT = "cancelled by the user"  # every declined action's tool result starts with this
DECLINED_TEMPLATE = CANCELLED_RESULT + ": {action} was not started (nothing ran)."
LEFT_RUNNING_TEMPLATE = (
    "left running in the background as {job} ({status}, step {step}/{total}); the user stopped waiting. "
    "Check it with job_status('{job}') or stop it with cancel_job('{job}')."
)
NO_ONE_TO_ASK = (
    "{action} needs the user's confirmation (estimated {est}) but runs outside the agent graph; "
    "confirm it up front (`--yes` on the command line, auto_confirm=True in code)"
)

_CALL_ARGS: ContextVar[dict[str, Any] | None] = ContextVar("scratchlab_tool_call_args", default=None)


class ToolError(Exception):
    """A user/model mistake in a tool call. Its message goes back to the model as the tool result."""


class Declined(ToolError):
    """The user did not approve an action at the confirmation; nothing was started.

    Attributes:
        action: the tool or action that was declined ("train_gpt").
    """

    def __init__(self, action: str):
        super().__init__(DECLINED_TEMPLATE.format(action=action))
        self.action = action


def is_yes(answer: Any) -> bool:
    """True only for an explicit approval: True, {"answer": "yes"}, or a word in `CONFIRM_YES`."""
    if isinstance(answer, bool):
        return answer
    if isinstance(answer, dict):
        answer = answer.get("answer", "")
    return isinstance(answer, str | int) and str(answer).strip().lower() in CONFIRM_YES


def _resume_pending() -> bool:
    """True when this tool call is being re-run to deliver the user's answer to a confirmation.

    LangGraph re-runs the whole tool on resume; a threshold decided on a re-measured estimate could
    then skip `interrupt()` and start the action whatever the user answered. This peeks (without
    consuming) at the resume values LangGraph holds for the running task.
    """
    try:  # lazy: private LangGraph names; a version without them has no resume to detect (ImportError)
        from langgraph._internal._constants import CONFIG_KEY_SCRATCHPAD
        from langgraph.config import get_config

        scratchpad = get_config()["configurable"][CONFIG_KEY_SCRATCHPAD]
        return bool(scratchpad.resume) or scratchpad.get_null_resume(False) is not None
    except (ImportError, RuntimeError, KeyError, AttributeError):
        return False


def _changed(config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The entries of `config` that differ from `defaults`: {key: {"default": d, "value": v}}, as
    `scratchlab.training.settings.diff_from_defaults` gives them (keys with no default are left out)."""
    return {
        k: {"default": defaults[k], "value": v}
        for k, v in config.items()
        if k in defaults and defaults[k] != v
    }


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

    def confirm(
        self,
        action: str,
        details: dict[str, Any],
        *,
        estimate_s: float | None = None,
        defaults: dict[str, Any] | None = None,
    ) -> bool:
        """Ask the user to approve a long or destructive action. Returns True when approved.

        Inside a LangGraph run this is a `langgraph.types.interrupt` with payload
        `{"type": "confirm", "action": action, "asked": <the tool call's arguments>, **details}`, where
        `details["changed"]` (or, given `defaults`, this method) says what differs from the defaults
        as {key: {"default", "value"}}; the face resumes
        the graph with `Command(resume="yes"|"no")`. The tool body re-runs on resume (LangGraph
        semantics), so the work before `confirm` must be cheap and side-effect free.

        Args:
            action: what is asked for (the tool name).
            details: shown to the user; JSON-serialisable.
            estimate_s: the estimated run time in seconds; at most `confirm_threshold_s` runs without
                asking. A resumed call always takes the user's answer, even if its re-measured
                estimate now falls under the threshold.
            defaults: the defaults `details["config"]` is compared with for "changed" (when the
                details do not say it themselves).

        Raises:
            Declined: any answer but an explicit yes (see `is_yes`); nothing may be started.
            ToolError: confirmation is needed outside a graph run, where there is no one to ask.
        """
        if self.auto_confirm:
            return True
        if estimate_s is not None and estimate_s <= self.confirm_threshold_s and not _resume_pending():
            return True
        payload: dict[str, Any] = {"type": "confirm", "action": action}
        asked = _CALL_ARGS.get()
        if asked is not None:
            payload["asked"] = asked
        payload.update(details)
        if defaults is not None and "changed" not in details and isinstance(details.get("config"), dict):
            payload["changed"] = _changed(details["config"], defaults)
        try:
            answer = interrupt(payload)
        except RuntimeError as e:  # "Called get_config outside of a runnable context"
            est = f"{estimate_s:.0f}s" if estimate_s is not None else "long"
            raise ToolError(NO_ONE_TO_ASK.format(action=action, est=est)) from e
        if not is_yes(answer):
            raise Declined(action)
        return True


def validation_message(error: Exception) -> str:
    """An argument the schema rejects, as the "Error: ..." text every tool error is: one line per bad
    argument, its path and pydantic's reason ("Error: switches.0: unknown ablation switch 'wings'; ...")."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return f"Error: {error}"
    lines = []
    for e in errors():
        where = ".".join(str(p) for p in e.get("loc", ())) or "arguments"
        lines.append(f"{where}: {str(e.get('msg', '')).removeprefix('Value error, ')}")
    return "Error: " + "\n".join(lines)


def lab_tool(name: str, args_schema: type[BaseModel], description: str | None = None):
    """Decorator: turn `fn(args: Schema) -> str` into a LangChain `StructuredTool`.

    The function receives the validated pydantic model. User errors (ToolError and engine
    ValueError/LookupError/OSError subclasses that are not programming errors) are returned to the
    model as "Error: ... " text; a declined confirmation as "cancelled by the user: ..."; a job wait
    the user left as "left running in the background as job-N ..."; other exceptions propagate.
    """

    def wrap(fn: Callable[[BaseModel], str]) -> BaseTool:
        @functools.wraps(fn)
        def run(**kwargs: Any) -> str:
            args = args_schema(**kwargs)
            try:
                with _call_args(args):
                    return fn(args)
            except Declined as e:
                return str(e)
            except JobLeftRunning as e:
                j = e.job
                return LEFT_RUNNING_TEMPLATE.format(job=j.id, status=j.status, step=j.step, total=j.total)
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
            handle_validation_error=validation_message,
        )

    return wrap


@contextlib.contextmanager
def _call_args(args: BaseModel) -> Iterator[None]:
    """Make what the tool call asked for (its arguments that differ from the schema's defaults)
    visible to `ToolContext.confirm` ("asked")."""
    asked = {}
    for k, f in type(args).model_fields.items():
        v = getattr(args, k)
        if f.is_required() or v != f.get_default(call_default_factory=True):
            asked[k] = v
    reset = _CALL_ARGS.set(asked)
    try:
        yield
    finally:
        _CALL_ARGS.reset(reset)


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


Count = Annotated[int, BeforeValidator(parse_count)]
"""An int tool argument that also accepts "2k", "1,000", "2e3" (see `parse_count`)."""
