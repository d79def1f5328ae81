"""`scratchlab agent tune` and `scratchlab models`: tune the local router, list the chat models with scores.

scratchlab agent tune                          # LoRA on the 0.5B for scratchlab's tools (background job)
scratchlab agent tune --base smollm2 --max-iters 20 --wait
scratchlab --model local:0.5b+tuned            # the REPL on the tuned model
scratchlab models --json                       # local models, their weights, scores where measured
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from scratchlab.cli import common

app = typer.Typer(help="The agent itself: tune its router on your tools.", no_args_is_help=True)
SCORES_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "agent_tune.json"


@app.command("tune")
def tune(
    base: str = typer.Option("0.5b", "--base", help="Base chat model to tune: 0.5b or smollm2."),
    name: str = typer.Option("", "--name", help="Adapter folder name (default router-<base>)."),
    max_iters: int = typer.Option(180, "--max-iters", help="Optimizer steps."),
    batch_size: int = typer.Option(
        1, "--batch-size", help="Decisions per micro step (grad_accum=4 micro steps per step)."
    ),
    lr: float = typer.Option(4e-4, "--lr", help="Peak learning rate."),
    r: int = typer.Option(16, "--r", help="LoRA rank."),
    n_augment: int = typer.Option(1, "--n-augment", help="Label-preserving variants per bank example."),
    accepted: bool = typer.Option(
        False, "--accepted", help="Also train on this workspace's accepted tool calls (its conversations)."
    ),
    prompt: str = typer.Option(
        "compact",
        "--prompt",
        help="System prompt to tune on and run with: compact (one line a tool) or catalogue.",
    ),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    num_threads: int = typer.Option(None, "--num-threads", help="CPU threads (default: the idle cores)."),
    wait: bool = typer.Option(
        False, "--wait", help="Follow the job until it ends (Ctrl-C leaves it running)."
    ),
    json_out: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Tune the local model's tool router: a LoRA trained on the example bank, rendered exactly as the
    runtime prompt, exported for llama.cpp. Runs as a background job; run it again to resume."""
    from scratchlab.agent.tune import TuneConfig, TuneError, start_tune
    from scratchlab.lab.jobs import JobLeftRunning, wait_for_job

    try:
        cfg = TuneConfig(base=base, name=name, max_iters=max_iters, batch_size=batch_size, lr=lr, r=r,
                         n_augment=n_augment, accepted=accepted, prompt=prompt, device=device, num_threads=num_threads)  # fmt: skip
        job = start_tune(common.workspace(), common.registry(), cfg)
    except TuneError as e:
        common.fail(str(e))
    if wait:
        try:
            job = wait_for_job(common.registry(), job.id, on_progress=lambda j: common.console.print(
                f"{j.id} {j.step}/{j.total} {j.message}", highlight=False))  # fmt: skip
        except (JobLeftRunning, KeyboardInterrupt):
            pass
    row = {"job": job.id, "status": job.status, "name": cfg.name, "base": cfg.base,
           "model": f"local:{cfg.base}+tuned", "error": job.error or None}  # fmt: skip
    if json_out:
        common.emit_json(row)
    else:
        common.console.print(
            f"{job.id} ({job.status}): tuning local:{cfg.base} as {cfg.name}. Follow with `scratchlab jobs "
            f"status {job.id} --wait`; use it with `--model local:{cfg.base}+tuned`.", highlight=False)  # fmt: skip
    common.exit_for(job.status if job.status in ("failed", "cancelled") else None)


def _scores() -> dict[str, dict]:
    """{model spec: scores} measured by benchmarks/agent_tune.py (in a source checkout), else {}."""
    try:
        return json.loads(SCORES_FILE.read_text()).get("scores", {})
    except (OSError, ValueError):
        return {}


def models_command(json_out: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Local chat models: assemble and verify their weights (sha256), show the default, tuned adapters
    and the routing scores measured for each (benchmarks/results/agent_tune.md)."""
    from scratchlab.agent.llm import DEFAULT_LOCAL, LOCAL_KEYS
    from scratchlab.agent.tune import tune_scores
    from scratchlab.models.weights import WeightsError, gguf_path

    ws = common.workspace()
    scores = _scores()
    rows = []
    for key in LOCAL_KEYS:
        try:
            path, ok = str(gguf_path(key, ws.dir("models"))), "ok"
        except WeightsError as e:
            path, ok = "", str(e)
        rows.append({"model": f"local:{key}", "default": key == DEFAULT_LOCAL, "path": path, "status": ok,
                     "scores": scores.get(f"local:{key}")})  # fmt: skip
    for spec, meta in tune_scores(ws).items():
        rows.append({"model": spec, "default": False, "path": meta["adapter_gguf"], "status": "ok",
                     "scores": scores.get(spec), "tune": meta.get("metrics")})  # fmt: skip
    if json_out:
        common.emit_json(rows)
        return
    for r in rows:
        s = r["scores"] or {}
        shown = ", ".join(f"{k} {v}" for k, v in s.items()) if s else "not measured"
        common.console.print(f"{r['model']:18} {'(default) ' if r['default'] else ''}{r['status']}  "
                             f"{r['path']}\n{'':18} scores: {shown}", highlight=False)  # fmt: skip
