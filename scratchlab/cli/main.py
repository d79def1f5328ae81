"""The `scratchlab` command: the REPL (no sub-command), `ask`, and one sub-command group per engine.

scratchlab                         # the conversational REPL on the local model
scratchlab --thread t-3f2a         # resume a conversation
scratchlab ask "train a 512-token BPE on shakespeare" --json
scratchlab tokenizer|gpt|rag|lora|sandbox|jobs|memory|artifacts|agent|models --help
"""

from __future__ import annotations

import typer

from scratchlab.cli import agent_cmd, board, common, gpt, jobs, lora, mcp, rag, sandbox, serve, tokenizer

app = typer.Typer(
    help="scratchlab: a terminal lab assistant for building language models from scratch.",
    invoke_without_command=True,
    no_args_is_help=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(tokenizer.app, name="tokenizer", help="Train, use and inspect byte-level BPE tokenizers.")
app.add_typer(gpt.app, name="gpt", help="Train, sample, ablate and compare GPTs (background jobs).")
app.add_typer(rag.app, name="rag", help="Index documents, search them, answer with citations, evaluate.")
app.add_typer(lora.app, name="lora", help="LoRA fine-tuning of our GPTs and a pretrained model.")
app.add_typer(sandbox.app, name="sandbox", help="Run Python inside the bubblewrap sandbox.")
app.add_typer(jobs.app, name="jobs", help="Background jobs: list, status, cancel, logs.")
app.command("mcp")(mcp.mcp_command)
app.command("board")(board.board_command)
app.command("serve")(serve.serve_command)
app.add_typer(agent_cmd.app, name="agent", help="The agent itself: tune its router on your tools.")
app.command("models")(agent_cmd.models_command)


@app.callback()
def root(
    ctx: typer.Context,
    home: str = typer.Option(
        None, "--home", envvar="SCRATCHLAB_HOME", help="Workspace folder (default: platform data dir)."
    ),
    model: str = typer.Option(
        None,
        "--model",
        envvar="SCRATCHLAB_MODEL",
        help="Chat model: local, local:0.5b, local:1.5b, a .gguf path, or openai:<model>.",
    ),
    thread: str = typer.Option(None, "--thread", help="Resume this conversation thread in the REPL."),
    keep_alive: bool = typer.Option(
        False,
        "--keep-alive",
        help="REPL: run the turns in a `scratchlab serve` started in the background (if none runs), which "
        "stays after the REPL exits so later `ask`s and REPLs attach (it exits after 15 idle minutes).",
    ),
) -> None:
    common.set_home(home)
    ctx.obj = {"model": model, "thread": thread, "keep_alive": keep_alive}
    if ctx.invoked_subcommand is None:
        from scratchlab.agent.repl import run_repl

        run_repl(model=model, thread_id=thread, keep_alive=keep_alive)


@app.command()
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="The request, in plain English."),
    thread: str = typer.Option(None, "--thread", help="Continue this thread (default: a new one)."),
    json_out: bool = typer.Option(
        False,
        "--json",
        help='Print {"answer", "thread", "tool_calls"} as JSON; each tool call has name, args, result, '
        "artifacts (ids) and seconds.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Run no tool: show the tool call(s) the agent would make."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm long actions without asking."),
    keep_alive: bool = typer.Option(
        False,
        "--keep-alive",
        help="If no `scratchlab serve` runs for this workspace and model, start one in the background and "
        "ask through it; later asks and REPLs attach to it. It exits after 15 idle minutes "
        "($SCRATCHLAB_IDLE_TIMEOUT seconds).",
    ),
) -> None:
    """Ask the agent once, without the REPL (through a running `scratchlab serve` when there is one)."""
    from scratchlab.server.client import ServeError, ask_served, find_server, start_server

    thread = thread or (ctx.obj or {}).get("thread")
    model, root = (ctx.obj or {}).get("model"), common.workspace().root
    url = find_server(root, model)
    if url is None and (keep_alive or (ctx.obj or {}).get("keep_alive")):
        try:  # a detached `scratchlab serve` process loads the model; this process stays light
            common.err_console.print("starting scratchlab serve (it keeps the model loaded) ...")
            url = start_server(root, model)
        except ServeError as e:
            common.err_console.print(f"warning: {e}\nanswering in this process instead")
    try:  # a running `scratchlab serve` (same workspace and model) answers without reloading the model
        result = ask_served(root, model, question, thread, dry_run, yes, url=url)
    except ServeError as e:
        common.fail(str(e))
    except KeyboardInterrupt:  # the second Ctrl-C: the server was already asked to cancel the turn
        common.fail("cancelled (Ctrl-C)", code=130)
    if result is None:  # no server: load the model here (these imports alone take ~1.5 s)
        from scratchlab.agent.llm import ModelSpecError
        from scratchlab.agent.session import InputTooLong, LabSession
        from scratchlab.lab.registry import LabDatabaseError
        from scratchlab.models.weights import WeightsError

        try:
            lab = LabSession(home=root, model=model, auto_confirm=yes)
            result = _ask_cancellable(lab, question, thread, dry_run)
        except (LabDatabaseError, WeightsError, ModelSpecError, FileNotFoundError, InputTooLong) as e:
            common.fail(str(e))
    if result.get("cancelled"):  # Ctrl-C through the server
        jobs = result.get("jobs") or []
        running = f"; {', '.join(jobs)} keep(s) running in the background (`scratchlab jobs`)" if jobs else ""
        common.fail(
            f"cancelled (Ctrl-C){running}; the conversation is kept: --thread {result['thread']}", code=130
        )
    if "interrupt" in result:
        from scratchlab.agent.render import confirm_summary

        intr = result.pop("interrupt")
        result["answer"] = (
            f"{intr.get('action', 'this action')} needs confirmation ({confirm_summary(intr)}). Nothing was "
            f"started. Re-run with --yes to go ahead, or answer it in the REPL: scratchlab --thread {result['thread']}"
        )
    if json_out:  # each tool call: name, args, result (its text), artifacts (ids), seconds
        common.emit_json({k: result[k] for k in ("answer", "thread", "tool_calls")})
        return
    for call in result["tool_calls"]:
        common.console.print(common.safe(f"→ {call['name']}({call['args']})", "cyan"))
    if result["answer"]:
        from rich.markdown import Markdown

        common.console.print(Markdown(result["answer"]))
    common.console.print(common.safe(f"thread {result['thread']}", "dim"))


def _ask_cancellable(lab, question: str, thread: str | None, dry_run: bool) -> dict:
    """`lab.ask` where the first Ctrl-C cancels the turn cleanly (a job wait returns and the job keeps
    running; the thread keeps a result for every tool call) and a second one stops at once.

    Raises:
        typer.Exit(130): the turn was cancelled.
    """
    import signal

    from scratchlab.lab import cancel

    token = cancel.CancelToken()

    def on_sigint(signum, frame):
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()

    from scratchlab.agent import memory
    from scratchlab.lab.jobs import ACTIVE

    thread = thread or memory.new_thread_id()
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with cancel.active(token):
            return lab.ask(question, thread_id=thread, dry_run=dry_run)
    except cancel.TurnCancelled:
        running = [j.id for j in lab.registry.list_jobs(limit=20) if j.status in ACTIVE]
        jobs = (
            f"; {', '.join(running)} keep(s) running in the background (`scratchlab jobs`)" if running else ""
        )
        common.fail(f"cancelled (Ctrl-C){jobs}; the conversation is kept: --thread {thread}", code=130)
    finally:
        signal.signal(signal.SIGINT, previous)


memory_app = typer.Typer(
    help="Long-term memory (facts the agent keeps across conversations).", no_args_is_help=False
)
app.add_typer(memory_app, name="memory")


@memory_app.callback(invoke_without_command=True)
def memory_list(
    ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="JSON output.")
) -> None:
    """List remembered facts."""
    if ctx.invoked_subcommand:
        return
    from scratchlab.agent import memory

    _, store, _ = memory.open_memory(common.workspace().db_path)
    items = memory.list_memories(store)
    if json_out:
        common.emit_json([{"key": k, "fact": f} for k, f in items])
    elif not items:
        common.console.print("long-term memory is empty")
    else:
        common.console.print(common.memory_table(items, box=None))


@memory_app.command("add")
def memory_add(fact: str = typer.Argument(..., help="The fact to remember.")) -> None:
    """Remember a fact."""
    from scratchlab.agent import memory

    _, store, _ = memory.open_memory(common.workspace().db_path)
    common.console.print(memory.add_memory(store, fact))


@memory_app.command("forget")
def memory_forget(key: str = typer.Argument(..., help="Key shown by `scratchlab memory`.")) -> None:
    """Forget a fact."""
    from scratchlab.agent import memory

    _, store, _ = memory.open_memory(common.workspace().db_path)
    if not memory.forget_memory(store, key):
        common.fail(f"no memory with key {key!r}; list them with `scratchlab memory`")
    common.console.print("forgotten")


@app.command()
def threads(json_out: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Recent conversation threads (resume one with `scratchlab --thread ID`)."""
    rows = common.registry().list_threads()
    if json_out:
        common.emit_json([{"thread": t, "title": title, "updated_at": when} for t, title, when in rows])
        return
    common.console.print(common.threads_table(rows, box=None))


@app.command()
def artifacts(
    kind: str = typer.Option(None, "--kind", help="Only this kind (tokenizer, run, index, adapter, ...)."),
    json_out: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """What the lab has built."""
    arts = common.registry().list_artifacts(kind=kind)
    if json_out:
        common.emit_json([a.__dict__ for a in arts])
        return
    common.console.print(common.artifacts_table(arts, box=None))


def main() -> None:
    try:
        app()
    except Exception as e:
        # lazy: SQLAlchemy (~0.4 s) is not imported by an `ask` that a running server answers
        from scratchlab.lab.registry import LabDatabaseError

        if not isinstance(e, LabDatabaseError):
            raise
        common.print_error(str(e))  # lab.db unusable mid-command (full disk, lock): the diagnosis
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
