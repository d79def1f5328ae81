"""`scratchlab tokenizer ...` sub-commands (filled in by the tokenizer engine work)."""

import typer

app = typer.Typer(help="tokenizer commands", no_args_is_help=True)
