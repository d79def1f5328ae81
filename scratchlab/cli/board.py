"""`scratchlab board`: the lab's runs in TensorBoard, on this machine.

    scratchlab board                  # export metrics, serve http://127.0.0.1:6006, refresh every 10 s
    scratchlab board --port 6010      # another port
    scratchlab board --export-only    # write the event files (<workspace>/board) and print the run names
    scratchlab board --stop           # stop a board started in the background (e.g. by the agent)

The exporter and the server are `scratchlab.training.board` (also `python -m scratchlab.training.board`).
"""

from __future__ import annotations

import typer

from scratchlab.cli import common


def board_command(
    port: int = typer.Option(6006, "--port", help="TCP port for TensorBoard."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; the default keeps it on this machine."
    ),
    refresh: float = typer.Option(10.0, "--refresh", help="Seconds between exports of new metrics."),
    export_only: bool = typer.Option(False, "--export-only", help="Export the event files and exit."),
    stop: bool = typer.Option(False, "--stop", help="Stop the board serving this workspace."),
) -> None:
    """Show every GPT run, LoRA adapter and ablation (losses, lr, tokens/s, hparams, samples) in TensorBoard."""
    from scratchlab.training import board

    ws, reg = common.workspace(), common.registry()
    if stop:
        common.console.print("board stopped" if board.stop_board(ws) else "no board is running")
        return
    if not 0 < port < 65536 or refresh <= 0:
        common.fail(f"--port must be 1-65535 and --refresh positive, got {port} and {refresh}")
    if export_only:
        names = board.export_board(ws, reg)
        common.console.print(f"{board.board_dir(ws)}: {', '.join(names) or 'no runs yet'}")
        return
    url = board.running_board(ws)
    if url:
        common.fail(
            f"a board already serves this workspace at {url} (stop it with `scratchlab board --stop`)"
        )

    def ready(url: str, names: list[str]) -> None:
        common.console.print(
            f"TensorBoard at {url} ({len(names)} runs: {', '.join(names[:8])}); Ctrl-C stops it"
        )

    try:
        board.serve_board(ws, reg, port=port, host=host, refresh_s=refresh, on_ready=ready)
    except board.BoardError as e:
        common.fail(str(e))
