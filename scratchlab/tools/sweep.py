"""Sweep tools for the agent: sweep_gpt, sweep_lora, research_gpt, sweep_status, stop_sweep, resume_sweep.

Thin adapters over `scratchlab.training.sweep` (Optuna search with pruning) and
`scratchlab.training.research` (keep/discard loop). A sweep is a registry artifact of kind "sweep"
(a research loop: kind "research"), folder `runs/<id>/` with `ledger.md`, `ledger.json` and the
best-so-far plot; it runs as one background job ("sweep" / "research") whose trials are ordinary
registered runs. The planning and launch functions are shared with `scratchlab gpt sweep` /
`gpt research` / `lora sweep`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, create_model

from scratchlab.lab.jobs import cancel_job, refresh_job, start_job, wait_for_job
from scratchlab.lab.registry import DEFAULT_NAME_STEMS, Artifact, ArtifactNotFound, Job
from scratchlab.tools.base import Count, ToolContext, ToolError, lab_tool
from scratchlab.tools.lora import BASE_HELP
from scratchlab.training import settings
from scratchlab.training.report import fmt_eta
from scratchlab.training.sweep_space import VOCAB, SpaceError, describe, names_help, parse_space

SWEEP_KIND, RESEARCH_KIND = "sweep", "research"
MODULES = {SWEEP_KIND: "scratchlab.training.sweep", RESEARCH_KIND: "scratchlab.training.research"}
TRIAL_ITERS = 500  # steps per trial unless the request says
DEFAULT_SEARCH = (
    "lr",
)  # a sweep names no setting: the learning rate, the one that matters most at a fixed size
DEFAULT_MINUTES = 10.0  # a sweep's budget when the request names none
MAX_RESULT_CHARS = 1200
SEARCH_HELP = ("Settings to search, each 'name' (its default range), 'name=v1,v2,v3' (these values) or "
               "'name=low..high', e.g. ['learning_rate'], ['vocab_size=256,512,1024'], ['n_layer=2,4', 'dropout']. "
               + names_help("gpt"))  # fmt: skip
_GPT_FIXED = {k: (tp, Field(TRIAL_ITERS, description="Steps per trial (the same for every trial).") if k == "max_iters"
                  else Field(d, description="Fixed for every trial: " + desc))
              for k, tp, d, desc in settings.tool_fields("train_gpt", Count)}  # fmt: skip
_BUDGET = {
    "budget_minutes": (float | None, Field(None, description="Wall-clock budget in minutes ('10 minutes' -> 10); "
                                           f"default {DEFAULT_MINUTES:g} when n_trials is not given either.")),
    "n_trials": (Count | None, Field(None, description="Budget in trials (runs), e.g. 8.")),
    "name": (str | None, Field(None, description="Optional name (default sweep-N).")),
    "wait": (bool | None, Field(True, description="Wait with progress (true) or return the job id at once (false).")),
}  # fmt: skip

SweepGPTArgs = create_model(
    "SweepGPTArgs",
    search=(list[str] | None, Field(default_factory=lambda: list(DEFAULT_SEARCH),
                                    description=SEARCH_HELP + " Default: ['learning_rate'].")),
    **_GPT_FIXED,
    sampler=(Literal["tpe", "grid", "random"] | None, Field("tpe", description="'tpe' (Bayesian, default), 'grid' (every combination) or 'random'.")),
    pruner=(Literal["median", "halving", "none"] | None, Field("median", description="Stop losing trials early: 'median' (median pruning), 'halving' (successive halving) or 'none' (no pruning, no early stopping).")),
    **_BUDGET,
)  # fmt: skip
ResearchGPTArgs = create_model(
    "ResearchGPTArgs",
    search=(list[str] | None, Field(None, description="Settings the loop may change (default lr, n_layer, n_embd, "
                                    "dropout, warmup_iters, batch_size); same forms as sweep_gpt's search. "
                                    + names_help("gpt"))),
    **_GPT_FIXED,
    target_loss=(float | None, Field(None, description="Stop once the val loss is at or below this, e.g. 2.0.")),
    plateau=(Count | None, Field(4, description="Stop after this many changes in a row that did not help.")),
    **_BUDGET,
)  # fmt: skip
SweepLoraArgs = create_model(
    "SweepLoraArgs",
    search=(list[str], Field(..., description=f"LoRA settings to search, same forms as sweep_gpt: {describe('lora')}. "
                             + names_help("lora"))),
    base=(str | None, Field("last", description=BASE_HELP)),  # the bases named, as finetune_lora's
    data=(str, Field(..., description=settings.help_of("finetune_lora", "data"))),
    max_iters=(Count | None, Field(100, description="Steps per trial (the same for every trial).")),
    **_BUDGET,
)  # fmt: skip


class SweepRefArgs(BaseModel):
    sweep: str | None = Field(
        "last", description="Which sweep or research loop: 'last' (the newest) unless the user names one."
    )


class ResumeSweepArgs(SweepRefArgs):
    extra_minutes: float | None = Field(
        None, description="Add this many minutes to the budget before resuming."
    )
    wait: bool | None = Field(True, description="Wait with progress (true) or return at once (false).")


# ---- shared with the CLI ---------------------------------------------------------------------------
def _budget(args: Any) -> tuple[float | None, int | None]:
    minutes, n = args.budget_minutes, args.n_trials
    if minutes is None and n is None:
        minutes = DEFAULT_MINUTES
    if (minutes is not None and minutes <= 0) or (n is not None and n <= 0):
        raise ToolError("budget_minutes and n_trials must be positive, e.g. budget_minutes=10")
    return (minutes * 60 if minutes else None), n


def _space(specs: list[str] | None, kind: str, default: tuple[str, ...] = ()) -> dict[str, Any]:
    try:
        return parse_space(list(specs or default), kind)
    except SpaceError as e:
        raise ToolError(str(e)) from None


def _vocab_tokenizers(ctx: ToolContext, dataset: str, sizes: list[int]) -> dict[str, str]:
    """A BPE tokenizer per vocab size on `dataset`: an existing one, or trained and registered now."""
    from scratchlab.datasets import load_text  # the BPE engine loads only for vocab sweeps
    from scratchlab.models.bpe import train_tokenizer
    from scratchlab.tools.tokenizer import save_new_tokenizer, tokenizer_name

    out, text = {}, None
    for size in sizes:
        have = [a for a in ctx.registry.list_artifacts("tokenizer")
                if a.config.get("requested_vocab_size") == size and a.config.get("dataset") == dataset]  # fmt: skip
        if have:
            out[str(size)] = have[0].path
            continue
        text = text if text is not None else load_text(dataset)
        name = tokenizer_name(ctx.registry, ctx.workspace, None, size, dataset)
        tok = train_tokenizer(text, size, name=name)
        art, _ = save_new_tokenizer(ctx.registry, ctx.workspace, tok, name, dataset, size, 0.0)
        out[str(size)] = art.path
    return out


def plan_gpt(ctx: ToolContext, args: Any, research: bool = False) -> tuple[dict[str, Any], float]:
    """(sweep or research config without ids and paths, estimated seconds) for a request."""
    from scratchlab.tools.gpt import prepare_training  # times a few steps (torch) when a sweep is planned
    from scratchlab.training.research import DEFAULT_SPACE

    fixed = {k: getattr(args, k) for k in _GPT_FIXED if getattr(args, k) is not None}
    fixed.setdefault("max_iters", TRIAL_ITERS)
    fixed["eval_interval"] = max(1, int(fixed["max_iters"]) // 5)  # pruning points
    space = _space(args.search, "gpt", DEFAULT_SPACE if research else DEFAULT_SEARCH)
    tokenizers = {}
    if VOCAB in space:
        sizes = space[VOCAB].get("choices") or []
        if not sizes:
            raise ToolError("vocab_size takes a list of sizes, e.g. 'vocab_size=256,512,1024'")
        tokenizers = _vocab_tokenizers(ctx, fixed.get("dataset", "shakespeare"), sizes)
        fixed["tokenizer"] = tokenizers[str(sizes[0])]
    prep = prepare_training(ctx, fixed)
    base = {k: v for k, v in prep.config.items() if k not in ("out_dir", "plot_path", "resume")}
    if tokenizers:
        base.pop("data_dir", None)  # one dataset per tokenizer, prepared per trial
    budget_s, n = _budget(args)
    trial_s = float(prep.estimate["estimated_seconds"])
    est = budget_s or (n or 1) * trial_s * (1 + 2 / max(1, n or 1))
    cfg = {"kind": "gpt", "base": base, "space": space, "budget_s": budget_s,
           "metric": "bits_per_char" if tokenizers else "val_loss", "title": _title(space, base)}  # fmt: skip
    if research:
        cfg.update(max_trials=n, target=args.target_loss, plateau=int(args.plateau or 4))
    else:
        cfg.update(
            n_trials=n, tokenizers=tokenizers, sampler=args.sampler or "tpe", pruner=args.pruner or "median"
        )
    return cfg, est


def plan_lora(ctx: ToolContext, args: Any) -> tuple[dict[str, Any], float]:
    """(LoRA sweep config, estimated seconds): the base and data resolved as `finetune_lora` does."""
    from scratchlab.tools.lora import FinetuneLoraArgs, materialize, plan_finetune, resolve_data

    fargs = FinetuneLoraArgs(base=args.base, data=args.data, max_iters=args.max_iters)
    b, _, base, trial_s = plan_finetune(ctx, fargs)
    b = materialize(ctx, b)
    base.update(base_path=str(b.path), base_ref=b.artifact_id, data=str(resolve_data(ctx, args.data)))
    base["eval_interval"] = max(1, int(base["max_iters"]) // 4)
    budget_s, n = _budget(args)
    space = _space(args.search, "lora")
    cfg = {"kind": "lora", "base": base, "space": space, "budget_s": budget_s, "n_trials": n,
           "title": f"LoRA sweep: {', '.join(space)} on {Path(args.data).name}"}  # fmt: skip
    return cfg, budget_s or (n or 1) * trial_s


def _title(space: dict[str, Any], base: dict[str, Any]) -> str:
    shape = f"{base.get('n_layer')}L {base.get('n_embd')}d"
    return f"{', '.join(space)} for a {shape} GPT on {Path(str(base.get('dataset'))).name}, {base.get('max_iters')} steps/run"


def launch(
    ctx: ToolContext, kind: str, config: dict[str, Any], name: str | None = None
) -> tuple[Job, Artifact]:
    """Register the sweep (or research) artifact and start its job."""
    from scratchlab.training.sweep import storage_url

    reg = ctx.registry
    name = name or reg.free_name(kind, f"{DEFAULT_NAME_STEMS[kind]}-{len(reg.list_artifacts(kind)) + 1}")
    art = reg.add_artifact(kind, name, "", config=config, metrics={"status": "queued"})
    out_dir = ctx.workspace.dir("runs") / art.id
    id_key = "sweep_id" if kind == SWEEP_KIND else "research_id"
    config = {**config, id_key: art.id, "name": name, "out_dir": str(out_dir), "home": str(ctx.workspace.root),
              "plot_path": str(ctx.workspace.dir("plots") / f"{art.id}.png"), "storage": storage_url(ctx.workspace.root),
              "title": f"{name}: {config.get('title', '')}"}  # fmt: skip
    return _start(ctx, kind, reg.update_artifact(art.id, path=str(out_dir), config=config), config)


def _start(ctx: ToolContext, kind: str, art: Artifact, config: dict[str, Any]) -> tuple[Job, Artifact]:
    total = int(config.get("budget_s") or 1)
    job = start_job(ctx.workspace, ctx.registry, kind, MODULES[kind], config, run_dir=art.path, artifact_id=art.id,
                    total=total, resume_hint=f"Resume it with resume_sweep('{art.id}').")  # fmt: skip
    return job, ctx.registry.update_artifact(art.id, config={"job": job.id})


def find(ctx: ToolContext, ref: str | None) -> Artifact:
    """A sweep or research loop by id, name or 'last'. Raises ToolError when there is none."""
    ref = (ref or "last").strip()
    if ref.lower() in ("last", "latest", "it", "the sweep", "sweep"):
        arts = ctx.registry.list_artifacts(SWEEP_KIND, 1) + ctx.registry.list_artifacts(RESEARCH_KIND, 1)
        if arts:
            return max(arts, key=lambda a: (a.created_at, a.id))
    for kind in (SWEEP_KIND, RESEARCH_KIND):
        try:
            return ctx.registry.get_artifact(ref, kind=kind)
        except ArtifactNotFound:
            continue
    raise ToolError(f"no sweep or research loop {ref!r}; start one with sweep_gpt or research_gpt")


def job_of(ctx: ToolContext, art: Artifact) -> Job | None:
    jid = art.config.get("job")
    return refresh_job(ctx.registry, jid) if jid else None


def ledger(art: Artifact) -> dict[str, Any]:
    p = Path(art.path) / "ledger.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def describe_sweep(ctx: ToolContext, art: Artifact, table: bool = False) -> str:
    """Status, best so far, ETA, and (when asked or finished) the ledger's lines, table rows and plot."""
    job, led = job_of(ctx, art), ledger(art)
    head = f"{art.kind} {art.id} ({art.name})"
    if job is not None and job.status in ("queued", "running"):
        left = f"; about {fmt_eta(job.total - job.step)} left" if art.config.get("budget_s") else ""
        out = [f"{head} is running as {job.id}: {job.message or job.status}{left}"]
    elif job is not None:
        out = [f"{head} {job.status}" + (f": {job.error[:200]}" if job.status == "failed" else "")
               + (f" ({led.get('stopped_because')})" if led.get("stopped_because") else "")]  # fmt: skip
        if job.status == "cancelled":
            out.append(f"the study is kept; resume_sweep('{art.id}') continues it")
    else:
        out = [head]
    out += led.get("lines", [])
    if (table or (job is not None and job.status == "done")) and led.get("rows"):
        rows = sorted((r for r in led["rows"] if r.get("value") is not None), key=lambda r: r["value"])[:6]
        out.append(
            "top (#|settings|"
            + led.get("metric", "val_loss")
            + "|status): "
            + "; ".join(
                f"#{r['n']}|{r.get('change') or _params(r['params'])}|{r['value']:.4f}|{r['status']}"
                for r in rows
            )
        )
    if led.get("plot"):
        out.append(f"plot: {led['plot']}; table: {Path(art.path) / 'ledger.md'}")
    return "\n".join(out)[:MAX_RESULT_CHARS]


def _params(p: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())


def stop(ctx: ToolContext, ref: str | None) -> str:
    art = find(ctx, ref)
    job = job_of(ctx, art)
    if job is None or job.status not in ("queued", "running"):
        return f"{art.kind} {art.id} is not running ({job.status if job else 'no job'}); nothing to stop"
    cancel_job(ctx.registry, job.id)
    return describe_sweep(ctx, art) + f"\nstopped; resume_sweep('{art.id}') continues the same study"


def resume(ctx: ToolContext, ref: str | None, extra_minutes: float | None = None) -> tuple[Job, Artifact]:
    """Start a new job on the same study (or research state); the spent time still counts."""
    art = find(ctx, ref)
    job = job_of(ctx, art)
    if job is not None and job.status in ("queued", "running"):
        raise ToolError(f"{art.id} is still running as {job.id}; ask for its status or stop it first")
    config = {k: v for k, v in art.config.items() if k != "job"}
    if extra_minutes:
        config["budget_s"] = (config.get("budget_s") or ledger(art).get("spent_s") or 0) + extra_minutes * 60
    art = ctx.registry.update_artifact(art.id, config=config, metrics={"status": "queued"})
    return _start(ctx, art.kind, art, config)


# ---- tools -------------------------------------------------------------------------------------------
def make_tools(ctx: ToolContext) -> list[BaseTool]:
    def run(
        kind: str, action: str, cfg: dict[str, Any], est: float, name: str | None, wait: bool | None
    ) -> str:
        if not ctx.confirm(action, {"config": cfg["base"], "search": cfg["space"], "estimated_seconds": round(est),
                                    "changed": settings.diff_from_defaults(cfg["base"]) if cfg["kind"] == "gpt" else {}},
                           estimate_s=est):  # fmt: skip
            return "Not started: the user declined. Suggest a smaller budget."
        job, art = launch(ctx, kind, cfg, name)
        if wait is False:
            return f"started {art.kind} {art.id} as {job.id} (about {fmt_eta(est)}). Ask for sweep_status('{art.id}')."
        wait_for_job(ctx.registry, job.id, on_progress=ctx.on_progress)
        return describe_sweep(ctx, ctx.registry.get_artifact(art.id), table=True)

    @lab_tool("sweep_gpt", SweepGPTArgs)
    def sweep_gpt(args: Any) -> str:
        """Hyperparameter sweep: train many short GPT runs over a search space (learning rate, vocab size, layers, ...) within a budget in minutes or trials, prune losing runs, and report the best settings, a table and a plot. Use for 'find a good X', 'try A, B and C and tell me which is best'."""
        cfg, est = plan_gpt(ctx, args)
        return run(SWEEP_KIND, "sweep_gpt", cfg, est, args.name, args.wait)

    @lab_tool("research_gpt", ResearchGPTArgs)
    def research_gpt(args: Any) -> str:
        """Research loop: keep improving a GPT's val loss by changing one setting at a time, keeping changes that help and discarding the rest, until a time budget, a target loss or a plateau. Use for 'keep improving ...', 'get the val loss under X'."""
        cfg, est = plan_gpt(ctx, args, research=True)
        return run(RESEARCH_KIND, "research_gpt", cfg, est, args.name, args.wait)

    @lab_tool("sweep_lora", SweepLoraArgs)
    def sweep_lora(args: Any) -> str:
        """Hyperparameter sweep of LoRA fine-tuning (rank r, lora_alpha, lora_dropout, lr) within a budget; reports the best adapter settings."""
        cfg, est = plan_lora(ctx, args)
        return run(SWEEP_KIND, "sweep_lora", cfg, est, args.name, args.wait)

    @lab_tool("sweep_status", SweepRefArgs)
    def sweep_status(args: SweepRefArgs) -> str:
        """How a sweep or research loop is going or how it ended: trials run and pruned, best so far, ETA, seed noise, what helped most, the results table and plot."""
        return describe_sweep(ctx, find(ctx, args.sweep), table=True)

    @lab_tool("stop_sweep", SweepRefArgs)
    def stop_sweep(args: SweepRefArgs) -> str:
        """Stop a running sweep or research loop; its study and finished trials are kept for resume_sweep."""
        return stop(ctx, args.sweep)

    @lab_tool("resume_sweep", ResumeSweepArgs)
    def resume_sweep(args: ResumeSweepArgs) -> str:
        """Continue a stopped, killed or finished sweep or research loop on the same study (optionally with extra minutes)."""
        job, art = resume(ctx, args.sweep, args.extra_minutes)
        if args.wait is False:
            return f"resumed {art.kind} {art.id} as {job.id}. Ask for sweep_status('{art.id}')."
        wait_for_job(ctx.registry, job.id, on_progress=ctx.on_progress)
        return describe_sweep(ctx, ctx.registry.get_artifact(art.id), table=True)

    return [sweep_gpt, research_gpt, sweep_lora, sweep_status, stop_sweep, resume_sweep]
