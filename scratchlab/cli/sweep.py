"""`scratchlab gpt sweep / research / sweep-status / sweep-stop` and `scratchlab lora sweep`.

    scratchlab gpt sweep lr --n-layer 2 --minutes 10                 # TPE over lr, median pruning
    scratchlab gpt sweep "vocab_size=256,512,1024" --trials 3 --json  # one BPE tokenizer per size
    scratchlab gpt sweep "lr=3e-4,1e-3,3e-3" "n_layer=2,4" --sampler grid --max-iters 300
    scratchlab gpt sweep --resume sweep-2                            # continue a killed/stopped study
    scratchlab gpt research --minutes 15 --target 2.0                # keep/discard loop from the defaults
    scratchlab gpt sweep-status last [--json]; scratchlab gpt sweep-stop last
    scratchlab lora sweep "r=4,8,16" --data demo --base gpt-1 --trials 3

The sweep runs as a background job with a live progress bar (trial, pruned, best so far, ETA); Ctrl-C
stops it cleanly and `--resume` continues the same study. The ledger (table + plot) is printed at the end.
"""

from __future__ import annotations

import typer

from scratchlab.cli import common, run_options

SPEC_HELP = "Settings to search: 'lr', 'n_layer=2,4', 'dropout=0..0.2', 'vocab_size=256,512,1024'."


def _finish(ctx, job, art, as_json: bool) -> None:
    from scratchlab.tools.sweep import describe_sweep, ledger

    job = common.watch_job(ctx, job, art.id, as_json)
    art = ctx.registry.get_artifact(art.id)
    if as_json:
        led = ledger(art)
        common.emit_json({"sweep": art.id, "kind": art.kind, "job": job.id, "status": job.status,
                          **{k: led.get(k) for k in ("best", "noise", "within_noise", "helped", "n_trials", "n_pruned",
                                                     "n_failed", "spent_s", "plot", "stopped_because", "rows")}})  # fmt: skip
    else:
        common.console.print(
            common.safe(describe_sweep(ctx, art, table=True), keep_newlines=True), highlight=False
        )
    common.exit_for(job.status)


def _start(kind: str, plan, args, name: str | None, detach: bool, as_json: bool) -> None:
    from scratchlab.tools.base import ToolError  # lazy: the tools load the registry (SQLAlchemy, ~0.7 s)
    from scratchlab.tools.sweep import launch

    ctx = common.tool_context(auto_confirm=True)
    try:
        cfg, est = plan(ctx, args)
    except (ToolError, ValueError, LookupError, OSError) as e:
        common.fail(str(e))
    job, art = launch(ctx, kind, cfg, name)
    if detach:
        out = {"sweep": art.id, "job": job.id, "estimated_seconds": round(est)}
        common.emit_json(out) if as_json else common.console.print(
            common.safe(f"started {art.id} as {job.id}")
        )
        return
    _finish(ctx, job, art, as_json)


def gpt_sweep(
    search: list[str] = typer.Argument(None, help=SPEC_HELP + " Default: lr."),
    minutes: float = typer.Option(
        None, "--minutes", help="Wall-clock budget in minutes (default 10 without --trials)."
    ),
    trials: int = typer.Option(None, "--trials", help="Budget in trials."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe | grid | random."),
    pruner: str = typer.Option("median", "--pruner", help="median | halving | none."),
    seed_runs: int = typer.Option(
        2, "--seed-runs", help="Re-runs of the best config with new seeds (noise)."
    ),
    resume_: str = typer.Option(
        None, "--resume", help="Continue this sweep (id or name) instead of starting one."
    ),
    name: str = typer.Option(None, "--name", help="Sweep name (default sweep-N)."),
    detach: bool = typer.Option(False, "--detach", help="Start the job and return at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the ledger summary as JSON."),
    **settings_kw,
) -> None:
    """Search GPT settings within a budget (Optuna), pruning losing trials; print the table and plot."""
    from scratchlab.tools.base import ToolError  # lazy: the tools load the registry (SQLAlchemy, ~0.7 s)
    from scratchlab.tools.sweep import SweepGPTArgs, plan_gpt, resume

    if resume_:
        ctx = common.tool_context(auto_confirm=True)
        try:
            job, art = resume(ctx, resume_, minutes)
        except ToolError as e:
            common.fail(str(e))
        return _finish(ctx, job, art, as_json)
    given = run_options.overrides(settings_kw, "train_gpt", tool_only=True)
    try:
        args = SweepGPTArgs(
            search=search, budget_minutes=minutes, n_trials=trials, sampler=sampler, pruner=pruner, **given
        )
    except ValueError as e:
        common.fail(str(e))

    def plan(ctx, a):
        cfg, est = plan_gpt(ctx, a)
        return {**cfg, "seed_runs": seed_runs}, est

    _start("sweep", plan, args, name, detach, as_json)


def gpt_research(
    search: list[str] = typer.Argument(
        None, help="Settings the loop may change (default lr n_layer n_embd ...)."
    ),
    minutes: float = typer.Option(None, "--minutes", help="Wall-clock budget in minutes."),
    trials: int = typer.Option(None, "--trials", help="Budget in runs."),
    target: float = typer.Option(None, "--target", help="Stop once the val loss is <= this."),
    plateau: int = typer.Option(4, "--plateau", help="Stop after this many discarded changes in a row."),
    name: str = typer.Option(None, "--name", help="Loop name (default research-N)."),
    detach: bool = typer.Option(False, "--detach", help="Start the job and return at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the ledger summary as JSON."),
    **settings_kw,
) -> None:
    """Keep/discard loop: change one setting at a time from the start config, keep what helps."""
    from scratchlab.tools.sweep import ResearchGPTArgs, plan_gpt

    given = run_options.overrides(settings_kw, "train_gpt", tool_only=True)
    args = ResearchGPTArgs(search=search or None, budget_minutes=minutes, n_trials=trials, target_loss=target,
                           plateau=plateau, **given)  # fmt: skip
    _start("research", lambda ctx, a: plan_gpt(ctx, a, research=True), args, name, detach, as_json)


def status(
    sweep: str = typer.Argument("last", help="Sweep or research id, name or 'last'."),
    as_json: bool = typer.Option(False, "--json", help="Print the ledger as JSON."),
) -> None:
    """Progress, best so far, ETA, seed noise and the table of a sweep or research loop."""
    from scratchlab.tools.base import ToolError  # lazy: the tools load the registry (SQLAlchemy, ~0.7 s)
    from scratchlab.tools.sweep import describe_sweep, find, ledger

    ctx = common.tool_context()
    try:
        art = find(ctx, sweep)
    except ToolError as e:
        common.fail(str(e))
    if as_json:
        common.emit_json({"sweep": art.id, "kind": art.kind, **ledger(art)})
    else:
        common.console.print(
            common.safe(describe_sweep(ctx, art, table=True), keep_newlines=True), highlight=False
        )


def stop(sweep: str = typer.Argument("last", help="Sweep or research id, name or 'last'.")) -> None:
    """Stop a running sweep or research loop (the study is kept; `gpt sweep --resume` continues it)."""
    from scratchlab.tools.base import ToolError  # lazy: the tools load the registry (SQLAlchemy, ~0.7 s)
    from scratchlab.tools.sweep import stop as do_stop

    try:
        common.console.print(common.safe(do_stop(common.tool_context(), sweep), keep_newlines=True))
    except ToolError as e:
        common.fail(str(e))


def lora_sweep(
    search: list[str] = typer.Argument(..., help="LoRA settings: 'r=4,8,16', 'lr', 'lora_dropout=0..0.2'."),
    data: str = typer.Option(..., "--data", help="Training data (.jsonl) or 'demo'."),
    base: str = typer.Option("last", "--base", help="GPT run id/name, 'last', or a pretrained base."),
    max_iters: int = typer.Option(100, "--max-iters", help="Steps per trial."),
    minutes: float = typer.Option(None, "--minutes", help="Wall-clock budget in minutes."),
    trials: int = typer.Option(None, "--trials", help="Budget in trials."),
    name: str = typer.Option(None, "--name", help="Sweep name (default sweep-N)."),
    detach: bool = typer.Option(False, "--detach", help="Start the job and return at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the ledger summary as JSON."),
) -> None:
    """Search LoRA settings within a budget; each trial is a registered adapter."""
    from scratchlab.tools.sweep import SweepLoraArgs, plan_lora

    args = SweepLoraArgs(search=search, data=data, base=base, max_iters=max_iters, budget_minutes=minutes,
                         n_trials=trials)  # fmt: skip
    _start("sweep", plan_lora, args, name, detach, as_json)


def register_gpt(app: typer.Typer) -> None:
    """Add the sweep commands to `scratchlab gpt` (the run settings as options, as `gpt ablate` has)."""
    params = run_options.settings_params("train_gpt", {"dataset": "-d", "tokenizer": "-t"}, tool_only=True)
    app.command("sweep")(run_options.with_params(gpt_sweep, params))
    params = run_options.settings_params("train_gpt", {"dataset": "-d", "tokenizer": "-t"}, tool_only=True)
    app.command("research")(run_options.with_params(gpt_research, params))
    app.command("sweep-status")(status)
    app.command("sweep-stop")(stop)
