"""A GPT run's life, shared by the GPT tools (`scratchlab.tools.gpt`) and the `scratchlab gpt` CLI.

    prep = prepare_training(ctx, {"n_layer": 4, "max_iters": 2000})   # resolve + time a few steps
    if confirm_or_raise(ctx, "train_gpt", prep.config, prep.estimate["estimated_seconds"]):
        job, art = launch_training(ctx, prep)                         # run artifact + background job
    summarize_training(ctx, wait_for_job(ctx.registry, job.id), art)  # a few model-readable lines

A run is a registry artifact of kind "run" (id "run-N", name "gpt-N" unless given) whose folder is
`runs/<id>/`; its training is a job ("job-M") whose metrics rows are logged under the run id. An
ablation is an artifact of kind "ablation" trained by one job over all its variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from scratchlab.lab.jobs import job_elapsed, list_jobs, read_log, start_job
from scratchlab.lab.registry import DEFAULT_NAME_STEMS, Artifact, ArtifactNotFound, Job
from scratchlab.tools.base import ToolContext, ToolError
from scratchlab.training import settings
from scratchlab.training.gpt_config import TrainConfig
from scratchlab.training.switches import DEFAULT_SWITCHES, parse_switch

TRAIN_MODULE = "scratchlab.training.trainer"
ABLATE_MODULE = "scratchlab.training.ablate"
RUN_KIND = "run"
ABLATION_KIND = "ablation"
SAMPLE_PREVIEW_CHARS = 160
MAX_RESULT_CHARS = 600
RESUME_HINT = "Resume it with `scratchlab gpt resume {run}` (or the resume_gpt tool)."


@dataclass
class PreparedRun:
    """A resolved training request, before anything is started."""

    config: dict[str, Any]  # TrainConfig as a dict (out_dir filled in at launch)
    name: str
    estimate: dict[str, Any]  # from trainer.estimate_seconds


def resolve_tokenizer(ctx: ToolContext, tokenizer: str | None) -> str:
    """'char', or the file path of a tokenizer given by registry name/id or path. Raises ToolError."""
    tok = (tokenizer or "char").strip()
    if tok.lower() in ("char", "chars", "character", "characters"):
        return "char"
    try:
        return ctx.registry.get_artifact(tok, kind="tokenizer").path
    except ArtifactNotFound as e:
        if Path(tok).expanduser().exists():
            return str(Path(tok).expanduser().resolve())
        raise ToolError(f"{e}. Use tokenizer='char' or train one first (train_tokenizer).") from e


def _next_run_name(ctx: ToolContext, prefix: str = DEFAULT_NAME_STEMS[RUN_KIND]) -> str:
    names = {a.name for a in ctx.registry.list_artifacts(RUN_KIND)} | {
        a.name for a in ctx.registry.list_artifacts(ABLATION_KIND)
    }
    n = len(names) + 1
    while f"{prefix}-{n}" in names:
        n += 1
    return f"{prefix}-{n}"


def _check_name_free(ctx: ToolContext, kind: str, name: str) -> None:
    try:
        ctx.registry.get_artifact(name, kind=kind)
    except ArtifactNotFound:
        return
    raise ToolError(f"a {kind} named {name!r} already exists; choose another name or omit it")


def prepare_training(ctx: ToolContext, overrides: dict[str, Any], name: str | None = None) -> PreparedRun:
    """Resolve dataset/tokenizer into a TrainConfig dict and time a few steps (no job, no artifact).

    Raises:
        ToolError / ValueError: bad dataset, tokenizer, or model shape.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    overrides["tokenizer"] = resolve_tokenizer(ctx, overrides.get("tokenizer"))
    if name:
        _check_name_free(ctx, RUN_KIND, name)
    cfg = TrainConfig.from_dict({**overrides, "out_dir": str(ctx.workspace.dir("runs") / "_estimate")})
    est = estimate_run(ctx, cfg)  # also fills cfg.data_dir with the prepared dataset
    return PreparedRun(config=cfg.to_dict(), name=name or _next_run_name(ctx), estimate=est)


def estimate_run(ctx: ToolContext, cfg) -> dict[str, Any]:
    """Prepare (or reuse) the dataset in the workspace and time a few steps of `cfg` (a TrainConfig)."""
    from scratchlab.training.data import ensure_dataset  # numpy: 0.2 s the CLI need not pay at start
    from scratchlab.training.trainer import estimate_seconds  # torch: loaded when a run is planned

    meta = ensure_dataset(cfg.dataset, cfg.tokenizer, ctx.workspace.dir("datasets"))
    cfg.data_dir = str(meta.path)
    return estimate_seconds(cfg)


def confirm_or_raise(ctx: ToolContext, action: str, config: dict[str, Any], estimate_s: float) -> bool:
    """Ask the user when the estimate exceeds the context's threshold. True to go ahead.

    Raises:
        Declined: the user said no (see `ToolContext.confirm`).
    """
    shown = {k: v for k, v in config.items() if k not in ("out_dir", "data_dir", "plot_path")}
    surface = action if action in settings.SURFACES else None
    changed = settings.diff_from_defaults({k: v for k, v in shown.items() if k != "switches"}, surface)
    return ctx.confirm(action, {"config": shown, "changed": changed, "estimated_seconds": round(estimate_s)},
                       estimate_s=estimate_s)  # fmt: skip


def launch_training(ctx: ToolContext, prep: PreparedRun) -> tuple[Job, Artifact]:
    """Register the run artifact and start its training job."""
    reg = ctx.registry
    art = reg.add_artifact(RUN_KIND, prep.name, "", config=prep.config, metrics={"status": "queued"})
    run_dir = ctx.workspace.dir("runs") / art.id
    config = {
        **prep.config,
        "out_dir": str(run_dir),
        "plot_path": str(ctx.workspace.dir("plots") / f"{art.id}-loss.png"),
    }
    art = reg.update_artifact(art.id, path=str(run_dir), config=config)
    job = start_job(ctx.workspace, reg, "gpt", TRAIN_MODULE, config, run_dir=run_dir, artifact_id=art.id,
                    total=int(config["max_iters"]), resume_hint=RESUME_HINT.format(run=art.id))  # fmt: skip
    return job, art


def launch_resume(ctx: ToolContext, run: str, max_iters: int | None = None) -> tuple[Job, Artifact]:
    """Start a job continuing `run` from its last checkpoint. Raises ToolError if it has none or is active."""
    art = get_run(ctx, run)
    ckpt = Path(art.path) / "ckpt.pt"
    if not ckpt.exists():
        raise ToolError(
            f"run {art.id} has no checkpoint yet (it saves at its first eval); train it again instead"
        )
    for j in list_jobs(ctx.registry, limit=50):
        if j.artifact_id == art.id and j.status in ("queued", "running"):
            raise ToolError(f"run {art.id} is still training as {j.id}; wait for it or cancel it first")
    config = {**art.config, "resume": True}
    if max_iters is not None:
        config["max_iters"] = int(max_iters)
    ctx.registry.update_artifact(art.id, config=config, metrics={"status": "queued"})
    job = start_job(ctx.workspace, ctx.registry, "gpt", TRAIN_MODULE, config, run_dir=art.path, artifact_id=art.id,
                    total=int(config["max_iters"]), resume_hint=RESUME_HINT.format(run=art.id))  # fmt: skip
    return job, art


def get_run(ctx: ToolContext, ref: str) -> Artifact:
    try:
        return ctx.registry.get_artifact(ref or "last", kind=RUN_KIND)
    except ArtifactNotFound as e:
        raise ToolError(f"{e}. Train one with train_gpt first.") from e


def _f(x: Any) -> str:
    """A loss for humans: 4 decimals, or "n/a" when missing."""
    return f"{x:.4f}" if isinstance(x, int | float) else "n/a"


def fmt_duration(s: float) -> str:
    """Seconds for humans: "42s", "3m07s"."""
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def summarize_training(ctx: ToolContext, job: Job, art: Artifact, sample: bool = True) -> str:
    """A short, model-readable outcome of a finished (or still running) training job."""
    if job.status in ("queued", "running"):
        return (
            f"run {art.id} ({art.name}) is training as {job.id}: step {job.step}/{job.total}; {job.message}"
        )
    if job.status == "failed":
        tail = read_log(job, 6)[-300:]
        return f"Error: training job {job.id} for run {art.id} failed: {job.error[:250]}\nlog tail: {tail}"
    r = job.result or {}
    if job.status == "cancelled":
        return (f"run {art.id} cancelled at step {r.get('step', job.step)}/{job.total}; last checkpoint kept. "
                + RESUME_HINT.format(run=art.id))  # fmt: skip
    text = ""
    if sample and r.get("checkpoint"):
        try:
            from scratchlab.training.trainer import sample_from_checkpoint  # torch, as above

            text = sample_from_checkpoint(art.path, "", max_new_tokens=120, temperature=0.8, seed=0)
        except (ValueError, OSError, LookupError):
            text = ""
    line = " ".join(text.split())[:SAMPLE_PREVIEW_CHARS]
    stop = " (target loss reached)" if r.get("status") == "target" else ""
    out = (
        f"run {art.id} ({art.name}) done{stop}: val loss {_f(r.get('val_loss'))}, best "
        f"{_f(r.get('best_val_loss'))} at step {r.get('best_step')}, train {_f(r.get('train_loss'))}; "
        f"{(r.get('params') or 0) / 1e6:.2f}M params; {fmt_duration(r.get('seconds') or 0)}, "
        f"{r.get('tokens_per_sec') or 0:,.0f} tokens/s{_how(r)}."
        f' sample: "{line}" plot: {r.get("plot")}'
    )
    return out[:MAX_RESULT_CHARS]


def _how(r: dict[str, Any]) -> str:
    """' (cpu, bfloat16, compiled)': where and how a run trained, when the result says."""
    parts = [r.get("device"), r.get("dtype"), "compiled" if r.get("compiled") else None]
    parts = [str(p) for p in parts if p]
    return f" ({', '.join(parts)})" if parts else ""


def describe_job(ctx: ToolContext, job: Job) -> str:
    """One line: id, kind, status, progress, artifact, elapsed, and the message/error/val loss."""
    line = f"{job.id} [{job.kind}] {job.status}: step {job.step}/{job.total}"
    if job.artifact_id:
        line += f", {job.artifact_id}"
    line += f", {fmt_duration(job_elapsed(job))}"
    if job.status in ("queued", "running") and job.message:
        line += f"; {job.message}"
    if job.status == "failed" and job.error:
        line += f"; error: {job.error[:200]}"
    if job.status == "done" and job.result:
        r = job.result
        if "val_loss" in r:
            line += f"; val loss {_f(r['val_loss'])}"
    return line


def ablation_config(ctx: ToolContext, args: BaseModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ablation job config without out_dir, estimate) for `args` (an `AblateGPTArgs`). Raises ValueError
    on bad switches."""
    switches = list(args.switches or DEFAULT_SWITCHES)
    for s in switches:
        parse_switch(s)
    given = args.model_dump(include=set(settings.SURFACES["ablate_gpt"].tool_fields))
    base = {k: v for k, v in given.items() if v is not None}
    base["tokenizer"] = resolve_tokenizer(ctx, args.tokenizer)
    base.setdefault("max_iters", settings.defaults("ablate_gpt")["max_iters"])
    base["eval_interval"] = max(1, base["max_iters"] // 5)
    cfg = TrainConfig.from_dict({**base, "out_dir": str(ctx.workspace.dir("runs") / "_estimate")})
    est = estimate_run(ctx, cfg)
    base["data_dir"] = est["data_dir"]
    est["estimated_seconds"] = round(est["estimated_seconds"] * (len(switches) + 1), 1)
    return {"base": base, "switches": switches}, est


def launch_ablation(ctx: ToolContext, config: dict[str, Any]) -> tuple[Job, Artifact]:
    reg = ctx.registry
    name = _next_run_name(ctx, "ablation")
    art = reg.add_artifact(ABLATION_KIND, name, "", config=config, metrics={"status": "queued"})
    out_dir = ctx.workspace.dir("runs") / art.id
    config = {
        **config,
        "out_dir": str(out_dir),
        "plot_path": str(ctx.workspace.dir("plots") / f"{art.id}.png"),
    }
    config["base"] = {**config["base"], "out_dir": str(out_dir / "baseline")}
    art = reg.update_artifact(art.id, path=str(out_dir), config=config)
    n = len(config["switches"]) + 1
    job = start_job(ctx.workspace, reg, "ablation", ABLATE_MODULE, config, run_dir=out_dir, artifact_id=art.id,
                    total=n * int(config["base"]["max_iters"]))  # fmt: skip
    return job, art


def summarize_ablation(job: Job, art: Artifact) -> str:
    if job.status in ("queued", "running"):
        return f"ablation {art.id} running as {job.id}: step {job.step}/{job.total}; {job.message}"
    if job.status == "failed":
        return f"Error: ablation job {job.id} failed: {job.error[:300]}"
    md_path = Path(art.path) / "ablation.md"
    md = md_path.read_text(encoding="utf-8") if md_path.exists() else ""
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| variant")]
    compact = "\n".join("|".join(c.strip() for c in ln.split("|")[1:4]) for ln in rows)  # variant|val|delta
    head = "ablation cancelled (partial)" if job.status == "cancelled" else f"ablation {art.id} done"
    return f"{head} (variant|val loss|delta):\n{compact}\nchart: {(job.result or {}).get('plot')}"[
        :MAX_RESULT_CHARS
    ]


def run_result_json(job: Job, art: Artifact) -> dict[str, Any]:
    """The CLI's `--json` object for a training job."""
    r = job.result or {}
    return {"run": art.id, "name": art.name, "job": job.id, "status": job.status if job.status != "done" else r.get("status", "done"),
            "val_loss": r.get("val_loss"), "best_val_loss": r.get("best_val_loss"), "train_loss": r.get("train_loss"),
            "params": r.get("params"), "seconds": r.get("seconds"), "tokens_per_sec": r.get("tokens_per_sec"),
            "checkpoint": r.get("checkpoint"), "plot": r.get("plot"), "step": r.get("step", job.step),
            "device": r.get("device"), "dtype": r.get("dtype"), "compiled": r.get("compiled"),
            "error": job.error or None}  # fmt: skip
