"""Agent tool `run_python`: run Python in the bubblewrap sandbox, one-shot or in a per-thread session.

The engine is `scratchlab.sandbox`; this module picks the work folder, mounts the lab read-only at
/lab (runs/, plots/ and a CSV export of every run's logged metrics), registers the pictures and files
the code wrote as artifacts, and formats a short result for the model.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from scratchlab.lab.atomic import atomic_write_text
from scratchlab.sandbox import Limits, SandboxUnavailable, new_work_dir, run_code
from scratchlab.sandbox.result import RunResult
from scratchlab.sandbox.session import SessionPool
from scratchlab.sandbox.workdir import thread_work_dir
from scratchlab.tools.base import ToolContext, ToolError, lab_tool

TOOL_LIMITS = Limits()  # defaults: see scratchlab.sandbox.policy
MAX_STDOUT_CHARS = 900
MAX_STDERR_CHARS = 500
MAX_FILES_SHOWN = 6
MAX_FILES_REGISTERED = 10
MAX_RUNS_EXPORTED = 50
POOL_KEY = "sandbox_pool"
LAB_LIB = (
    "/lab/lib"  # scratchlab/tools/sandbox_lib, on sys.path inside: `from lab import runs, curve, plot_runs`
)
# The lab's data as code sees it; shared by the tool description and the local model's code prompt.
LAB_DATA_HELP = (
    "Lab data, read-only: `from lab import runs, curve, plot_runs`. runs() lists the lab's runs newest first, "
    "each {'id', 'name', 'config', 'metrics'}; curve(run, 'val_loss' or 'train_loss') returns (steps, values) "
    "for a run given by id, name, 'last' or a dict from runs(); plot_runs(n) saves loss.png with the train "
    "and val loss of the n newest runs (plot_runs(3, keys='val_loss') for the val loss of the last three; "
    "a list of run ids or names picks other runs). "
    "Files: /lab/metrics/runs.json, /lab/metrics/<run-id>.csv (step,key,value), /lab/runs/<run-id>/ "
    "(checkpoints, config.json), /lab/plots/."
)
READABLE = 0o644  # atomic writes are 0600; the sandbox uid (65534 when we run as root) must read the export

RUN_PYTHON_DESCRIPTION = f"""Run Python code in an isolated sandbox and get its output.
Use it to compute, inspect artifacts and make custom plots (the loss curves of runs: show_curves). numpy, matplotlib (Agg backend; save figures
with plt.savefig('name.png')) and torch are installed. There is NO network and no pip install.
The current folder /sandbox is the only writable place; files saved there are returned and
registered as artifacts (PNG/JPG/SVG as plots), and stay there for this conversation's later runs. {LAB_DATA_HELP}
Limits: {TOOL_LIMITS.timeout_s:g} s wall clock, {TOOL_LIMITS.cpu_s} CPU s, {TOOL_LIMITS.memory_mb} MiB
memory, {TOOL_LIMITS.max_output_bytes} bytes of output kept. Print what you need to see.
session=true keeps one interpreter for this conversation, so variables persist between calls."""


class RunPythonArgs(BaseModel):
    code: str = Field(
        description="Python source to run. Print results; save plots as files in the current folder."
    )
    session: bool | None = Field(
        default=False,
        description="true: run in this conversation's persistent interpreter (variables kept between calls).",
    )


def export_lab(ctx: ToolContext):
    """Write /lab/metrics: runs.json and one CSV of logged metrics per run (newest runs first)."""
    folder = ctx.workspace.dir("sandbox") / ".lab-export"
    folder.mkdir(parents=True, exist_ok=True)
    runs = ctx.registry.list_artifacts("run", limit=MAX_RUNS_EXPORTED)
    summary = []
    for art in runs:
        rows = ctx.registry.metrics(art.id)
        if rows:
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(["step", "key", "value"])
            writer.writerows(rows)
            atomic_write_text(folder / f"{art.id}.csv", buf.getvalue()).chmod(READABLE)
        summary.append({"id": art.id, "name": art.name, "config": art.config, "metrics": art.metrics,
                        "created_at": str(art.created_at), "has_metrics_csv": bool(rows)})  # fmt: skip
    atomic_write_text(folder / "runs.json", json.dumps(summary, indent=1, default=str)).chmod(READABLE)
    return folder


def lab_mounts(ctx: ToolContext) -> dict[str, str]:
    """{dest inside: host path} of the read-only lab view every run gets."""
    ws = ctx.workspace
    return {
        "/lab/runs": str(ws.dir("runs")),
        "/lab/plots": str(ws.dir("plots")),
        "/lab/metrics": str(export_lab(ctx)),
        LAB_LIB: str(Path(__file__).with_name("sandbox_lib")),
    }


def register_files(ctx: ToolContext, result: RunResult, source: str) -> list[str]:
    """Register files the code wrote (pictures as "plot", the rest as "file"); returns lines to show."""
    lines = []
    for i, f in enumerate(result.files):
        path = f"{result.work_dir}/{f.path}"
        if i < MAX_FILES_REGISTERED:
            kind = "plot" if f.image else "file"
            name = f"{result.work_dir.rsplit('/', 1)[-1]}/{f.path}"
            config = {"source": source, "size": f.size}
            old = ctx.registry.find_artifact(name, kind)  # a session rewrote its own file: the same artifact
            art = (
                ctx.registry.update_artifact(old.id, config=config)
                if old
                else ctx.registry.add_artifact(kind, name, path, config=config)
            )
            label = f"{art.id} {f.path} ({f.size} B)"
        else:
            label = f"{f.path} ({f.size} B, not registered)"
        if i < MAX_FILES_SHOWN:
            lines.append(label)
    if len(result.files) > MAX_FILES_SHOWN:
        lines.append(f"... and {len(result.files) - MAX_FILES_SHOWN} more")
    return lines


def _clip(text: str, limit: int, keep_tail: bool = False) -> str:
    text = text.rstrip()
    if len(text) <= limit:
        return text
    if keep_tail:
        return "..." + text[-limit:]
    half = limit // 2
    return f"{text[:half]}\n...[{len(text) - limit} chars cut]...\n{text[-half:]}"


def format_result(result: RunResult, files: list[str], session: bool) -> str:
    """A short, model-readable summary of a run; a failed run starts with "Error:" like other tools'
    failures, so the agent fixes the code instead of counting the step as done."""
    if result.ok:
        head = "ok"
    elif result.killed_by:
        head = f"Error: stopped by the {result.killed_by} limit"
    else:
        head = f"Error: failed (exit code {result.exit_code})"
    parts = [f"{head} in {result.duration_s:.2f}s" + (" [session]" if session else "")]
    if result.stdout.strip():
        parts.append("stdout:\n" + _clip(result.stdout, MAX_STDOUT_CHARS))
    if result.stderr.strip():
        parts.append("stderr:\n" + _clip(result.stderr, MAX_STDERR_CHARS, keep_tail=True))
    if files:
        parts.append("files (artifacts): " + "; ".join(files))
    if not result.stdout.strip() and not result.stderr.strip() and result.ok and not session:
        parts.append("(no output: print() what you want to see)")
    return "\n".join(parts)


def host_paths_to_lab(code: str, mounts: dict[str, str]) -> str:
    """Rewrite this machine's paths of the lab folders in `code` to where the sandbox mounts them.

    Tool results show host paths (a run's loss plot under the workspace); code that copies one would
    fail inside the sandbox, where the same folder is /lab/plots. Longer paths are replaced first.
    """
    for dest, src in sorted(mounts.items(), key=lambda kv: -len(kv[1])):
        code = code.replace(src.rstrip("/"), dest)
    return code


def make_tools(ctx: ToolContext) -> list[BaseTool]:
    @lab_tool("run_python", RunPythonArgs, description=RUN_PYTHON_DESCRIPTION)
    def run_python(args: RunPythonArgs) -> str:
        if not args.code.strip():
            raise ToolError("code is empty; pass the Python source to run")
        mounts = lab_mounts(ctx)
        code = host_paths_to_lab(args.code, mounts)
        try:
            if args.session:
                pool = ctx.extras.get(POOL_KEY)
                if pool is None:
                    pool = SessionPool(ctx.workspace.dir("sandbox"), limits=TOOL_LIMITS, ro_mounts=mounts,
                                       python_path=[LAB_LIB])  # fmt: skip
                    ctx.extras[POOL_KEY] = pool
                result = pool.get(ctx.thread_id or "default").run(code)
            else:  # one conversation's runs share a folder: "plot the numbers you wrote to tri.txt"
                root = ctx.workspace.dir("sandbox")
                work = thread_work_dir(root, ctx.thread_id) if ctx.thread_id else new_work_dir(root)
                result = run_code(code, work, limits=TOOL_LIMITS, ro_mounts=mounts, python_path=[LAB_LIB])
        except SandboxUnavailable as e:
            raise ToolError(f"the sandbox is unavailable on this machine: {e}") from e
        files = register_files(ctx, result, source="run_python")
        return format_result(result, files, bool(args.session))

    return [run_python]
