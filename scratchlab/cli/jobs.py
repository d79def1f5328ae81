"""`scratchlab jobs ...`: list, inspect, follow, cancel background jobs and read their logs.

scratchlab jobs list
scratchlab jobs status job-3 [--wait]
scratchlab jobs cancel job-3
scratchlab jobs logs job-3 --tail 50
"""

from __future__ import annotations

import typer

from scratchlab.cli import common

app = typer.Typer(help="Background jobs (training, fine-tuning, indexing).", no_args_is_help=True)


def _row(job) -> dict:
    from scratchlab.lab.jobs import job_elapsed

    return {"id": job.id, "kind": job.kind, "status": job.status, "step": job.step, "total": job.total,
            "message": job.message, "artifact": job.artifact_id, "pid": job.pid, "error": job.error or None,
            "seconds": round(job_elapsed(job), 1), "result": job.result or None}  # fmt: skip


@app.command("list")
def list_(
    limit: int = typer.Option(20, "--limit", help="How many jobs, newest first."),
    status: str = typer.Option(
        None, "--status", help="Only jobs with this status (running, done, failed, cancelled)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print jobs as JSON."),
) -> None:
    """List jobs (dead 'running' jobs are marked failed)."""
    from scratchlab.lab.jobs import list_jobs

    jobs = list_jobs(common.registry(), limit=limit, status=status)
    if as_json:
        common.emit_json([{k: v for k, v in _row(j).items() if k != "result"} for j in jobs])
        return
    common.console.print(common.jobs_table(jobs))


@app.command()
def status(
    job_id: str = typer.Argument(..., help="Job id, e.g. job-3."),
    wait: bool = typer.Option(False, "--wait", help="Follow it with a progress bar until it ends."),
    as_json: bool = typer.Option(False, "--json", help="Print the job as JSON."),
) -> None:
    """Show one job (optionally following it)."""
    from scratchlab.lab.jobs import refresh_job, wait_for_job

    reg = common.registry()
    try:
        job = refresh_job(reg, job_id)
    except LookupError as e:
        common.fail(str(e))
    if wait and job.status in ("queued", "running"):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(TextColumn(job.id), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                      console=common.err_console) as progress:  # fmt: skip
            task = progress.add_task(job.message, total=max(1, job.total))

            def show(j):
                progress.update(
                    task, completed=j.step, total=max(1, j.total), description=j.message or j.status
                )

            try:
                job = wait_for_job(reg, job.id, on_progress=show)
            except KeyboardInterrupt:
                common.err_console.print("stopped following; the job keeps running")
                job = refresh_job(reg, job.id)
    if as_json:
        common.emit_json(_row(job))
    else:
        for k, v in _row(job).items():
            if v not in (None, "", {}):
                common.console.print(common.safe(f"{k}: {v}", keep_newlines=True), highlight=False)
    if wait:
        common.exit_for(job.status)


@app.command()
def cancel(
    job_id: str = typer.Argument(..., help="Job id, e.g. job-3."),
    as_json: bool = typer.Option(False, "--json", help="Print the job as JSON."),
) -> None:
    """Stop a job cleanly (SIGTERM; it saves a checkpoint), killing it if it does not stop in time."""
    from scratchlab.lab.jobs import cancel_job

    try:
        job = cancel_job(common.registry(), job_id)
    except LookupError as e:
        common.fail(str(e))
    if as_json:
        common.emit_json(_row(job))
    else:
        common.console.print(common.safe(f"{job.id}: {job.status} {job.message}"), highlight=False)


@app.command()
def logs(
    job_id: str = typer.Argument(..., help="Job id, e.g. job-3."),
    tail: int = typer.Option(40, "--tail", help="Lines from the end."),
) -> None:
    """Print the end of a job's log (its stdout and stderr)."""
    from scratchlab.lab.jobs import read_log

    try:
        job = common.registry().get_job(job_id)
    except LookupError as e:
        common.fail(str(e))
    common.console.print(read_log(job, tail) or "(no log yet)", highlight=False, markup=False)
