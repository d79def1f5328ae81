"""Agent tools for LoRA fine-tuning: finetune_lora, merge_lora, generate_with_adapter.

Thin adapters over `scratchlab.training.lora*`: resolve the base (a GPT run, a converted pretrained
model, or a merged model), confirm long runs, start the fine-tune as a lab job, register the
adapter (kind "adapter", saved under `<workspace>/adapters/<name>/`, parent = the base artifact),
and answer in a few lines. The same functions back the `scratchlab lora ...` commands.

What the references name (bases, data, adapters) is resolved in `scratchlab.tools.lora_refs`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, create_model

from scratchlab.lab import jobs
from scratchlab.lab.registry import Artifact
from scratchlab.tools.base import Count, ToolContext, ToolError, lab_tool
from scratchlab.tools.lora_refs import (
    ADAPTER,
    BASE,
    DEMO_DATA,
    RUN,
    BaseRef,
    materialize,
    require_saved,
    resolve_adapter,
    resolve_base,
    resolve_data,
    slug,
    sync_adapter,
    unique_name,
)
from scratchlab.training import settings
from scratchlab.training.lora_config import LORA_META, TRAIN_STATE, LoraError, LoraTrainConfig
from scratchlab.training.lora_data import LoraDataError, read_records

CONVERT_SECONDS = 240.0  # allowance for a first GGUF -> HF conversion in time estimates (seconds)
CHARS_PER_TOKEN = {"hf": 4.0, "gpt": 1.5}
MAX_RESULT_CHARS = 600
MAX_SAMPLE_CHARS = 90


_LORA_FIELDS = {k: (tp, Field(default=d, description=desc))
                for k, tp, d, desc in settings.tool_fields("finetune_lora", Count)}  # fmt: skip
CONFIG_FIELDS = tuple(k for k in _LORA_FIELDS if k != "data")  # run settings passed to LoraTrainConfig
BASE_HELP = ("What to adapt: a GPT run id or name, 'last' (newest GPT run), or a pretrained base "
             "'qwen2.5-coder-0.5b' or 'smollm2-135m'.")  # fmt: skip
FinetuneLoraArgs = create_model(
    "FinetuneLoraArgs",
    data=_LORA_FIELDS.pop("data"),
    base=(str | None, Field(default="last", description=BASE_HELP)),
    **_LORA_FIELDS,
    name=(str | None, Field(
        default=None,
        description="Adapter name; null for '<base>-lora-<n>'. Reusing a name of an interrupted run resumes it.",
    )),
    wait=(bool | None, Field(
        default=True,
        description="Wait for the run to finish (true) or return at once with the job id (false).",
    )),
)  # fmt: skip


class MergeLoraArgs(BaseModel):
    adapter: str | None = Field(default="last", description="Adapter id ('adapter-2'), name, or 'last'.")


class GenerateWithAdapterArgs(BaseModel):
    prompt: str = Field(description="The user message to answer.")
    adapter: str | None = Field(default="last", description="Adapter id, name, or 'last'.")
    max_new_tokens: Count | None = Field(default=128, description="Maximum tokens to generate.")


def plan_finetune(
    ctx: ToolContext, args: FinetuneLoraArgs, extra: dict[str, Any] | None = None
) -> tuple[BaseRef, Path, dict[str, Any], float]:
    """Validate a request and estimate it (no side effects). Returns (base, data, config, seconds).

    Args:
        extra: more `LoraTrainConfig` fields (the CLI's options beyond the tool's arguments).
    """
    from scratchlab.training.lora_estimate import (  # torch: loaded when planning
        estimate_finetune,
        flops_estimate,
    )

    b = resolve_base(ctx, args.base)
    data = resolve_data(ctx, args.data) if args.data.strip().lower() != DEMO_DATA else Path(args.data)
    cfg = LoraTrainConfig(
        base_kind=b.kind, base_path=str(b.path), data=str(data), base_ref=b.artifact_id or b.name,
        **{k: v for k, v in {**args.model_dump(include=set(CONFIG_FIELDS)), **(extra or {})}.items() if v is not None},
    )  # fmt: skip
    try:
        cfg = cfg.resolved()
    except LoraError as e:
        raise ToolError(str(e)) from None
    if data.is_file() and not b.needs_conversion:
        try:
            est = estimate_finetune(cfg)["estimated_seconds"]
        except (LoraError, LoraDataError) as e:
            raise ToolError(str(e)) from None
    else:  # the base is not converted yet (or demo data not built): a FLOP-based guess
        chars = 120.0
        if data.is_file():
            records = read_records(data)
            chars = sum(len(json.dumps(r.messages or r.text)) for r in records) / len(records)
        tokens = cfg.batch_size * cfg.grad_accum * min(512, chars / CHARS_PER_TOKEN[b.kind])
        est = flops_estimate(b.n_params, int(tokens), cfg.max_iters) + (
            CONVERT_SECONDS if b.needs_conversion else 0.0
        )
    return b, data, cfg.__dict__ | {}, est


def start_finetune(
    ctx: ToolContext, args: FinetuneLoraArgs, inline: bool | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Validate, confirm, start (or resume) a fine-tune and optionally wait. Returns a result dict.

    Keys: status ("done" | "started" | "cancelled" | "failed" | "declined"), adapter (id), name,
    job, and when done the run's metrics (val_loss_before/after, trainable_params, ...).
    """
    b, data, cfg, est = plan_finetune(ctx, args, extra)
    asked = {k: v for k, v in args.model_dump(include=set(CONFIG_FIELDS)).items() if v is not None} | (
        extra or {}
    )
    name = slug(args.name) if args.name else unique_name(ctx, slug(b.name))
    if not ctx.confirm(
        "finetune_lora",
        {"base": b.name, "data": str(data), "r": cfg["r"], "max_iters": cfg["max_iters"], "name": name,
         "changed": settings.diff_from_defaults(asked, "finetune_lora"), "estimated_seconds": round(est)},
        estimate_s=est,
    ):  # fmt: skip
        return {"status": "declined", "name": name, "estimated_seconds": round(est)}
    out_dir = ctx.workspace.dir("adapters") / name
    if (out_dir / LORA_META).is_file() and not (out_dir / TRAIN_STATE).is_file():
        raise ToolError(f"adapter {name!r} already exists (finished); pick another name")
    b = materialize(ctx, b)
    data = resolve_data(ctx, args.data)
    cfg.update(base_path=str(b.path), base_ref=b.artifact_id, data=str(data), out_dir=str(out_dir))
    old = ctx.registry.find_artifact(name, ADAPTER)
    if old is not None and not (out_dir / TRAIN_STATE).is_file():
        raise ToolError(
            f"adapter {name!r} already exists ({old.id}); names are never reused, pick another name"
        )
    art = (ctx.registry.update_artifact(old.id, config={**cfg, "status": "training"}) if old else  # resume
           ctx.registry.add_artifact(ADAPTER, name, out_dir, config={**cfg, "status": "training"}, parent=b.artifact_id))  # fmt: skip
    inline = ctx.extras.get("lora_inline", False) if inline is None else inline
    if inline:
        from scratchlab.training.lora import run_job  # torch: loaded when a run starts

        try:
            res = run_job(cfg)
        except Exception:
            ctx.registry.update_artifact(art.id, config={"status": "failed"})
            raise
        art = sync_adapter(ctx, ctx.registry.get_artifact(art.id))
        return {**res, "adapter": art.id, "name": name, "base": b.name, "job": None}
    job = jobs.start_job(ctx.workspace, ctx.registry, "lora", "scratchlab.training.lora", cfg, run_dir=out_dir,
                         artifact_id=art.id, total=cfg["max_iters"],
                         resume_hint=f"Run finetune_lora again with name={name!r} to resume from its checkpoint.")  # fmt: skip
    ctx.registry.update_artifact(art.id, config={"job": job.id})
    if not (args.wait if args.wait is not None else True):
        return {
            "status": "started",
            "adapter": art.id,
            "name": name,
            "job": job.id,
            "base": b.name,
            "estimated_seconds": round(est),
        }
    job = jobs.wait_for_job(ctx.registry, job.id, on_progress=ctx.on_progress)
    out = {"adapter": art.id, "name": name, "job": job.id, "base": b.name, **(job.result or {})}
    out["status"] = job.status
    if job.status in ("failed", "cancelled"):
        ctx.registry.update_artifact(art.id, config={"status": job.status})
    if job.status == "failed":
        out["error"] = job.error or jobs.read_log(job, 5)
    sync_adapter(ctx, ctx.registry.get_artifact(art.id))
    return out


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def format_finetune(res: dict[str, Any]) -> str:
    """A short, model-readable summary of a fine-tune result."""
    st = res.get("status")
    if st == "declined":
        return f"Not started: the user declined (estimated {res.get('estimated_seconds')} s)."
    if st == "started":
        return (f"Started {res['job']} fine-tuning adapter {res['name']} ({res['adapter']}) on {res['base']}, "
                f"about {res.get('estimated_seconds')} s. Check it later with the jobs tools.")  # fmt: skip
    if st == "failed":
        return f"Error: fine-tune {res.get('job')} failed: {str(res.get('error'))[:400]}"
    if st == "cancelled":
        return (f"Fine-tune of {res['name']} cancelled at step {res.get('steps')}; the checkpoint is kept. "
                f"Run finetune_lora with name={res['name']!r} to resume.")  # fmt: skip
    tp, tot = res.get("trainable_params", 0), res.get("total_params", 1)
    s = (f"Adapter {res['name']} ({res['adapter']}) on {res['base']}: val loss {res['val_loss_before']:.3f} -> "
         f"{res['val_loss_after']:.3f} (ppl {res['val_ppl_before']:.1f} -> {res['val_ppl_after']:.1f})")  # fmt: skip
    if res.get("rougeL_after") is not None:
        s += f", BLEU {res['bleu_before']:.1f} -> {res['bleu_after']:.1f}, ROUGE-L {res['rougeL_before']:.1f} -> {res['rougeL_after']:.1f}"
    s += f"; {_fmt_params(tp)} trainable of {_fmt_params(tot)} params ({100 * tp / max(1, tot):.2f}%); {res.get('steps')} steps in {res.get('seconds', 0):.0f}s."
    samples = res.get("samples") or []
    if samples:
        x = samples[0]
        s += (f" Sample: Q: {x['prompt'][:MAX_SAMPLE_CHARS]!r} base: {x['base'][:MAX_SAMPLE_CHARS]!r} "
              f"tuned: {x['tuned'][:MAX_SAMPLE_CHARS]!r}")  # fmt: skip
    return s[:MAX_RESULT_CHARS]


def merge(ctx: ToolContext, adapter: str | None) -> dict[str, Any]:
    """Merge an adapter into its base, verify, save, register. Returns the merge info + new artifact id."""
    from scratchlab.training.lora_adapters import merge_to_folder  # torch, peft: loaded when merging

    art = resolve_adapter(ctx, adapter)
    require_saved(art)
    kind = json.loads((Path(art.path) / LORA_META).read_text())["base"]["kind"]
    folder = ctx.workspace.dir("bases" if kind == "hf" else "runs") / f"{art.name}-merged"
    new_kind = BASE if kind == "hf" else RUN
    ctx.registry.check_name_free(new_kind, folder.name)  # NameTaken: merged before; never overwritten
    if folder.exists():
        raise ToolError(f"{folder} already exists; move it aside to merge {art.name} again")
    info = merge_to_folder(art.path, folder)
    new = ctx.registry.add_artifact(new_kind, folder.name, folder, config={"merged_from": art.id, "base": info["base"]},
                                    metrics={"merge_max_abs_diff": info["max_abs_diff"], **{k: v for k, v in art.metrics.items() if k in ("trainable_params", "total_params")}},
                                    parent=art.id)  # fmt: skip
    return {**info, "artifact": new.id, "adapter": art.id, "name": folder.name}


def _session(ctx: ToolContext, art: Artifact):
    """An AdapterSession with `art` active; one loaded base per base folder, adapters switched in place."""
    from scratchlab.training.lora import read_adapter_meta  # torch: loaded when generating
    from scratchlab.training.lora_adapters import open_adapter, switch_adapter  # torch, peft: as above

    meta = read_adapter_meta(art.path)
    sessions = ctx.extras.setdefault("lora_sessions", {})
    key = meta["base"]["path"]
    adapter_name = art.id.replace(".", "_")
    s = sessions.get(key)
    if s is None:
        s = open_adapter(art.path, adapter_name=adapter_name)
        sessions[key] = s
    else:
        switch_adapter(s.model, art.path, adapter_name)
        s.meta = meta
    return s


def generate(
    ctx: ToolContext, prompt: str, adapter: str | None, max_new_tokens: int, compare: bool = False
) -> dict[str, Any]:
    """Answer `prompt` with an adapter (and the base alone when `compare`)."""
    from scratchlab.training.lora_adapters import answer  # torch, peft: loaded when generating

    if not prompt.strip():
        raise ToolError("prompt is empty")
    if not 1 <= max_new_tokens <= 2048:
        raise ToolError(f"max_new_tokens must be in 1..2048, got {max_new_tokens}")
    art = resolve_adapter(ctx, adapter)
    require_saved(art)
    t0 = time.time()
    s = _session(ctx, art)
    out = {"adapter": art.id, "name": art.name, "tuned": answer(s, prompt, max_new_tokens)}
    if compare:
        out["base"] = answer(s, prompt, max_new_tokens, use_adapter=False)
    out["seconds"] = round(time.time() - t0, 2)
    return out


# ---- the tools ---------------------------------------------------------------------------------------
def make_tools(ctx: ToolContext) -> list[BaseTool]:
    @lab_tool("finetune_lora", FinetuneLoraArgs)
    def finetune_lora(args: FinetuneLoraArgs) -> str:
        """Fine-tune a LoRA adapter on instruction data (JSONL) for a GPT run or a pretrained base; reports val loss, BLEU/ROUGE before/after and the adapter id. Long runs ask the user first."""
        return format_finetune(start_finetune(ctx, args))

    @lab_tool("merge_lora", MergeLoraArgs)
    def merge_lora(args: MergeLoraArgs) -> str:
        """Merge a LoRA adapter into its base weights as a standalone model, checking merged and adapter outputs agree."""
        info = merge(ctx, args.adapter)
        return (f"Merged {info['adapter']} into a standalone {'model' if info['kind'] == 'hf' else 'GPT run'} "
                f"{info['name']} ({info['artifact']}) at {info['path']}; max |logit diff| vs adapter "
                f"{info['max_abs_diff']:.2e} on a {info['batch_shape'][0]}x{info['batch_shape'][1]} batch.")  # fmt: skip

    @lab_tool("generate_with_adapter", GenerateWithAdapterArgs)
    def generate_with_adapter(args: GenerateWithAdapterArgs) -> str:
        """Answer a prompt with a fine-tuned LoRA adapter on its base (greedy)."""
        out = generate(ctx, args.prompt, args.adapter, args.max_new_tokens or 128)
        return f"{out['name']} ({out['adapter']}): {out['tuned'][: MAX_RESULT_CHARS - 60]}"

    return [finetune_lora, merge_lora, generate_with_adapter]
