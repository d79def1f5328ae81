"""Shared CLI plumbing: the global options (`--home`), JSON output, error exits, and untrusted text.

Every sub-command gets its workspace and registry through `cli_context()`, prints machine-readable
output with `emit_json`, and reports user errors with `fail` (exit code 2, message on stderr). A
command that waited for a job exits with `exit_for(job.status)`: 0 done, 1 failed, 130 cancelled.

Untrusted text (artifact names, paths, thread titles, memories, job messages, model output) is never
printed as rich markup: `safe(value)` makes a `rich.text.Text` of it, with control characters shown
escaped (ESC as `\x1b`, a newline as `\n`), and every listing (`artifacts`, `threads`, `memory`,
`jobs list`, `tokenizer list`, `gpt list`, `rag list`, `lora list`, and the REPL's `/artifacts`,
`/threads`, `/memory`, `/jobs`) builds its rows with `safe_table` / the `*_table` helpers below.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from scratchlab.lab.workspace import Workspace, get_workspace

if TYPE_CHECKING:
    from scratchlab.lab.registry import Registry

console = Console()
err_console = Console(stderr=True)

_state: dict[str, Any] = {"home": None}


def set_home(home: str | None) -> None:
    _state["home"] = home


def workspace() -> Workspace:
    return get_workspace(_state["home"])


def registry() -> Registry:
    """The workspace's registry, set up; exits with the diagnosis if lab.db cannot be used."""
    # lazy: SQLAlchemy takes ~0.4 s to import, and `ask` through a running server never needs it
    from scratchlab.lab.registry import LabDatabaseError, Registry

    try:
        reg = Registry.from_workspace(workspace())
        reg.setup()
    except LabDatabaseError as e:
        fail(str(e))
    return reg


def tool_context(**kw: Any):
    """A `ToolContext` for the CLI's workspace (confirmations on by default)."""
    from scratchlab.tools.base import ToolContext

    registry()  # fail early, with the diagnosis, if lab.db cannot be used
    return ToolContext.create(workspace(), **kw)


def emit_json(obj: Any) -> None:
    """Print `obj` as JSON on stdout (paths and other objects via str)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


EXIT_CODES = {"failed": 1, "cancelled": 130}  # a job's end -> the command's exit status (130: like Ctrl-C)


def exit_for(status: str | None) -> None:
    """Exit non-zero when the job or action the command waited for did not finish: 1 if it failed,
    130 if it was cancelled (Ctrl-C). Returns for "done" and other statuses."""
    import typer

    code = EXIT_CODES.get(status or "")
    if code:
        raise typer.Exit(code)


def print_error(message: str) -> None:
    """Print "error: <message>" on stderr (the message as plain text)."""
    err_console.print(Text("error: ", style="bold red") + safe(message, keep_newlines=True), highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a user-facing error on stderr and exit with `code`."""
    import typer

    print_error(message)
    raise typer.Exit(code)


# ---- untrusted text ---------------------------------------------------------------------------------
# C0 and C1 controls, DEL, and the bidi embedding/override/isolate marks (which reorder what follows)
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(value: Any, keep_newlines: bool = False) -> str:
    """`str(value)` with control characters written as escapes (`\\x1b`, `\\n`, `\\u202e`).

    `keep_newlines` keeps "\\n" as a line break (multi-line messages); other controls are escaped.
    """

    def esc(m: re.Match) -> str:
        ch = m.group()
        if keep_newlines and ch == "\n":
            return ch
        if ch in SHORT_ESCAPES:
            return SHORT_ESCAPES[ch]
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    return CONTROL_RE.sub(esc, "" if value is None else str(value))


def safe(value: Any, style: str = "", keep_newlines: bool = False) -> Text:
    """Untrusted text as a rich `Text`: printed literally (no markup, no emoji codes), controls escaped."""
    return Text(escape_controls(value, keep_newlines), style=style)


def safe_table(*headers: str, rows: Iterable[Iterable[Any]], styles: dict[int, str] | None = None,
               **table_kw: Any) -> Table:  # fmt: skip
    """A rich Table whose every cell is `safe(cell)`; `styles` maps a column index to a style."""
    styles = styles or {}
    table = Table(*headers, **table_kw)
    for row in rows:
        table.add_row(*(safe(cell, styles.get(i, "")) for i, cell in enumerate(row)))
    return table


def artifacts_table(arts, **table_kw: Any) -> Table:
    """id, kind, name, path of each artifact (the `artifacts` command and the REPL's /artifacts)."""
    return safe_table("id", "kind", "name", "path", rows=((a.id, a.kind, a.name, a.path) for a in arts),
                      styles={0: "cyan"}, **table_kw)  # fmt: skip


def threads_table(rows, current: str | None = None, **table_kw: Any) -> Table:
    """thread, first message, last used of `(thread_id, title, updated_at)` rows; `current` is starred."""
    shown = (
        (("* " if t == current else "") + t, title[:70], f"{when:%Y-%m-%d %H:%M}") for t, title, when in rows
    )
    return safe_table("thread", "first message", "last used", rows=shown, styles={0: "cyan"}, **table_kw)


def memory_table(items, **table_kw: Any) -> Table:
    """key, fact of remembered `(key, fact)` pairs (`memory` and the REPL's /memory)."""
    return safe_table("key", "fact", rows=items, styles={0: "bold"}, **table_kw)


def jobs_table(jobs, **table_kw: Any) -> Table:
    """job, kind, status, progress, artifact, message of each job (`jobs list` and the REPL's /jobs)."""
    rows = ((j.id, j.kind, j.status, f"{j.step}/{j.total}", j.artifact_id or "", (j.error or j.message)[:70])
            for j in jobs)  # fmt: skip
    return safe_table("job", "kind", "status", "progress", "artifact", "message", rows=rows, **table_kw)


def watch_job(ctx, job, label: str, as_json: bool):
    """Wait for `job` with a rich progress bar (stderr when --json); Ctrl-C cancels it cleanly."""
    from scratchlab.lab.jobs import cancel_job, wait_for_job  # lazy: the registry (SQLAlchemy) costs ~0.4 s

    out = err_console if as_json else console
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=out, transient=as_json) as progress:  # fmt: skip
        task = progress.add_task("starting", total=max(1, job.total))

        def show(j):
            progress.update(task, completed=j.step, total=max(1, j.total), description=j.message or j.status)

        try:
            return wait_for_job(ctx.registry, job.id, on_progress=show, poll_s=0.5)
        except KeyboardInterrupt:
            progress.update(task, description="cancelling (saving a checkpoint)...")
            return cancel_job(ctx.registry, job.id)
