"""`scratchlab gpt ...`: train, resume, sample, ablate, compare and list GPT runs.

    scratchlab gpt train --dataset shakespeare --max-iters 2000 --json
    scratchlab gpt train --dataset notes/ --tokenizer my-bpe --n-layer 6 --detach
    scratchlab gpt sample last --prompt "ROMEO:" --max-new-tokens 300 --top-k 40
    scratchlab gpt resume run-3 --max-iters 4000
    scratchlab gpt ablate no_pos_emb n_head=1 no_residual --max-iters 500
    scratchlab gpt compare run-3 run-4
    scratchlab gpt list
    scratchlab gpt sweep lr --n-layer 2 --minutes 10        (and research, sweep-status, sweep-stop: cli/sweep.py)

Training runs as a background job; the command shows a live progress bar while it waits. Ctrl-C
cancels the job cleanly (a checkpoint is kept; `gpt resume` continues it); `--detach` returns at once.
"""

from __future__ import annotations

import typer

from scratchlab.cli import common, run_options
from scratchlab.cli import sweep as sweep_commands

app = typer.Typer(help="Train, sample, ablate and compare GPTs (background jobs).", no_args_is_help=True)


def train(
    name: str = typer.Option(None, "--name", help="Run name (default gpt-N)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    detach: bool = typer.Option(False, "--detach", help="Start the job and return at once."),
    yes: bool = typer.Option(
        True, "--yes/--confirm", help="Skip the long-run confirmation (default) or ask."
    ),
    **settings_kw,
) -> None:
    """Train a GPT from scratch as a background job and report val loss, speed, checkpoint and plot."""
    from scratchlab.tools.base import ToolError
    from scratchlab.tools.gpt import launch_training, prepare_training, run_result_json, summarize_training

    ctx = common.tool_context(auto_confirm=yes)
    overrides = run_options.overrides(settings_kw, "train_gpt")
    try:
        prep = prepare_training(ctx, overrides, name)
    except (ToolError, ValueError, LookupError, OSError) as e:
        common.fail(str(e))
    est = prep.estimate["estimated_seconds"]
    if not yes and est > ctx.confirm_threshold_s:
        if not typer.confirm(f"Estimated {est:.0f}s for {prep.estimate['params'] / 1e6:.2f}M params. Start?"):
            common.fail("not started", code=1)
    job, art = launch_training(ctx, prep)
    if detach:
        out = {"run": art.id, "name": art.name, "job": job.id, "status": job.status, "estimated_seconds": est}
        if as_json:
            common.emit_json(out)
        else:
            common.console.print(common.safe(f"started {job.id} for run {art.id} ({art.name}), ~{est:.0f}s. "
                                             f"Watch: scratchlab jobs status {job.id}"))  # fmt: skip
        return
    job = common.watch_job(ctx, job, art.id, as_json)
    art = ctx.registry.get_artifact(art.id)
    if as_json:
        common.emit_json(run_result_json(job, art))
    else:
        common.console.print(
            common.safe(summarize_training(ctx, job, art), keep_newlines=True), highlight=False
        )
    common.exit_for(job.status)


app.command()(
    run_options.with_params(
        train, run_options.settings_params("train_gpt", {"dataset": "-d", "tokenizer": "-t"})
    )
)


@app.command()
def resume(
    run: str = typer.Argument("last", help="Run id, name or 'last'."),
    max_iters: int = typer.Option(None, "--max-iters", help="New total steps (default: the run's own)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    detach: bool = typer.Option(False, "--detach", help="Start the job and return at once."),
) -> None:
    """Continue a run from its last checkpoint (after a cancel, a crash or to train longer)."""
    from scratchlab.tools.base import ToolError
    from scratchlab.tools.gpt import launch_resume, run_result_json, summarize_training

    ctx = common.tool_context(auto_confirm=True)
    try:
        job, art = launch_resume(ctx, run, max_iters)
    except (ToolError, ValueError, LookupError, OSError) as e:
        common.fail(str(e))
    if detach:
        common.emit_json({"run": art.id, "job": job.id}) if as_json else common.console.print(
            f"started {job.id}"
        )
        return
    job = common.watch_job(ctx, job, art.id, as_json)
    art = ctx.registry.get_artifact(art.id)
    if as_json:
        common.emit_json(run_result_json(job, art))
    else:
        common.console.print(
            common.safe(summarize_training(ctx, job, art), keep_newlines=True), highlight=False
        )
    common.exit_for(job.status)


@app.command()
def sample(
    run: str = typer.Argument("last", help="Run id, name or 'last'."),
    prompt: str = typer.Option("", "--prompt", "-p", help="Text to continue."),
    max_new_tokens: int = typer.Option(200, "--max-new-tokens", "-n", help="Tokens to generate."),
    temperature: float = typer.Option(0.8, "--temperature", help="0 = greedy."),
    top_k: int = typer.Option(None, "--top-k", help="Sample among the k most likely tokens."),
    top_p: float = typer.Option(None, "--top-p", help="Nucleus sampling mass in (0, 1]."),
    seed: int = typer.Option(None, "--seed", help="Seed for a reproducible sample."),
    as_json: bool = typer.Option(False, "--json", help="Print {run, prompt, text} as JSON."),
) -> None:
    """Generate text from a trained run."""
    from scratchlab.tools.base import ToolError
    from scratchlab.tools.gpt import get_run
    from scratchlab.training.trainer import sample_from_checkpoint

    ctx = common.tool_context()
    try:
        art = get_run(ctx, run)
        text = sample_from_checkpoint(art.path, prompt, max_new_tokens, temperature, top_k, top_p, seed)
    except (ToolError, ValueError, LookupError, OSError) as e:
        common.fail(str(e))
    if as_json:
        common.emit_json({"run": art.id, "prompt": prompt, "text": text})
    else:
        common.console.print(prompt + text, highlight=False, markup=False)


def ablate(
    switches: list[str] = typer.Argument(
        None, help="no_pos_emb rope no_residual no_layernorm relu key=value ..."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the table rows as JSON."),
    detach: bool = typer.Option(False, "--detach", help="Start the job and return at once."),
    **settings_kw,
) -> None:
    """Train a baseline and one variant per switch; print the val-loss table and the chart path."""
    import json as _json
    from pathlib import Path

    from scratchlab.tools.base import ToolError
    from scratchlab.tools.gpt import AblateGPTArgs, ablation_config, launch_ablation

    ctx = common.tool_context(auto_confirm=True)
    given = run_options.overrides(settings_kw, "ablate_gpt", tool_only=True)
    args = AblateGPTArgs(switches=switches or AblateGPTArgs().switches, **given)
    try:
        config, est = ablation_config(ctx, args)
    except (ToolError, ValueError, LookupError, OSError) as e:
        common.fail(str(e))
    job, art = launch_ablation(ctx, config)
    if detach:
        common.emit_json({"ablation": art.id, "job": job.id}) if as_json else common.console.print(
            f"started {job.id}"
        )
        return
    job = common.watch_job(ctx, job, art.id, as_json)
    res_path = Path(art.path) / "ablation.json"
    if as_json:
        rows = _json.loads(res_path.read_text())["rows"] if res_path.exists() else []
        common.emit_json({"ablation": art.id, "job": job.id, "status": job.status, "rows": rows,
                          "plot": (job.result or {}).get("plot"), "error": job.error or None})  # fmt: skip
    else:
        md = Path(art.path) / "ablation.md"
        common.console.print(md.read_text() if md.exists() else job.error, markup=False)
        common.console.print(common.safe(f"chart: {(job.result or {}).get('plot')}"))
    common.exit_for(job.status)


app.command()(
    run_options.with_params(
        ablate,
        run_options.settings_params("ablate_gpt", {"dataset": "-d", "tokenizer": "-t"}, tool_only=True),
    )
)


@app.command()
def compare(
    runs: list[str] = typer.Argument(..., help="Run ids or names to overlay."),
    out: str = typer.Option(None, "--out", help="PNG path (default plots/compare-<ids>.png)."),
    as_json: bool = typer.Option(False, "--json", help="Print {plot, runs} as JSON."),
) -> None:
    """Overlay the val/train loss curves of several runs in one PNG."""
    import json as _json
    from pathlib import Path

    from scratchlab.tools.base import ToolError
    from scratchlab.tools.gpt import get_run
    from scratchlab.training.plots import plot_compare

    ctx = common.tool_context()
    histories, rows = {}, []
    for ref in runs:
        try:
            art = get_run(ctx, ref)
        except ToolError as e:
            common.fail(str(e))
        h = Path(art.path) / "history.json"
        if not h.exists():
            common.fail(f"run {art.id} has no history yet (it writes one at its first eval)")
        hist = _json.loads(h.read_text())
        histories[f"{art.id} {art.name}"] = hist
        last = hist["eval"][-1] if hist.get("eval") else {}
        rows.append(
            {"run": art.id, "name": art.name, "step": last.get("step"), "val_loss": last.get("val_loss")}
        )
    path = (
        Path(out) if out else ctx.workspace.dir("plots") / f"compare-{'-'.join(r['run'] for r in rows)}.png"
    )
    plot = plot_compare(histories, path)
    if as_json:
        common.emit_json({"plot": str(plot), "runs": rows})
    else:
        for r in rows:
            common.console.print(
                common.safe(f"{r['run']} {r['name']}: val {r['val_loss']:.4f} at step {r['step']}")
            )
        common.console.print(common.safe(f"plot: {plot}"))


@app.command("list")
def list_(
    limit: int = typer.Option(20, "--limit", help="How many runs."),
    as_json: bool = typer.Option(False, "--json", help="Print runs as JSON."),
) -> None:
    """List GPT runs, newest first."""
    reg = common.registry()
    runs = reg.list_artifacts("run", limit=limit)
    if as_json:
        common.emit_json([{"run": a.id, "name": a.name, "path": a.path, "config": a.config, "metrics": a.metrics}
                          for a in runs])  # fmt: skip
        return
    rows = ((a.id, a.name, a.metrics.get("status", ""),
             f"{a.metrics['val_loss']:.4f}" if isinstance(a.metrics.get("val_loss"), float) else "",
             f"{a.metrics.get('step', '')}/{a.config.get('max_iters', '')}",
             f"{a.config.get('n_layer')}L {a.config.get('n_head')}H {a.config.get('n_embd')}d", a.config.get("dataset", ""))
            for a in runs)  # fmt: skip
    common.console.print(
        common.safe_table("run", "name", "status", "val loss", "steps", "model", "dataset", rows=rows)
    )


sweep_commands.register_gpt(app)  # sweep, research, sweep-status, sweep-stop (scratchlab/cli/sweep.py)
