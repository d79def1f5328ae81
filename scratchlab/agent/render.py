"""How the faces show a turn: tool-call and result panels, the confirmation panel, the status line.

Shared by the REPL (`scratchlab.agent.repl`) and `scratchlab ask`. Untrusted text (tool results, names,
model output) goes into `rich.text.Text`, never into markup strings.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import ToolMessage
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from scratchlab.lab.registry import Job

RESULT_CHARS = 700  # a tool result panel shows at most this many characters
CONFIRM_HIDDEN = ("type", "action", "asked", "config", "changed", "estimated_seconds")
BAR_WIDTH = 12  # characters of the job progress bar in the status line


def short(text: str, n: int = RESULT_CHARS) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n] + " …"


def fmt_seconds(s: float | None) -> str:
    """3725 -> '1h02m', 135 -> '2m15s', 7.2 -> '7s'."""
    if s is None:
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def fmt_args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in args.items())


def tool_call_panel(name: str, args: dict) -> Panel:
    return Panel(Text(f"{name}({fmt_args(args)})", style="cyan"), title="tool call", title_align="left",
                 border_style="cyan", expand=False)  # fmt: skip


def tool_result_panel(msg: ToolMessage) -> Panel:
    content = str(msg.content)
    style = "red" if content.startswith("Error") else "green"
    return Panel(Text(short(content)), title=f"{msg.name} result", title_align="left", border_style=style,
                 expand=False)  # fmt: skip


def confirm_rows(payload: dict[str, Any], request: str | None = None) -> list[tuple[str, str]]:
    """(label, text) rows for a confirmation: what was asked, what differs from the defaults, the estimate."""
    rows = []
    if request:
        rows.append(("you asked", short(" ".join(request.split()), 300)))
    asked = payload.get("asked")
    if isinstance(asked, dict):
        rows.append(("tool call", f"{payload.get('action', '?')}({fmt_args(asked)})"))
    changed = payload.get("changed")
    if isinstance(changed, dict):
        diffs = [f"{k}={json.dumps(d.get('value'), default=str)} (default {json.dumps(d.get('default'), default=str)})"
                 if isinstance(d, dict) else f"{k}={json.dumps(d, default=str)}" for k, d in changed.items()]  # fmt: skip
        rows.append(("differs from defaults", ", ".join(diffs) or "nothing (all defaults)"))
    for k, v in payload.items():
        if k not in CONFIRM_HIDDEN:
            rows.append((k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)))
    if "estimated_seconds" in payload:
        rows.append(("estimate", f"about {fmt_seconds(payload['estimated_seconds'])}"))
    return rows


def confirm_panel(payload: dict[str, Any], request: str | None = None) -> Panel:
    t = Table(box=None, show_header=False, padding=(0, 1))
    t.add_column(style="bold")
    t.add_column()
    for label, text in confirm_rows(payload, request):
        t.add_row(Text(label), Text(text))
    body = Group(t, Text("Nothing starts unless you answer yes.", style="dim"))
    return Panel(body, title=f"confirm {payload.get('action', '')}", title_align="left", border_style="yellow",
                 expand=False)  # fmt: skip


def confirm_summary(payload: dict[str, Any]) -> str:
    """One line for `scratchlab ask`: the action, what differs from the defaults, the estimate."""
    rows = dict(confirm_rows(payload))
    parts = [rows[k] for k in ("tool call", "differs from defaults") if k in rows]
    if "estimate" in rows:
        parts.append(f"estimated {rows['estimate'].removeprefix('about ')}")
    return "; ".join(parts) or str(payload.get("action", "this action"))


def job_status_text(job: Job, elapsed_s: float | None = None) -> str:
    """'job-3 gpt ▕████░░░░▏ 120/2000 · 1m20s left' for the status line."""
    total = job.total or 0
    if total > 0:
        done = min(max(job.step / total, 0.0), 1.0)
        fill = int(round(done * BAR_WIDTH))
        bar = f"▕{'█' * fill}{'░' * (BAR_WIDTH - fill)}▏ {job.step}/{total}"
    else:
        bar = job.status
    eta = ""
    if elapsed_s and job.step > 0 and total > job.step:
        eta = f" · {fmt_seconds(elapsed_s / job.step * (total - job.step))} left"
    return f"{job.id} {job.kind} {bar}{eta}"
