"""`scratchlab sandbox ...` sub-commands (filled in by the sandbox engine work)."""

import typer

app = typer.Typer(help="sandbox commands", no_args_is_help=True)
