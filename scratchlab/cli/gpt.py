"""`scratchlab gpt ...` sub-commands (filled in by the gpt engine work)."""

import typer

app = typer.Typer(help="gpt commands", no_args_is_help=True)
