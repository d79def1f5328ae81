"""GPT tools for the agent: train_gpt, sample_gpt, resume_gpt, ablate_gpt, job_status, cancel_job, list_runs.

Thin adapters over `scratchlab.training` (engine) and `scratchlab.lab.jobs` (background jobs). The
functions below the schemas (`prepare_training`, `launch_training`, `summarize_training`, ...) are
shared with the `scratchlab gpt` CLI so both faces behave the same.

A run is a registry artifact of kind "run" (id "run-N", name "gpt-N" unless given) whose folder is
`runs/<id>/`; its training is a job ("job-M") whose metrics rows are logged under the run id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, create_model

from scratchlab.lab.jobs import cancel_job as _cancel_job
from scratchlab.lab.jobs import job_elapsed, list_jobs, read_log, refresh_job, start_job, wait_for_job
from scratchlab.lab.registry import Artifact, ArtifactNotFound, Job
from scratchlab.tools.base import Count, ToolContext, ToolError, lab_tool
from scratchlab.training import settings
from scratchlab.training.gpt_config import TrainConfig

TRAIN_MODULE = "scratchlab.training.trainer"
ABLATE_MODULE = "scratchlab.training.ablate"
RUN_KIND = "run"
ABLATION_KIND = "ablation"
SAMPLE_PREVIEW_CHARS = 160
MAX_RESULT_CHARS = 600
MAX_SAMPLE_TOKENS = 2000
RESUME_HINT = "Resume it with `scratchlab gpt resume {run}` (or the resume_gpt tool)."


def _settings_fields(surface: str) -> dict[str, Any]:
    """pydantic field definitions of a settings surface (`scratchlab.training.settings`): the run
    settings' types, defaults and descriptions come from the config dataclass, written once there."""
    return {
        k: (tp, Field(default, description=desc))
        for k, tp, default, desc in settings.tool_fields(surface, Count)
    }


TrainGPTArgs = create_model(
    "TrainGPTArgs",
    **_settings_fields("train_gpt"),
    name=(str | None, Field(None, description="Optional name for the run (default gpt-N).")),
    wait=(bool | None, Field(True, description="Wait for training to finish (true) or return a job id at once (false).")),
)  # fmt: skip


class SampleGPTArgs(BaseModel):
    run: str = Field("last", description="Run id ('run-3'), name ('gpt-3') or 'last'.")
    prompt: str | None = Field("", description="Text to continue; empty starts from scratch.")
    max_new_tokens: Count | None = Field(200, description="How many tokens to generate (at most 2000).")
    temperature: float | None = Field(
        0.8, description="Sampling temperature; 0 is greedy, higher is more random."
    )
    top_k: Count | None = Field(None, description="Sample only among the k most likely tokens.")
    top_p: float | None = Field(
        None, description="Nucleus sampling: smallest token set with this total probability (0-1]."
    )
    seed: int | None = Field(None, description="Random seed for reproducible samples.")


class ResumeGPTArgs(BaseModel):
    run: str = Field("last", description="Run id, name or 'last' to continue from its last checkpoint.")
    max_iters: Count | None = Field(None, description="New total number of steps (default: the run's own).")
    wait: bool | None = Field(True, description="Wait for it to finish (true) or return a job id (false).")


AblateGPTArgs = create_model(
    "AblateGPTArgs",
    switches=(list[str], Field(
        default_factory=lambda: ["no_pos_emb", "n_head=1", "no_residual", "no_layernorm", "relu", "mlp_ratio=2"],
        description="Variants to compare with the baseline: no_pos_emb, rope, no_residual, no_layernorm, relu, "
        "or key=value such as mlp_ratio=2, n_head=1, n_layer=2, dropout=0.2.",
    )),
    **_settings_fields("ablate_gpt"),
    wait=(bool | None, Field(True, description="Wait for the table (true) or return a job id (false).")),
)  # fmt: skip


class JobStatusArgs(BaseModel):
    job_id: str | None = Field(None, description="Job id like 'job-3'; omit to list the latest jobs.")


class CancelJobArgs(BaseModel):
    job_id: str = Field(..., description="Job id like 'job-3' to stop (its checkpoint is kept).")


class ListRunsArgs(BaseModel):
    limit: int | None = Field(10, description="How many runs to list, newest first.")


# ---- shared with the CLI ---------------------------------------------------------------------------
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


def _next_run_name(ctx: ToolContext, prefix: str = "gpt") -> str:
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
    est = _estimate(ctx, cfg)  # also fills cfg.data_dir with the prepared dataset
    return PreparedRun(config=cfg.to_dict(), name=name or _next_run_name(ctx), estimate=est)


def _estimate(ctx: ToolContext, cfg) -> dict[str, Any]:
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


def _fmt_s(s: float) -> str:
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
        f"{(r.get('params') or 0) / 1e6:.2f}M params; {_fmt_s(r.get('seconds') or 0)}, "
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
    line += f", {_fmt_s(job_elapsed(job))}"
    if job.status in ("queued", "running") and job.message:
        line += f"; {job.message}"
    if job.status == "failed" and job.error:
        line += f"; error: {job.error[:200]}"
    if job.status == "done" and job.result:
        r = job.result
        if "val_loss" in r:
            line += f"; val loss {_f(r['val_loss'])}"
    return line


def ablation_config(ctx: ToolContext, args: AblateGPTArgs) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ablation job config without out_dir, estimate) for `args`. Raises ValueError on bad switches."""
    from scratchlab.training.ablate import DEFAULT_SWITCHES, parse_switch  # torch: loaded when planning

    switches = list(args.switches or DEFAULT_SWITCHES)
    for s in switches:
        parse_switch(s)
    given = args.model_dump(include=set(settings.SURFACES["ablate_gpt"].tool_fields))
    base = {k: v for k, v in given.items() if v is not None}
    base["tokenizer"] = resolve_tokenizer(ctx, args.tokenizer)
    base.setdefault("max_iters", settings.defaults("ablate_gpt")["max_iters"])
    base["eval_interval"] = max(1, base["max_iters"] // 5)
    cfg = TrainConfig.from_dict({**base, "out_dir": str(ctx.workspace.dir("runs") / "_estimate")})
    est = _estimate(ctx, cfg)
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


# ---- tools -------------------------------------------------------------------------------------------
def make_tools(ctx: ToolContext) -> list[BaseTool]:
    @lab_tool("train_gpt", TrainGPTArgs)
    def train_gpt(args: TrainGPTArgs) -> str:
        """Train a small GPT language model from scratch (background job with progress). Returns the run id, val loss, speed, a sample and a loss-plot path."""
        overrides = args.model_dump(exclude={"name", "wait"})
        prep = prepare_training(ctx, overrides, args.name)
        if not confirm_or_raise(ctx, "train_gpt", prep.config, prep.estimate["estimated_seconds"]):
            return "Training not started: the user declined. Suggest fewer max_iters or a smaller model."
        job, art = launch_training(ctx, prep)
        if args.wait is False:
            return (f"started {job.id} training run {art.id} ({art.name}), about "
                    f"{_fmt_s(prep.estimate['estimated_seconds'])}. Check it with job_status('{job.id}').")  # fmt: skip
        job = wait_for_job(ctx.registry, job.id, on_progress=ctx.on_progress)
        return summarize_training(ctx, job, art)

    @lab_tool("sample_gpt", SampleGPTArgs)
    def sample_gpt(args: SampleGPTArgs) -> str:
        """Generate text from a trained GPT run (temperature, top_k, top_p, seed)."""
        from scratchlab.training.trainer import sample_from_checkpoint  # torch: loaded when sampling

        art = get_run(ctx, args.run)
        n = args.max_new_tokens if args.max_new_tokens is not None else 200
        if not 1 <= n <= MAX_SAMPLE_TOKENS:
            raise ToolError(f"max_new_tokens must be between 1 and {MAX_SAMPLE_TOKENS}, got {n}")
        text = sample_from_checkpoint(art.path, args.prompt or "", n,
                                      0.8 if args.temperature is None else args.temperature,
                                      args.top_k, args.top_p, args.seed)  # fmt: skip
        return f"{art.id} sample:\n{(args.prompt or '') + text}"[: MAX_RESULT_CHARS * 4]

    @lab_tool("resume_gpt", ResumeGPTArgs)
    def resume_gpt(args: ResumeGPTArgs) -> str:
        """Continue a stopped, cancelled or crashed GPT run from its last checkpoint (optionally to more steps)."""
        job, art = launch_resume(ctx, args.run, args.max_iters)
        if args.wait is False:
            return f"started {job.id} resuming run {art.id}. Check it with job_status('{job.id}')."
        job = wait_for_job(ctx.registry, job.id, on_progress=ctx.on_progress)
        return summarize_training(ctx, job, ctx.registry.get_artifact(art.id))

    @lab_tool("ablate_gpt", AblateGPTArgs)
    def ablate_gpt(args: AblateGPTArgs) -> str:
        """Ablation study: train a baseline GPT and one variant per switch (same data and steps) and return a table of val loss and delta vs baseline plus a chart."""
        config, est = ablation_config(ctx, args)
        if not confirm_or_raise(ctx, "ablate_gpt", {**config["base"], "switches": config["switches"]},
                                est["estimated_seconds"]):  # fmt: skip
            return "Ablation not started: the user declined. Suggest fewer switches or max_iters."
        job, art = launch_ablation(ctx, config)
        if args.wait is False:
            return f"started {job.id} for ablation {art.id}, about {_fmt_s(est['estimated_seconds'])}."
        job = wait_for_job(ctx.registry, job.id, on_progress=ctx.on_progress)
        return summarize_ablation(job, art)

    @lab_tool("job_status", JobStatusArgs)
    def job_status(args: JobStatusArgs) -> str:
        """Status of a background job (progress, losses, errors); without job_id, the latest jobs."""
        if args.job_id:
            job = refresh_job(ctx.registry, args.job_id.strip())
            return describe_job(ctx, job)[:MAX_RESULT_CHARS]
        jobs = list_jobs(ctx.registry, limit=5)
        if not jobs:
            return "no jobs yet"
        return "\n".join(describe_job(ctx, j)[:200] for j in jobs)

    @lab_tool("cancel_job", CancelJobArgs)
    def cancel_job(args: CancelJobArgs) -> str:
        """Stop a running background job cleanly (it saves a checkpoint first)."""
        job = _cancel_job(ctx.registry, args.job_id.strip())
        return describe_job(ctx, job)

    @lab_tool("list_runs", ListRunsArgs)
    def list_runs(args: ListRunsArgs) -> str:
        """List trained GPT runs, newest first, with val loss and size."""
        runs = ctx.registry.list_artifacts(RUN_KIND, limit=max(1, min(args.limit or 10, 50)))
        if not runs:
            return "no runs yet; train one with train_gpt"
        lines = []
        for a in runs:
            m, c = a.metrics, a.config
            val = f"val {m['val_loss']:.4f}" if isinstance(m.get("val_loss"), float) else m.get("status", "?")
            lines.append(f"{a.id} {a.name}: {val}, {c.get('n_layer')}L/{c.get('n_head')}H/{c.get('n_embd')}d, "
                         f"{m.get('step', 0)}/{c.get('max_iters')} steps, {c.get('dataset')}")  # fmt: skip
        return "\n".join(lines)[: MAX_RESULT_CHARS * 2]

    return [train_gpt, sample_gpt, resume_gpt, ablate_gpt, job_status, cancel_job, list_runs]


def run_result_json(job: Job, art: Artifact) -> dict[str, Any]:
    """The CLI's `--json` object for a training job."""
    r = job.result or {}
    return {"run": art.id, "name": art.name, "job": job.id, "status": job.status if job.status != "done" else r.get("status", "done"),
            "val_loss": r.get("val_loss"), "best_val_loss": r.get("best_val_loss"), "train_loss": r.get("train_loss"),
            "params": r.get("params"), "seconds": r.get("seconds"), "tokens_per_sec": r.get("tokens_per_sec"),
            "checkpoint": r.get("checkpoint"), "plot": r.get("plot"), "step": r.get("step", job.step),
            "device": r.get("device"), "dtype": r.get("dtype"), "compiled": r.get("compiled"),
            "error": job.error or None}  # fmt: skip
