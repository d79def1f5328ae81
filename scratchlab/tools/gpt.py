"""GPT tools for the agent: train_gpt, sample_gpt, resume_gpt, ablate_gpt, job_status, cancel_job, list_runs.

Thin adapters over `scratchlab.training` (engine) and `scratchlab.lab.jobs` (background jobs): the
argument schemas (their run settings generated from `scratchlab.training.settings`) and the tools.
What a run goes through (`prepare_training`, `launch_training`, `summarize_training`, ...) is in
`scratchlab.tools.gpt_runs`, shared with the `scratchlab gpt` CLI so both faces behave the same.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, create_model

from scratchlab.lab.jobs import ACTIVE, list_jobs, refresh_job, wait_for_job
from scratchlab.lab.jobs import cancel_job as _cancel_job
from scratchlab.tools.base import Count, ToolContext, ToolError, lab_tool
from scratchlab.tools.gpt_runs import (  # noqa: F401 - run_result_json: re-exported for the CLI
    MAX_RESULT_CHARS,
    RUN_KIND,
    ablation_config,
    confirm_or_raise,
    describe_job,
    fmt_duration,
    get_run,
    launch_ablation,
    launch_resume,
    launch_training,
    prepare_training,
    run_result_json,
    summarize_ablation,
    summarize_training,
)
from scratchlab.training import settings
from scratchlab.training.switches import (
    DEFAULT_SWITCHES,
    KEY_VALUE_PATTERN,
    NAMED_SWITCHES,
    normalise_switch,
    parse_switch,
)

MAX_SAMPLE_TOKENS = 2000


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
        0.8, description="Sampling temperature; 0 is greedy, 0 means deterministic, higher is more random."
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


def _switch(value: Any) -> Any:
    if isinstance(value, str):
        parse_switch(value)  # ValueError (an unknown name or key, a bad value) -> a validation error
        return normalise_switch(value)
    return value


# A switch is one of the named variants or `key=value` of a setting: the schema says so (an enum and a
# pattern), so a model writing the arguments under it can name no variant the engine lacks, and each
# name's gloss in the description maps the user's words to it ("rotary" -> 'rope').
Switch = Annotated[
    Literal[tuple(NAMED_SWITCHES)] | Annotated[str, StringConstraints(pattern=KEY_VALUE_PATTERN)],
    BeforeValidator(_switch),
]
SWITCHES_HELP = (
    "Variants to compare with the baseline: "
    + ", ".join(f"'{name}' ({gloss})" for name, (_, gloss) in NAMED_SWITCHES.items())
    + "; or key=value of a setting, such as mlp_ratio=2, n_head=1, n_layer=2, dropout=0.2."
)

AblateGPTArgs = create_model(
    "AblateGPTArgs",
    switches=(list[Switch], Field(default_factory=lambda: list(DEFAULT_SWITCHES), description=SWITCHES_HELP)),
    **_settings_fields("ablate_gpt"),
    wait=(bool | None, Field(True, description="Wait for the table (true) or return a job id (false).")),
)  # fmt: skip


class JobStatusArgs(BaseModel):
    job_id: str | None = Field(None, description="Job id like 'job-3'; omit to list the latest jobs.")


class CancelJobArgs(BaseModel):
    job_id: str = Field(..., description="Job id like 'job-3' to stop (its checkpoint is kept).")


class ListRunsArgs(BaseModel):
    limit: int | None = Field(10, description="How many runs to list, newest first.")


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
                    f"{fmt_duration(prep.estimate['estimated_seconds'])}. Check it with job_status('{job.id}').")  # fmt: skip
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
            return f"started {job.id} for ablation {art.id}, about {fmt_duration(est['estimated_seconds'])}."
        job = wait_for_job(ctx.registry, job.id, on_progress=ctx.on_progress)
        return summarize_ablation(job, art)

    @lab_tool("job_status", JobStatusArgs)
    def job_status(args: JobStatusArgs) -> str:
        """Status of a background job (progress, losses, errors); without job_id, the latest jobs."""
        if args.job_id:
            return describe_job(ctx, _known_job(ctx, args.job_id))[:MAX_RESULT_CHARS]
        jobs = list_jobs(ctx.registry, limit=5)
        if not jobs:
            return "no jobs yet"
        return "\n".join(describe_job(ctx, j)[:200] for j in jobs)

    @lab_tool("cancel_job", CancelJobArgs)
    def cancel_job(args: CancelJobArgs) -> str:
        """Stop a running background job cleanly (it saves a checkpoint first)."""
        job = _known_job(ctx, args.job_id)
        if job.status not in ACTIVE:  # say so: a summary otherwise reports "stopped" for a finished run
            return f"nothing to stop: {job.id} had already ended ({job.status}). {describe_job(ctx, job)}"
        return describe_job(ctx, _cancel_job(ctx.registry, job.id))

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


def _known_job(ctx: ToolContext, job_id: str):
    """The job `job_id` names (refreshed), or a ToolError that lists the jobs there are."""
    try:
        return refresh_job(ctx.registry, job_id.strip())
    except LookupError:
        jobs = list_jobs(ctx.registry, limit=5)
        there = ", ".join(f"{j.id} ({j.status})" for j in jobs) or "none yet"
        raise ToolError(f"there is no {job_id.strip()}; the latest jobs are: {there}") from None
