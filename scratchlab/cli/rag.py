"""`scratchlab rag ...` sub-commands (filled in by the rag engine work)."""

import typer

app = typer.Typer(help="rag commands", no_args_is_help=True)
