"""The scratchlab REPL: rich rendering + prompt_toolkit input over a `LabSession`.

    scratchlab                      # new thread on the default local model
    scratchlab --thread t-3f2a9c1d  # resume a thread after a restart

Slash commands are listed in `SLASH_HELP`. Ctrl-C during a turn cancels the turn and keeps the
session; Ctrl-D (or /quit) exits. History lives in the workspace (`history.txt`).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from scratchlab.cli.common import artifacts_table, jobs_table, memory_table, threads_table

SLASH_HELP = {
    "/help": "this help",
    "/tools": "the tools the agent can call",
    "/new": "start a new conversation thread",
    "/threads": "recent threads",
    "/thread ID": "switch to (resume) a thread",
    "/memory": "long-term memory: /memory, /memory add FACT, /memory edit KEY FACT, /memory forget KEY",
    "/model [SPEC]": "show the chat model, or switch (local:0.5b, local:1.5b, path.gguf, openai:NAME)",
    "/jobs [cancel ID]": "background jobs (training, fine-tuning), or cancel one",
    "/artifacts": "what the lab has built",
    "/quit": "exit (or Ctrl-D)",
}
RESULT_CHARS = 700


class JobProgress:
    """Renders `Job` progress callbacks (from the tool thread) as a rich progress bar."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}
        self.lock = threading.Lock()

    def __call__(self, job) -> None:
        with self.lock:
            if self.progress is None:
                self.progress = Progress(
                    TextColumn("[bold]{task.fields[jid]}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TextColumn("{task.fields[msg]}"), TimeRemainingColumn(), console=self.console, transient=False,
                )  # fmt: skip
                self.progress.start()
            if job.id not in self.tasks:
                self.tasks[job.id] = self.progress.add_task("", total=job.total or None, jid=job.id, msg="")
            self.progress.update(
                self.tasks[job.id], completed=job.step, total=job.total or None, msg=job.message[:60]
            )

    def stop(self) -> None:
        with self.lock:
            if self.progress is not None:
                self.progress.stop()
            self.progress, self.tasks = None, {}


def _short(text: str, n: int = RESULT_CHARS) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n] + " …"


def tool_call_panel(name: str, args: dict) -> Panel:
    body = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
    return Panel(
        Text(f"{name}({body})", style="cyan"),
        title="tool call",
        title_align="left",
        border_style="cyan",
        expand=False,
    )


def tool_result_panel(msg: ToolMessage) -> Panel:
    content = str(msg.content)
    style = "red" if content.startswith("Error") else "green"
    return Panel(
        Text(_short(content)),
        title=f"{msg.name} result",
        title_align="left",
        border_style=style,
        expand=False,
    )


class Repl:
    def __init__(
        self, model: str | None = None, thread_id: str | None = None, console: Console | None = None
    ):
        from scratchlab.agent import memory
        from scratchlab.agent.session import LabSession

        self.console = console or Console()
        self.progress = JobProgress(self.console)
        self.lab = LabSession(model=model, on_progress=self.progress)
        self.thread = thread_id or memory.new_thread_id()
        self.model_spec = model

    # ---- output ---------------------------------------------------------------------------------
    def banner(self) -> None:
        from scratchlab import __version__
        from scratchlab.agent.llm import describe

        self.console.print(
            Panel.fit(
                f"[bold]scratchlab {__version__}[/] — a lab for building language models from scratch\n"
                f"model [cyan]{describe(self.model_spec)}[/] · workspace [cyan]{self.lab.workspace.root}[/]\n"
                f"thread [cyan]{self.thread}[/] (resume later with `scratchlab --thread {self.thread}`)\n"
                "Type a request in plain English, /help for commands, Ctrl-D to quit.",
                border_style="magenta",
            )
        )

    def show_history(self, limit: int = 6) -> None:
        msgs = [m for m in self.lab.history(self.thread) if isinstance(m, HumanMessage | AIMessage)]
        for m in msgs[-limit:]:
            if isinstance(m, HumanMessage):
                self.console.print(f"[bold magenta]you>[/] {m.content}")
            elif m.tool_calls:
                for tc in m.tool_calls:
                    self.console.print(tool_call_panel(tc["name"], tc["args"]))
            else:
                self.console.print(Markdown(str(m.content)))

    # ---- one turn -------------------------------------------------------------------------------
    def turn(self, text: str | None, resume: Any = None) -> None:
        buffer = ""
        live: Live | None = None
        try:
            for kind, data in self.lab.stream(text, self.thread, resume=resume):
                if kind == "token":
                    buffer += data
                    if live is None:
                        live = Live(
                            Markdown(buffer),
                            console=self.console,
                            refresh_per_second=12,
                            vertical_overflow="visible",
                        )
                        live.start()
                    live.update(Markdown(buffer))
                    continue
                if live is not None:
                    live.stop()
                    live = None
                if kind == "tool_call":
                    buffer = ""
                    self.console.print(tool_call_panel(data["name"], data["args"]))
                    self.console.print("[dim]working…[/]")
                elif kind == "tool_result":
                    self.progress.stop()
                    self.console.print(tool_result_panel(data))
                elif kind == "message" and not buffer and data.content:
                    self.console.print(Markdown(str(data.content)))
                elif kind == "interrupt":
                    self._confirm(data)
                    return
        except KeyboardInterrupt:
            if live is not None:
                live.stop()
            self.progress.stop()
            self._close_dangling_calls()
            self.console.print(
                "[yellow]turn cancelled[/] (the conversation is kept; background jobs keep running — /jobs)"
            )
            return
        finally:
            if live is not None:
                live.stop()

    def _confirm(self, payload: dict) -> None:
        details = {k: v for k, v in payload.items() if k not in ("type", "action")}
        body = "\n".join(f"{k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in details.items())
        self.console.print(
            Panel(body or "(no details)", title=f"confirm {payload.get('action', '')}", border_style="yellow")
        )
        try:
            answer = self.session.prompt("Proceed? [y/N] ").strip() or "no"
        except (KeyboardInterrupt, EOFError):
            answer = "no"
        self.turn(None, resume=answer)

    def _close_dangling_calls(self) -> None:
        """After Ctrl-C, answer any tool call left without a result so the thread stays valid."""
        msgs = self.lab.history(self.thread)
        if msgs and isinstance(msgs[-1], AIMessage) and msgs[-1].tool_calls:
            results = [
                ToolMessage("Cancelled by the user.", tool_call_id=tc["id"], name=tc["name"])
                for tc in msgs[-1].tool_calls
            ]
            self.lab.graph.update_state(self.lab.config(self.thread), {"messages": results}, as_node="tools")

    # ---- slash commands -------------------------------------------------------------------------
    def command(self, line: str) -> bool:
        """Run a slash command; returns False to quit."""
        from scratchlab.agent import memory

        cmd, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if cmd in ("/quit", "/exit", "/q"):
            return False
        if cmd == "/tools":
            t = Table("tool", "what it does", box=None)
            for tool in self.lab.tools:
                t.add_row(tool.name, tool.description.split("\n")[0][:90])
            self.console.print(t)
        elif cmd == "/new":
            self.thread = memory.new_thread_id()
            self.console.print(f"new thread [cyan]{self.thread}[/]")
        elif cmd == "/threads":
            self.console.print(threads_table(self.lab.registry.list_threads(), current=self.thread, box=None))
        elif cmd == "/thread":
            if not rest:
                self.console.print(f"current thread [cyan]{self.thread}[/]; usage: /thread ID")
            else:
                self.thread = rest
                self.console.print(f"switched to thread [cyan]{rest}[/]")
                self.show_history()
        elif cmd == "/memory":
            self._memory(rest)
        elif cmd == "/model":
            self._model(rest)
        elif cmd == "/jobs":
            self._jobs(rest)
        elif cmd == "/artifacts":
            self.console.print(artifacts_table(self.lab.registry.list_artifacts(limit=30), box=None))
        else:
            if cmd != "/help":
                self.console.print(f"[yellow]unknown command {cmd}[/]")
            t = Table(box=None, show_header=False)
            for k, v in SLASH_HELP.items():
                t.add_row(f"[bold]{k}[/]", v)
            self.console.print(t)
        return True

    def _memory(self, rest: str) -> None:
        from scratchlab.agent import memory

        sub, _, arg = rest.partition(" ")
        if sub == "forget" and arg:
            ok = memory.forget_memory(self.lab.store, arg.strip())
            self.console.print("forgotten" if ok else f"[yellow]no memory {arg}[/]")
        elif sub == "add" and arg:
            self.console.print(f"remembered as {memory.add_memory(self.lab.store, arg)}")
        elif sub == "edit" and arg:
            key, _, fact = arg.partition(" ")
            if not fact or self.lab.store.get(memory.MEMORY_NAMESPACE, key) is None:
                self.console.print("[yellow]usage: /memory edit KEY NEW FACT (KEY from /memory)[/]")
            else:
                memory.add_memory(self.lab.store, fact, key=key)
                self.console.print("updated")
        else:
            items = memory.list_memories(self.lab.store)
            if not items:
                self.console.print("long-term memory is empty (say 'remember that ...')")
            if items:
                self.console.print(memory_table(items, box=None))

    def _model(self, spec: str) -> None:
        from scratchlab.agent.llm import describe, get_chat_model

        if not spec:
            self.console.print(f"model: [cyan]{describe(self.model_spec)}[/]")
            return
        try:
            model = get_chat_model(spec, workspace=self.lab.workspace)
        except (ValueError, RuntimeError, ImportError) as e:
            self.console.print(f"[red]{e}[/]")
            return
        self.lab._model, self.lab._graph, self.model_spec = model, None, spec
        self.console.print(f"model switched to [cyan]{describe(spec)}[/]")

    def _jobs(self, rest: str) -> None:
        sub, _, arg = rest.partition(" ")
        if sub == "cancel" and arg:
            try:
                from scratchlab.lab.jobs import cancel_job

                job = cancel_job(self.lab.registry, arg.strip())
                self.console.print(f"{job.id}: {job.status}")
            except (LookupError, ValueError) as e:
                self.console.print(f"[red]{e}[/]")
            return
        jobs = self.lab.registry.list_jobs(limit=15)
        if not jobs:
            self.console.print("no jobs yet (training and fine-tuning run as background jobs)")
            return
        self.console.print(jobs_table(jobs, box=None))

    # ---- main loop ------------------------------------------------------------------------------
    def run(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory

        self.session = PromptSession(history=FileHistory(str(self.lab.workspace.root / "history.txt")))
        self.banner()
        with self.console.status("loading the model and the tool catalogue (first start takes longer)…"):
            model = self.lab.model
            if hasattr(model, "warm_start"):
                model.warm_start(self.lab._fixed_prompt)
        self.show_history()
        while True:
            try:
                line = self.session.prompt("you> ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if not line.strip():
                continue
            if line.strip().startswith("/"):
                if not self.command(line):
                    break
                continue
            self.turn(line)
        self.console.print(f"bye — resume with `scratchlab --thread {self.thread}`")
        self.lab.close()


def run_repl(model: str | None = None, thread_id: str | None = None) -> None:
    """Start the REPL (the `scratchlab` command with no sub-command).

    Raises:
        SystemExit(2): the lab database or the model cannot be opened (the message says how to repair).
    """
    from scratchlab.agent.llm import ModelSpecError
    from scratchlab.lab.registry import LabDatabaseError
    from scratchlab.models.weights import WeightsError

    console = Console()
    try:
        Repl(model=model, thread_id=thread_id, console=console).run()
    except (LabDatabaseError, WeightsError, ModelSpecError, FileNotFoundError, RuntimeError) as e:
        console.print(f"[bold red]error:[/] {e}")
        raise SystemExit(2) from e
