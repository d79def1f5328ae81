"""scratchlab as an MCP server: the lab's tools, its artifacts as resources, and a "lab session" prompt.

    scratchlab mcp                      # stdio: what Claude Code, Claude Desktop and Cursor start
    scratchlab mcp --http 8765          # streamable HTTP on http://127.0.0.1:8765/mcp

    from scratchlab.server.mcp_app import build_server
    build_server("~/lab").run("stdio")

Built on the official `mcp` Python SDK (v2's `MCPServer`, which was FastMCP in v1). What it maps:
- Tools: every tool of `scratchlab.tools.all_tools`, with its pydantic argument model as the MCP input
  schema (the same schema the lab's own agent sees) and `readOnlyHint` on the read-only ones. A result
  that starts with "Error:" (a mistake the caller can fix) comes back with `isError` set.
- Progress: a tool that waits for a background job (train_gpt, resume_gpt, ablate_gpt, finetune_lora)
  sends `notifications/progress` (job step / total and its message) when the client gave a progress token.
- Cancellation: `notifications/cancelled` ends the call at once and cancels the job it started (SIGTERM:
  the trainer saves a checkpoint and records "cancelled"). A short in-process tool (tokenizer training,
  indexing) cannot be interrupted: its result is dropped but its artifact is still registered.
- Confirmations: tools run with `auto_confirm`: an MCP client asks its user before every tool call
  (Claude Code, Claude Desktop and Cursor do), and that approval is the confirmation.
- Resources: `scratchlab://artifacts/<id>` for every artifact (JSON: kind, name, path, config, metrics,
  files), and `scratchlab://artifacts/<id>/plot` (image/png) for plots and for runs with a loss plot.
- Prompt: `lab_session` ("Lab session"), the lab's rules and current state to start a conversation.

Tools run in worker threads (the engines are synchronous); the lab's registry is SQLite in WAL mode, so
the REPL, jobs and this server can use one workspace at the same time.
Reference: the MCP specification (tools, resources, prompts, progress, cancellation), 2025-11-25.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
from langchain_core.tools import BaseTool
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from mcp_types import Resource as MCPResource
from mcp_types import ResourceTemplate as MCPResourceTemplate

from scratchlab.lab.jobs import ACTIVE, cancel_job
from scratchlab.lab.registry import Artifact, ArtifactNotFound, Job
from scratchlab.tools.base import ToolContext

SERVER_NAME = "scratchlab"
URI_PREFIX = "scratchlab://artifacts/"
PLOT_SUFFIX = "/plot"
PROGRESS_POLL_S = 0.5  # how often a waiting call looks for new job progress (seconds)
CANCEL_WAIT_S = 45.0  # longest a cancelled call waits for its job to stop (seconds)
MAX_RESOURCES = 200  # artifacts listed as resources, newest first
MAX_FILES_LISTED = 40  # files of an artifact folder shown in its JSON
MAX_STATE_ARTIFACTS = 40  # artifacts the lab_session prompt looks at, newest first
MAX_STATE_PER_KIND = 4
# tools that change nothing in the lab (MCP `readOnlyHint`; clients may run them without asking)
READ_ONLY_TOOLS = frozenset({
    "list_runs", "list_artifacts", "job_status", "search_documents", "encode_text", "decode_tokens",
    "compare_tokenizers", "recall", "sample_gpt", "generate_with_adapter", "sweep_status",
})  # fmt: skip
INSTRUCTIONS = (
    "scratchlab builds language models from scratch on this machine: BPE tokenizers, small GPTs, "
    "RAG indexes, LoRA adapters, and a sandboxed Python runner. Every tool returns a short result with "
    "artifact ids (tokenizer-1, run-2, ...); read scratchlab://artifacts/<id> for an artifact's config, "
    "metrics and files, and scratchlab://artifacts/<id>/plot for a run's loss curve. Long trainings report "
    "progress and stop cleanly (checkpoint kept) when the call is cancelled."
)
LAB_SESSION_TEXT = """You are working in scratchlab, a lab for building language models from scratch.
Use its tools for the work: train_tokenizer, train_gpt, sample_gpt, ablate_gpt, index_documents,
search_documents, finetune_lora, run_python (sandboxed; `from lab import runs, curve, plot_runs`).
Refer to artifacts by the ids the tools return; list them with list_artifacts. Keep runs small unless I
ask otherwise (CPU by default), and report the numbers the tools give (val loss, tokens/s) as they are.
{goal}
{state}"""

# The progress sink of the tool call running in the current worker thread (set by `_run_in_thread`).
_SINK: contextvars.ContextVar[Callable[[Job], None] | None] = contextvars.ContextVar("mcp_sink", default=None)


def _on_progress(job: Job) -> None:
    """`ToolContext.on_progress`: hand the job to the call that is waiting for it."""
    sink = _SINK.get()
    if sink is not None:
        sink(job)


class _CallState:
    """What one tool call's worker thread shares with its async handler."""

    def __init__(self, lab: ToolContext):
        self.lab = lab
        self.job: Job | None = None  # the latest snapshot of the job this call waits for
        self.cancelled = False

    def seen(self, job: Job) -> None:
        """Called from the worker thread at every poll of `wait_for_job`."""
        self.job = job
        if self.cancelled and job.status in ACTIVE:  # cancelled before the job existed: stop it now
            cancel_job(self.lab.registry, job.id)


def _tool_result(text: str) -> CallToolResult:
    is_error = text.lstrip().startswith("Error:")
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=is_error)


async def _report_progress(ctx: Context, state: _CallState) -> None:
    """Forward job progress to the client until cancelled (by the call finishing)."""
    last = None
    while True:
        await anyio.sleep(PROGRESS_POLL_S)
        job = state.job
        if job is None:
            continue
        key = (job.id, job.step, job.total, job.message)
        if key != last:
            last = key
            message = f"{job.id} {job.status}: step {job.step}/{job.total}" + (
                f"; {job.message}" if job.message else ""
            )
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):  # client gone
                await ctx.report_progress(job.step, job.total or None, message)


async def _call_lab_tool(tool: BaseTool, lab: ToolContext, arguments: dict[str, Any], ctx: Context):
    """Run one lab tool in a worker thread, forwarding progress and honouring cancellation."""
    state = _CallState(lab)

    def work() -> str:
        token = _SINK.set(state.seen)  # worker threads are reused: reset on the way out
        try:
            return str(tool.invoke(arguments))
        finally:
            _SINK.reset(token)

    outcome: dict[str, Any] = {}
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_report_progress, ctx, state)
            try:
                outcome["text"] = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
            except Exception as e:  # noqa: BLE001 - re-raised below, unwrapped from the task group's group
                outcome["error"] = e
            tg.cancel_scope.cancel()
    except anyio.get_cancelled_exc_class():
        state.cancelled = True
        job = state.job
        if job is not None and job.status in ACTIVE:
            with anyio.move_on_after(CANCEL_WAIT_S, shield=True):
                await anyio.to_thread.run_sync(cancel_job, lab.registry, job.id)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return _tool_result(outcome["text"])


def mcp_tool(tool: BaseTool, lab: ToolContext) -> Tool:
    """An MCP tool for a lab tool: same name, description and pydantic argument schema.

    Args:
        tool: a LangChain tool from `scratchlab.tools` (its `args_schema` is a pydantic model).
        lab: the context the tool was made with (for cancelling the jobs it starts).

    Returns:
        An `mcp` `Tool` whose arguments the SDK validates with the tool's own schema.
    """
    schema = tool.args_schema
    arg_model = type(f"{schema.__name__}MCP", (schema, ArgModelBase), {"__module__": __name__})

    async def call(ctx: Context, **arguments: Any) -> CallToolResult:
        return await _call_lab_tool(tool, lab, arguments, ctx)

    read_only = tool.name in READ_ONLY_TOOLS
    return Tool(
        fn=call,
        name=tool.name,
        title=tool.name.replace("_", " ").capitalize(),
        description=tool.description,
        parameters=schema.model_json_schema(),
        fn_metadata=FuncMetadata(arg_model=arg_model),
        is_async=True,
        context_kwarg="ctx",
        annotations=ToolAnnotations(read_only_hint=read_only, destructive_hint=False, open_world_hint=False),
    )


def _plot_path(a: Artifact) -> Path | None:
    """The PNG that shows an artifact: the file of a plot artifact, or a run's loss plot."""
    candidates = [a.path] if a.kind == "plot" else []
    candidates += [a.metrics.get("plot"), a.config.get("plot_path")]
    for c in candidates:
        if isinstance(c, str) and c.lower().endswith(".png") and Path(c).is_file():
            return Path(c)
    return None


def artifact_json(a: Artifact) -> str:
    """An artifact's record as JSON text, with the files in its folder (at most MAX_FILES_LISTED)."""
    path = Path(a.path) if a.path else None
    files: list[str] = []
    if path is not None and path.is_dir():
        files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())[:MAX_FILES_LISTED]
    record = {"id": a.id, "kind": a.kind, "name": a.name, "path": a.path, "parent": a.parent,
              "created_at": a.created_at.isoformat() if a.created_at else None,
              "config": a.config, "metrics": a.metrics, "files": files}  # fmt: skip
    plot = _plot_path(a)
    if plot is not None:
        record["plot_uri"] = f"{URI_PREFIX}{a.id}{PLOT_SUFFIX}"
    return json.dumps(record, indent=2, default=str)


class LabMCPServer(MCPServer):
    """An `MCPServer` whose resources are the lab's artifacts, read live from the registry."""

    def __init__(self, lab: ToolContext, **kwargs: Any):
        super().__init__(**kwargs)
        self.lab = lab

    async def list_resources(self) -> list[MCPResource]:
        arts = await anyio.to_thread.run_sync(lambda: self.lab.registry.list_artifacts(limit=MAX_RESOURCES))
        out = list(await super().list_resources())
        for a in arts:
            out.append(MCPResource(uri=f"{URI_PREFIX}{a.id}", name=a.id, title=f"{a.kind} {a.name}",
                                   description=f"{a.kind} artifact '{a.name}': config, metrics and files",
                                   mime_type="application/json"))  # fmt: skip
            if _plot_path(a) is not None:
                out.append(MCPResource(uri=f"{URI_PREFIX}{a.id}{PLOT_SUFFIX}", name=f"{a.id}-plot",
                                       title=f"{a.name} plot", mime_type="image/png"))  # fmt: skip
        return out

    async def list_resource_templates(self) -> list[MCPResourceTemplate]:
        return [
            *await super().list_resource_templates(),
            MCPResourceTemplate(uri_template=URI_PREFIX + "{id}", name="artifact", mime_type="application/json",
                                description="A lab artifact by id (tokenizer-1, run-2, index-1, ...)."),
            MCPResourceTemplate(uri_template=URI_PREFIX + "{id}" + PLOT_SUFFIX, name="artifact-plot",
                                mime_type="image/png", description="The PNG of a plot, or a run's loss curve."),
        ]  # fmt: skip

    async def read_resource(self, uri: Any, context: Context | None = None) -> Iterable[ReadResourceContents]:
        uri = str(uri)
        if not uri.startswith(URI_PREFIX):
            return await super().read_resource(uri, context)
        ref = uri.removeprefix(URI_PREFIX)
        want_plot = ref.endswith(PLOT_SUFFIX)
        ref = ref.removesuffix(PLOT_SUFFIX)
        try:
            a = await anyio.to_thread.run_sync(self.lab.registry.get_artifact, ref)
        except ArtifactNotFound as e:
            raise ResourceNotFoundError(f"no artifact {ref!r}: {e}") from e
        if not want_plot:
            return [ReadResourceContents(content=artifact_json(a), mime_type="application/json")]
        plot = _plot_path(a)
        if plot is None:
            raise ResourceNotFoundError(f"artifact {a.id} has no plot; read {URI_PREFIX}{a.id} instead")
        return [ReadResourceContents(content=plot.read_bytes(), mime_type="image/png")]


def lab_state(lab: ToolContext) -> str:
    """What the lab holds now: the newest artifacts of each kind (name and id) and the running jobs."""
    from scratchlab.lab.jobs import list_jobs

    by_kind: dict[str, list[str]] = {}
    for a in lab.registry.list_artifacts(limit=MAX_STATE_ARTIFACTS):
        names = by_kind.setdefault(a.kind, [])
        if len(names) < MAX_STATE_PER_KIND:
            names.append(a.name if a.name == a.id else f"{a.name} ({a.id})")
    lines = [f"- {kind}s (newest first): {', '.join(names)}" for kind, names in by_kind.items()]
    running = [f"{j.id} {j.kind} step {j.step}/{j.total}" for j in list_jobs(lab.registry, limit=5)
               if j.status in ACTIVE]  # fmt: skip
    if running:
        lines.append(f"- running jobs: {'; '.join(running)}")
    return "Lab state:\n" + ("\n".join(lines) if lines else "- empty: nothing built yet")


def lab_session_prompt(lab: ToolContext, goal: str = "") -> str:
    """The "lab session" prompt: how to use the lab, the user's goal, and the lab's current state."""
    return LAB_SESSION_TEXT.format(
        goal=f"My goal: {goal.strip()}" if goal.strip() else "", state=lab_state(lab)
    )


def build_server(workspace: Any = None, *, tools: list[BaseTool] | None = None) -> LabMCPServer:
    """The scratchlab MCP server on one workspace.

    Args:
        workspace: a `Workspace`, a folder, or None for the default workspace.
        tools: tools to expose (default: all scratchlab tools, made with auto-confirm).

    Returns:
        A `LabMCPServer`; call `.run("stdio")` or `.run("streamable-http", host=..., port=...)`.
    """
    from scratchlab.tools import all_tools

    lab = ToolContext.create(workspace, auto_confirm=True, on_progress=_on_progress)
    tools = tools if tools is not None else all_tools(ctx=lab)
    server = LabMCPServer(lab, name=SERVER_NAME, title="scratchlab", instructions=INSTRUCTIONS,
                          tools=[mcp_tool(t, lab) for t in tools], log_level="WARNING")  # fmt: skip

    @server.prompt(name="lab_session", title="Lab session",
                   description="Start a lab session: how to use the lab's tools and what the lab holds now.")  # fmt: skip
    def lab_session(goal: str = "") -> str:
        return lab_session_prompt(lab, goal)

    return server
