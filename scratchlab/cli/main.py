"""The `scratchlab` command: the REPL (no sub-command), `ask`, and one sub-command group per engine.

    scratchlab                         # the conversational REPL on the local model
    scratchlab --thread t-3f2a         # resume a conversation
    scratchlab ask "train a 512-token BPE on shakespeare" --json
    scratchlab tokenizer|gpt|rag|lora|sandbox|jobs|memory|artifacts --help
"""

from __future__ import annotations

import typer

from scratchlab.cli import common, gpt, lora, rag, sandbox, tokenizer

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


@app.callback()
def root(
    ctx: typer.Context,
    home: str = typer.Option(None, "--home", envvar="SCRATCHLAB_HOME", help="Workspace folder (default: platform data dir)."),
    model: str = typer.Option(None, "--model", envvar="SCRATCHLAB_MODEL", help="Chat model: local, local:0.5b, local:1.5b, a .gguf path, or openai:<model>."),
    thread: str = typer.Option(None, "--thread", help="Resume this conversation thread in the REPL."),
) -> None:
    common.set_home(home)
    ctx.obj = {"model": model, "thread": thread}
    if ctx.invoked_subcommand is None:
        from scratchlab.agent.repl import run_repl

        run_repl(model=model, thread_id=thread)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
