"""The scratchlab REPL: prompt_toolkit input and status line, rich output, over a `LabSession`.

    scratchlab                      # new thread on the default local model
    scratchlab --thread t-3f2a9c1d  # resume a thread after a restart

The prompt never blocks: each request runs in a worker thread (`scratchlab.agent.turns.TurnRunner`)
and prints above the prompt (prompt_toolkit's `patch_stdout`), while the bottom toolbar shows what the
turn is doing and the progress of running jobs. Slash commands (`SLASH_HELP`) work during a turn; a new
request typed during a turn stops its job wait (the job keeps running) and runs next. Ctrl-C cancels the
turn (the job keeps running in the background, the conversation is kept); Ctrl-C, EOF or anything but
yes at "Proceed? [y/N]" declines. Ctrl-D (or /quit) exits. History lives in the workspace (`history.txt`).

When a `scratchlab serve` runs for this workspace and model, a new REPL attaches to it (its own thread;
`scratchlab.server.remote`): turns run in the server, which already holds the model, while prompts,
confirmations, Ctrl-C and slash commands stay here. `scratchlab --keep-alive` starts that server first
if none runs, and it stays after the REPL exits (until 15 idle minutes), so later `ask`s reuse it.
`/model SPEC` leaves the server and loads SPEC here. `SCRATCHLAB_NO_SERVER=1` never attaches.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table

from scratchlab.agent.render import confirm_panel, fmt_seconds, job_status_text, tool_call_panel
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
BUSY_COMMANDS = ("/new", "/thread", "/model")  # refused while a turn runs (they change its thread or model)
QUIT_WAIT_S = 5.0  # at /quit, how long to wait for a cancelled turn to finish
STATUS_REFRESH_S = 0.5  # the status line is redrawn this often (seconds)
_WAKE = object()  # what the prompt returns when the worker needs the main thread (a confirmation)


class Repl:
    """The interactive face. `lab` may be a ready `LabSession` (tests, embedding apps)."""

    def __init__(self, model: str | None = None, thread_id: str | None = None, console: Console | None = None,
                 lab: Any = None, keep_alive: bool = False):  # fmt: skip
        from scratchlab.agent import memory
        from scratchlab.server.remote import open_lab

        self.console = console or Console()
        self.lab = lab or open_lab(model, keep_alive, self.console)
        self.thread = thread_id or memory.new_thread_id()
        self.model_spec = model if lab is None else (model or self.lab.model_spec)
        self.runner = None
        self.session = None
        self._confirms: queue.Queue = queue.Queue()  # (payload, request, answer queue) from the worker
        self._stash = ""  # what was typed at "you>" when a confirmation took the prompt

    # ---- output ---------------------------------------------------------------------------------
    def banner(self) -> None:
        from scratchlab import __version__
        from scratchlab.agent.llm import describe

        served = (
            f" (kept loaded by scratchlab serve at {self.lab.url})"
            if getattr(self.lab, "attached", 0)
            else ""
        )
        self.console.print(
            Panel.fit(
                f"[bold]scratchlab {__version__}[/] — a lab for building language models from scratch\n"
                f"model [cyan]{describe(self.model_spec)}[/]{served} · workspace [cyan]{self.lab.workspace.root}[/]\n"
                f"thread [cyan]{self.thread}[/] (resume later with `scratchlab --thread {self.thread}`)\n"
                "Type a request in plain English, /help for commands, Ctrl-C cancels a turn, Ctrl-D quits.",
                border_style="magenta",
            )
        )

    def show_history(self, limit: int = 6) -> None:
        msgs = [m for m in self.lab.history(self.thread) if isinstance(m, HumanMessage | AIMessage)]
        for m in msgs[-limit:]:
            if isinstance(m, HumanMessage):
                self.console.print("you> ", style="bold magenta", end="")
                self.console.print(str(m.content), markup=False, highlight=False)
            elif m.tool_calls:
                for tc in m.tool_calls:
                    self.console.print(tool_call_panel(tc["name"], tc["args"]))
            else:
                self.console.print(Markdown(str(m.content)))
        pending = self.lab.pending_interrupt(self.thread)
        if pending and self.runner is not None:
            self.runner.submit_resume(pending, self.thread)  # a confirmation left open (e.g. by `ask`)

    def status_line(self) -> str:
        """The bottom toolbar: the running turn and the active jobs (never printed over the prompt)."""
        try:
            from scratchlab.lab.jobs import ACTIVE, job_elapsed, list_jobs

            parts = []
            r = self.runner
            if r is not None and r.token is not None:
                what = r.state + (f": {r.partial}" if r.partial else "")
                parts.append(f"{what} ({fmt_seconds(time.monotonic() - r.started_at)}; Ctrl-C cancels)")
            jobs = [j for j in list_jobs(self.lab.registry, limit=10) if j.status in ACTIVE]
            parts += [job_status_text(j, job_elapsed(j)) for j in jobs[:3]]
            return " " + " │ ".join(parts) if parts else " ready · /help · Ctrl-D quits"
        except Exception as e:  # noqa: BLE001 - the toolbar must never break the prompt
            return f" status unavailable: {type(e).__name__}"

    # ---- confirmations (asked on the main thread) -----------------------------------------------
    def ask_confirm(self, payload: dict, request: str | None) -> str:
        """Called by the worker: hand the question to the main thread and wait for the answer."""
        answer: queue.Queue = queue.Queue(maxsize=1)
        self._confirms.put((payload, request, answer))
        while True:
            self._wake()
            try:
                return answer.get(timeout=STATUS_REFRESH_S)
            except queue.Empty:
                token = self.runner.token if self.runner is not None else None
                if token is not None and token.cancelled:  # /quit while the question waited
                    return "no"

    def _wake(self) -> None:
        """Make the main thread's "you>" prompt return (thread-safe), keeping what was typed."""
        app = self.session.app if self.session is not None else None
        loop = getattr(app, "loop", None)
        if app is None or loop is None or not app.is_running:
            return

        def leave() -> None:
            if app.is_running and not app.is_done:
                self._stash = app.current_buffer.text
                app.erase_when_done = True  # no stray "you>" line above the confirmation
                app.exit(result=_WAKE)

        try:
            loop.call_soon_threadsafe(leave)
        except RuntimeError:  # that prompt has just ended and its loop closed: the main thread is free
            pass

    def _answer_confirms(self) -> None:
        from prompt_toolkit import PromptSession

        while True:
            try:
                payload, request, answer = self._confirms.get_nowait()
            except queue.Empty:
                return
            self.console.print(confirm_panel(payload, request))
            try:
                text = PromptSession().prompt("Proceed? [y/N] ", bottom_toolbar=self.status_line,
                                              refresh_interval=STATUS_REFRESH_S)  # fmt: skip
            except (KeyboardInterrupt, EOFError):
                text = "no"
            answer.put(text.strip() or "no")

    # ---- slash commands -------------------------------------------------------------------------
    def command(self, line: str) -> bool:
        """Run a slash command; returns False to quit."""
        from scratchlab.agent import memory

        cmd, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if cmd in ("/quit", "/exit", "/q"):
            return False
        if (
            cmd in BUSY_COMMANDS
            and (rest or cmd != "/model")
            and self.runner is not None
            and self.runner.busy
        ):
            self.console.print(f"[yellow]a turn is running: wait for it or press Ctrl-C before {cmd}[/]")
            return True
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
        if getattr(self.lab, "attached", False):  # the server keeps its own model; load SPEC here
            self.lab = self.runner.lab = self.lab.detach_server()
            self.console.print("left scratchlab serve: turns now run in this REPL")
        try:
            model = get_chat_model(spec, workspace=self.lab.workspace)
        except (ValueError, RuntimeError, ImportError) as e:
            self.console.print(f"[red]{e}[/]")
            return
        self.lab.set_model(model)
        self.model_spec = spec
        self.console.print(f"model switched to [cyan]{describe(spec)}[/]")

    def _jobs(self, rest: str) -> None:
        sub, _, arg = rest.partition(" ")
        if sub == "cancel" and arg:
            threading.Thread(target=self._cancel_job, args=(arg.strip(),), daemon=True).start()
            self.console.print(f"stopping {arg.strip()} (it saves a checkpoint first)…", markup=False)
            return
        jobs = self.lab.registry.list_jobs(limit=15)
        if not jobs:
            self.console.print("no jobs yet (training and fine-tuning run as background jobs)")
            return
        self.console.print(jobs_table(jobs, box=None))

    def _cancel_job(self, job_id: str) -> None:
        """Stop a job off the main thread (it may take a while to checkpoint) and say how it ended."""
        from scratchlab.lab.jobs import cancel_job

        try:
            job = cancel_job(self.lab.registry, job_id)
            self.console.print(f"{job.id}: {job.status}", markup=False)
        except (LookupError, ValueError) as e:
            self.console.print(str(e), style="red", markup=False)

    # ---- main loop ------------------------------------------------------------------------------
    def run(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        from scratchlab.agent.turns import TurnRunner

        self.session = PromptSession(history=FileHistory(str(self.lab.workspace.root / "history.txt")),
                                     bottom_toolbar=self.status_line, refresh_interval=STATUS_REFRESH_S)  # fmt: skip
        self.banner()
        try:
            if not getattr(self.lab, "attached", False):  # attached: the server holds the model, warm
                with self.console.status(
                    "loading the model and the tool catalogue (first start takes longer)…"
                ):
                    model = self.lab.model
                    if hasattr(model, "warm_start"):
                        model.warm_start(self.lab._fixed_prompt)
        except KeyboardInterrupt:
            self.console.print("[yellow]warm-up skipped; the first answer will be slower[/]")
        self.runner = TurnRunner(self.lab, self.console, self.ask_confirm)
        # Between prompts the terminal is not in raw mode and Ctrl-C is a signal, not a key: it must
        # cancel the turn as the key does, never raise KeyboardInterrupt somewhere in the loop.
        with sigint_calls(self._cancel_turn), patch_stdout(raw=True):
            self.show_history()
            self._loop()
            self._quit()

    def _cancel_turn(self) -> None:
        if self.runner is not None and self.runner.busy:
            dropped = self.runner.cancel()
            note = f"; {dropped} queued request(s) dropped" if dropped else ""
            self.console.print(f"[yellow]cancelling the turn{note}…[/]")

    def _loop(self) -> None:
        while True:
            self._answer_confirms()
            try:
                line = self.session.prompt("you> ", default=self._stash, pre_run=self._pre_run)
            except KeyboardInterrupt:  # Ctrl-C as a key, at the prompt
                self._cancel_turn()
                continue
            except EOFError:
                return
            if line is _WAKE:
                self.session.app.erase_when_done = False
                continue
            self._stash = ""
            if not line.strip():
                continue
            if line.strip().startswith("/"):
                try:
                    if not self.command(line):
                        return
                except KeyboardInterrupt:
                    self.console.print("[yellow]interrupted[/]")
                continue
            if self.runner.busy:
                self.runner.detach()  # a job wait ends ("left running in the background"); the job runs on
                self.console.print("[dim]queued: runs after the current turn[/]")
            self.runner.submit(line, self.thread)

    def _pre_run(self) -> None:
        if not self._confirms.empty():  # a confirmation arrived while the prompt was starting
            self._wake()

    def _quit(self) -> None:
        from scratchlab.lab.jobs import ACTIVE

        ended = self.runner.stop(QUIT_WAIT_S)
        if getattr(self.lab, "attached", False):
            self.lab.detach_server()  # give the lease back: the server's idle time starts now
        running = [j.id for j in self.lab.registry.list_jobs(limit=20) if j.status in ACTIVE]
        if running:
            self.console.print(f"{', '.join(running)} keep(s) running in the background (`scratchlab jobs`)")
        if not ended:
            self.console.print("[yellow]the cancelled turn is still finishing; exiting without waiting[/]")
            # the abandoned turn ends in TurnCancelled after its executor has shut down: the traceback
            # concurrent.futures would log for it at exit is no news to a user who quit
            logging.getLogger("concurrent.futures").setLevel(logging.CRITICAL)
        self.console.print(f"bye — resume with `scratchlab --thread {self.thread}`")
        if ended:
            self.lab.close()


@contextmanager
def sigint_calls(action: Callable[[], None]) -> Iterator[None]:
    """Within the block, each SIGINT calls `action` on a watcher thread instead of raising
    KeyboardInterrupt.

    A Python signal handler runs on the main thread between any two bytecodes, maybe while the main
    thread holds a lock that `action` needs (the turn runner's, a queue's): calling `action` there
    could deadlock the REPL. The handler only posts to a `queue.SimpleQueue`, whose `put` is safe in a
    signal handler, and the watcher thread calls `action`. The previous handler is restored on exit.
    """
    posted: queue.SimpleQueue = queue.SimpleQueue()  # True per SIGINT; None ends the watcher

    def watch() -> None:
        while posted.get() is not None:
            action()

    watcher = threading.Thread(target=watch, name="scratchlab-sigint", daemon=True)
    watcher.start()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: posted.put(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        posted.put(None)


def run_repl(model: str | None = None, thread_id: str | None = None, keep_alive: bool = False) -> None:
    """Start the REPL (the `scratchlab` command with no sub-command).

    Raises:
        SystemExit(2): the lab database or the model cannot be opened (the message says how to repair).
    """
    from scratchlab.agent.llm import ModelSpecError
    from scratchlab.lab.registry import LabDatabaseError
    from scratchlab.models.weights import WeightsError

    console = Console()
    try:
        Repl(model=model, thread_id=thread_id, console=console, keep_alive=keep_alive).run()
    except (LabDatabaseError, WeightsError, ModelSpecError, FileNotFoundError, RuntimeError) as e:
        console.print(f"[bold red]error:[/] {e}")
        raise SystemExit(2) from e
