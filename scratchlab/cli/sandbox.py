"""`scratchlab sandbox ...`: run Python in the bubblewrap sandbox, and self-test the isolation.

    scratchlab sandbox run analysis.py --timeout 20 --memory 1024
    scratchlab sandbox run -c "import numpy as np; print(np.pi)" --json
    scratchlab sandbox run plot.py --mount data/metrics.csv      # readable at /mnt/metrics.csv
    scratchlab sandbox check [--json]

The program's stdout/stderr are printed as they came back; a summary (files written, the limit that
stopped it) goes to stderr. The exit status is the program's (1 when a limit stopped it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.text import Text

from scratchlab.cli.common import emit_json, err_console, fail, safe, workspace

app = typer.Typer(help="sandbox commands", no_args_is_help=True)


@app.command("run")
def run(
    file: Path = typer.Argument(None, help="Python file to run (or use -c)."),
    code: str = typer.Option(None, "-c", "--code", help="Python source to run instead of a file."),
    timeout: float = typer.Option(None, "--timeout", help="Wall-clock limit in seconds (default 60)."),
    memory: int = typer.Option(
        None, "--memory", help="Address-space limit per process in MiB (default 4096)."
    ),
    cpu: int = typer.Option(None, "--cpu", help="CPU-seconds limit (default 60)."),
    mount: list[Path] = typer.Option(
        None, "--mount", help="Host file or folder to expose read-only at /mnt/<name>; repeatable."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    unsafe_no_sandbox: bool = typer.Option(
        False,
        "--unsafe-no-sandbox",
        help="Run WITHOUT isolation (only resource limits). Prints a warning every time.",
    ),
) -> None:
    """Run a Python file or -c CODE once in a fresh sandbox; its work folder is kept in the workspace."""
    import warnings

    from scratchlab.sandbox import Limits, SandboxConfigError, SandboxUnavailable, new_work_dir, run_code
    from scratchlab.sandbox.policy import UNSAFE_WARNING

    if (file is None) == (code is None):
        fail('give exactly one of FILE or -c CODE, e.g. `scratchlab sandbox run -c "print(1)"`')
    if file is not None:
        if not file.is_file():
            fail(f"no such file: {file}")
        source, filename = file.read_text(encoding="utf-8", errors="replace"), file.name
    else:
        source, filename = code, "<string>"
    overrides = {
        k: v for k, v in (("timeout_s", timeout), ("memory_mb", memory), ("cpu_s", cpu)) if v is not None
    }
    try:
        limits = Limits(**overrides)
    except SandboxConfigError as e:
        fail(str(e))
    if unsafe_no_sandbox:
        err_console.print(f"[bold red]{UNSAFE_WARNING}[/]", highlight=False)
    work = new_work_dir(workspace().dir("sandbox"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the warning was printed above, once per run
            result = run_code(source, work, limits=limits, ro_mounts=mount or None, filename=filename,
                              unsafe_no_sandbox=unsafe_no_sandbox)  # fmt: skip
    except SandboxUnavailable as e:
        fail(f"{e}\n(or, at your own risk, pass --unsafe-no-sandbox)")
    except SandboxConfigError as e:
        fail(str(e))
    if as_json:
        emit_json(result.to_dict())
    else:
        sys.stdout.write(result.stdout)
        sys.stdout.flush()
        sys.stderr.write(result.stderr)
        sys.stderr.flush()
        summary = safe(
            f"sandbox: {'ok' if result.ok else 'failed'} in {result.duration_s:.2f}s, work folder {work}",
            "dim",
        )
        if result.killed_by:
            summary += safe(f"\nstopped by the {result.killed_by} limit", "bold red", keep_newlines=True)
        for f in result.files:  # names chosen by the sandboxed code: plain text, controls escaped
            summary += safe("\n  ", keep_newlines=True) + safe(
                f"{'image' if f.image else 'file '} {f.path} ({f.size} B, {f.status})"
            )
        err_console.print(summary, highlight=False)
    raise typer.Exit(
        0 if result.ok else (result.exit_code if result.exit_code and result.exit_code > 0 else 1)
    )


@app.command("check")
def check(as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON.")) -> None:
    """Self-test the isolation on this machine: network, read-only system, hidden home, limits."""
    from scratchlab.sandbox.check import run_checks

    checks = run_checks()
    if as_json:
        emit_json({"ok": all(c.holds for c in checks), "checks": [c.to_dict() for c in checks]})
    else:
        for c in checks:
            mark = "[green]holds[/]" if c.holds else "[bold red]FAILS[/]"
            err_console.print(
                Text.from_markup(f"{mark}  {c.name}  ") + safe(c.detail, "dim"), highlight=False
            )
        verdict = "all guarantees hold" if all(c.holds for c in checks) else "some guarantees do NOT hold"
        err_console.print(f"\n{verdict} ({sum(c.holds for c in checks)}/{len(checks)})", highlight=False)
    raise typer.Exit(0 if all(c.holds for c in checks) else 1)
