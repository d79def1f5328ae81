"""`scratchlab lora ...` sub-commands (filled in by the lora engine work)."""

import typer

app = typer.Typer(help="lora commands", no_args_is_help=True)
