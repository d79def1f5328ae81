"""`scratchlab serve`: keep the model loaded so `scratchlab ask` and new REPLs answer without reloading it.

    scratchlab serve                              # until 15 idle minutes pass (--idle-timeout)
    scratchlab --model local:0.5b serve --port 8765
    scratchlab ask "..."                          # attaches to it (same workspace and model)
    scratchlab                                    # a new REPL attaches too (its own thread)

`scratchlab ask --keep-alive` and `scratchlab --keep-alive` (the REPL) start this command as a
detached process when no server runs. One server per workspace (`serve.lock`).
The server is `scratchlab.server.ask_server`; clients find it through `scratchlab.server.client`.
"""

from __future__ import annotations

import typer

from scratchlab.cli import common

IDLE_ENV = "SCRATCHLAB_IDLE_TIMEOUT"  # same as ask_server.IDLE_ENV (not imported: FastAPI/pydantic)


def serve_command(
    ctx: typer.Context,
    port: int = typer.Option(0, "--port", help="TCP port on 127.0.0.1 (0: a free one)."),
    idle_timeout: float = typer.Option(
        900.0,
        "--idle-timeout",
        envvar=IDLE_ENV,
        help="Exit after this many seconds without a request or an attached REPL.",
    ),
) -> None:
    """Serve `ask` and REPL turns with the model kept loaded, on 127.0.0.1, until idle."""
    from scratchlab.agent.llm import ModelSpecError
    from scratchlab.agent.session import LabSession
    from scratchlab.lab.registry import LabDatabaseError
    from scratchlab.models.weights import WeightsError
    from scratchlab.server.ask_server import ServeLock, model_key, serve
    from scratchlab.server.client import find_server

    if not 0 <= port < 65536 or idle_timeout <= 0:
        common.fail(f"--port must be 0-65535 and --idle-timeout positive, got {port} and {idle_timeout}")
    model, root = (ctx.obj or {}).get("model"), common.workspace().root
    lock = ServeLock(root)
    if not lock.acquire():  # before loading the model: a second start costs nothing
        url = find_server(root, model)
        common.fail(f"a server for this workspace and model already runs at {url}" if url else
                    f"another scratchlab server (another model, or still starting) serves {root}; "
                    f"stop it first (its pid is in {root / 'serve.json'})")  # fmt: skip
    try:
        lab = LabSession(home=root, model=model)
        common.err_console.print(f"loading {model_key(model)} ...")
        chat = lab.model
        if hasattr(chat, "warm_start"):  # evaluate the fixed prompt once, as the REPL does
            chat.warm_start(lab._fixed_prompt)
    except (LabDatabaseError, WeightsError, ModelSpecError, FileNotFoundError) as e:
        lock.release()
        common.fail(str(e))

    def ready(url: str) -> None:
        common.err_console.print(f"scratchlab serve at {url} (exits after {idle_timeout:.0f}s idle)")

    try:
        serve(lab, model_key(model), port=port, idle_timeout_s=idle_timeout, on_ready=ready, lock=lock)
    finally:
        lab.close()
