"""LoRA fine-tuning through `peft`, on our own GPTs and on pretrained Hugging Face causal LMs.

LoRA (Hu et al., 2021) freezes the base weight W (out, in) and learns a low-rank update
W + (lora_alpha / r) * B @ A with A (r, in) and B (out, r); B starts at zero, so the tuned model
starts exactly equal to the base. `peft` injects the A/B pairs into the named Linear layers
(`target_modules`), saves only them, and merges them back (`merge_and_unload`).

    from scratchlab.training.lora import LoraTrainConfig, run_finetune
    cfg = LoraTrainConfig(base_kind="hf", base_path="~/.local/share/scratchlab/bases/qwen2.5-coder-0.5b",
                          data="benchmarks/data/lora_demo.jsonl", out_dir="/tmp/adapter", max_iters=200)
    result = run_finetune(cfg, on_progress=print)        # dict: val_loss_before/after, trainable_params, ...

    python -m scratchlab.training.lora --config job.json    # the same, as a lab job (see `job_main`)
    torchrun --standalone --nproc_per_node=2 -m scratchlab.training.lora --config job.json   # DDP

Bases: `base_kind="gpt"` loads a scratchlab GPT run folder (`ckpt.pt` + `config.json`); our GPT is
wrapped in `GPTLM` so peft sees a plain module with nanoGPT's layer names (`c_attn`, `c_proj`,
`c_fc`). `base_kind="hf"` loads a Hugging Face folder (see `hf_base.ensure_base`); on CUDA with
bitsandbytes the base can be 4-bit NF4 with double quantization (QLoRA, Dettmers et al., 2023).

Training uses the core shared with the GPT trainer: warmup + cosine to lr/10 (`schedule`), the
device/threads/bf16 policy (`precision`), atomic checkpoints (`checkpoint`), throttled reporting and
signal stop (`report`), and DDP under torchrun (`ddp`, `loop`): gloo on CPU, NCCL on CUDA. AdamW on
the adapter parameters only, gradient accumulation, clipping; loss only on answer tokens (see
`lora_data`). A checkpoint (`train_state.pt`: adapter weights, optimizer, step) is written every
`ckpt_interval` steps and when a stop is requested, so a cancelled or crashed run resumes where it
stopped.

Multi-process: every rank draws the same micro batches and trains on its contiguous rows of each;
the loss of a micro batch is its sum over answer tokens divided by the micro batch's answer-token
count (all ranks together), so DDP's gradient average equals the one-process gradient and a run on
W processes follows the one-process loss curve at the same `batch_size` (up to float summation order;
with `lora_dropout=0`, since dropout masks differ per rank).

Sources: Hu et al. 2021 "LoRA"; Dettmers et al. 2023 "QLoRA"; huggingface/peft (`LoraConfig`,
`get_peft_model`, custom-model support); PyTorch DDP docs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from scratchlab.lab import job_child
from scratchlab.training import ddp, lora_eval, precision
from scratchlab.training import lora_data as D
from scratchlab.training.checkpoint import load_state, save_state
from scratchlab.training.errors import TrainError
from scratchlab.training.loop import RunClock, rank_slice, stop_agreed
from scratchlab.training.lora_base import LoadedBase, load_base
from scratchlab.training.lora_config import TRAIN_STATE
from scratchlab.training.lora_eval import val_loss  # noqa: F401 - re-exported
from scratchlab.training.lora_model import (  # noqa: F401 - re-exported: the engine's public names
    DEFAULT_LR,
    FOUR_BIT_MERGE_ERROR,
    GPT_TARGETS,
    HF_TARGETS,
    LORA_FORMAT,
    LORA_FORMAT_VERSION,
    LORA_META,
    MAX_R,
    MERGE_TOLERANCE,
    LoraError,
    LoraTrainConfig,
    add_lora,
    check_targets,
    count_params,
    default_targets,
    linear_module_names,
    lm_logits,
    lm_loss,
    masked_lm_loss,
    read_adapter_meta,
    save_adapter,
)
from scratchlab.training.lora_prefix import CachedPrefix
from scratchlab.training.report import REPORT_EVERY_S, SignalStop, Throttled
from scratchlab.training.schedule import set_lr, warmup_cosine

STATE_FORMAT = "scratchlab.lora.state"
MIN_LR_RATIO = 0.1


# ---- schedule, step ----------------------------------------------------------------------------
def lr_at(step: int, lr: float, warmup_iters: int, max_iters: int) -> float:
    """Linear warmup over `warmup_iters` then cosine decay to lr * MIN_LR_RATIO at `max_iters`."""
    return warmup_cosine(step, lr, warmup_iters, max_iters, lr * MIN_LR_RATIO)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, params: list[torch.Tensor], batches: Any,
               cfg: LoraTrainConfig, kind: str, device: torch.device | str, step: int, autocast=None,
               dinfo: ddp.DistInfo | None = None) -> dict[str, float]:  # fmt: skip
    """One optimizer step: set the scheduled lr, accumulate `cfg.grad_accum` micro-batches, clip, step.

    Args:
        model: the PeftModel, or its DDP wrapper.
        batches: iterator of padded batches (`lora_data.iter_batches`); every rank draws the same ones.
        step: the index of this step (0-based), for the schedule.
        autocast: the precision context (default: `precision.autocast_context` of `cfg.dtype`).
        dinfo: this process's place in a DDP job (default: one process).

    Returns:
        dict: train_loss (mean over micro-batches, all ranks), lr, grad_norm (before clipping),
        tokens (real tokens of the global batch).
    """
    dinfo = dinfo or ddp.DistInfo(device=str(device))
    if autocast is None:
        dev = str(device)
        autocast = precision.autocast_context(precision.autocast_dtype(cfg.dtype, dev), dev)
    lr = lr_at(step, cfg.lr, cfg.warmup_iters, cfg.max_iters)
    set_lr(opt, lr)
    rows = rank_slice(cfg.batch_size, dinfo)
    loss_sum = torch.zeros((), device=device)
    tokens = 0
    for m in range(cfg.grad_accum):
        full = next(batches)
        n_target = int((full["labels"][:, 1:] != D.IGNORE_INDEX).sum())  # answer tokens, all ranks
        tokens += int(full["attention_mask"].sum())
        batch = {k: v[rows].to(device) for k, v in full.items()}
        if dinfo.enabled:
            model.require_backward_grad_sync = m == cfg.grad_accum - 1
        with autocast:
            loss = lm_loss(model, batch, kind, reduction="sum") * (
                dinfo.world_size / max(1, n_target) / cfg.grad_accum
            )
        loss.backward()
        loss_sum += loss.detach()
    if dinfo.enabled:  # the mean over ranks of their (scaled) shares is the global batch's loss
        dist.all_reduce(loss_sum)
        loss_sum /= dinfo.world_size
    gnorm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)) if cfg.grad_clip > 0 else 0.0
    opt.step()
    opt.zero_grad(set_to_none=True)
    return {"train_loss": float(loss_sum), "lr": lr, "grad_norm": gnorm, "tokens": tokens}


# ---- checkpoints ----------------------------------------------------------------------------
def _lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict  # peft is heavy and only needed once training runs

    return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}


def _save_state(
    out: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int, history: list, extra: dict
) -> None:
    state = {
        "step": step,
        "lora": _lora_state(model),
        "optimizer": opt.state_dict(),
        "history": history,
        **extra,
    }
    save_state(out / TRAIN_STATE, state, STATE_FORMAT, LORA_FORMAT_VERSION)


def _load_state(out: Path) -> dict | None:
    p = out / TRAIN_STATE
    if not p.is_file():
        return None
    return load_state(p, STATE_FORMAT, LORA_FORMAT_VERSION, error=LoraError, legacy_ok=True,
                      hint="; delete it to start over")  # fmt: skip


# ---- the run ----------------------------------------------------------------------------------
@dataclass
class Progress:
    """What `on_progress` receives: the step, the total, and the latest numbers."""

    step: int
    total: int
    message: str
    metrics: dict[str, float] = field(default_factory=dict)


def pick_device(device: str) -> torch.device:
    """`precision.resolve_device` as a torch.device. Raises LoraError for CUDA on a machine without it."""
    try:
        return torch.device(precision.resolve_device(device))
    except TrainError as e:
        raise LoraError(str(e)) from None


def prepare_data(cfg: LoraTrainConfig, base: LoadedBase):
    """Read, tokenize and split the data. Returns (train, val, val_records, report)."""
    records = D.read_records(cfg.data)
    chat = [r for r in records if r.is_chat]
    report = D.TokenizeReport()
    examples = D.tokenize_records(records, base.fmt, cfg.max_len or base.max_len, report)
    train, val = D.split_examples(examples, cfg.val_fraction, cfg.seed)
    val_records = D.split_records(chat, cfg.val_fraction, cfg.seed)[1] if len(chat) >= 2 else []
    return train, val, val_records, report


def run_finetune(
    cfg: LoraTrainConfig,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    base: LoadedBase | None = None,
) -> dict[str, Any]:
    """Fine-tune a LoRA adapter end to end: load, evaluate, train, evaluate, save.

    Args:
        cfg: the run's configuration (defaults are resolved here).
        on_progress: called every step with a `Progress`.
        should_stop: polled every step; when it returns True the run checkpoints and returns with
            status "cancelled" (resume by calling again with the same `out_dir`).
        base: an already loaded base to reuse (tests, benchmarks); else loaded from cfg.

    Returns:
        dict with status ("done" | "cancelled"), adapter_dir, trainable_params, total_params,
        val_loss_before/after, val_ppl_before/after, bleu/rouge before/after, samples, seconds,
        steps, warnings.

    Raises:
        LoraError, LoraDataError, BaseModelError: bad settings, data or base.
    """
    cfg = cfg.resolved()
    if not cfg.out_dir:
        raise LoraError("out_dir is required (the adapter folder)")
    out = Path(cfg.out_dir)
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    dinfo = ddp.setup(str(pick_device(cfg.device)))
    try:
        return _finetune(cfg, out, t0, dinfo, on_progress, should_stop, base)
    finally:
        ddp.teardown(dinfo)


def _finetune(cfg: LoraTrainConfig, out: Path, t0: float, dinfo: ddp.DistInfo, on_progress, should_stop,
              base: LoadedBase | None) -> dict[str, Any]:  # fmt: skip
    if cfg.batch_size % dinfo.world_size:
        raise LoraError(
            f"batch_size ({cfg.batch_size}) must be divisible by the number of processes {dinfo.world_size}"
        )
    device = torch.device(dinfo.device)
    precision.configure(dinfo.device, cfg.num_threads)
    amp_dtype = precision.autocast_dtype(cfg.dtype, dinfo.device)
    autocast = precision.autocast_context(amp_dtype, dinfo.device)
    master = dinfo.is_master
    if base is None:
        base = load_base(cfg.base_kind, cfg.base_path, device, cfg.qlora)
    train, val, val_records, report = prepare_data(cfg, base)
    model = add_lora(base, cfg)
    if not base.quantized:  # bitsandbytes places 4-bit weights itself
        model.to(device)
    fwd = model  # what the loss runs: the model, or the model after a cached prefix
    if cfg.cached_prefix:
        if base.kind != "hf" or dinfo.enabled:
            raise LoraError("cached_prefix needs a Hugging Face base and one process")
        if on_progress is not None:
            on_progress(Progress(0, cfg.max_iters, "evaluating the shared prefix with the base"))
        fwd = CachedPrefix.build(model, base.fmt.encode(cfg.cached_prefix), train + val)
        train, val, val_records = fwd.strip(train), fwd.strip(val), []
    trainable, total = count_params(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999))
    notify = on_progress if on_progress is not None and master else (lambda p: None)
    stop = should_stop or (lambda: False)
    ddp_model = fwd
    if dinfo.enabled:
        ddp_model = DDP(model, device_ids=[dinfo.local_rank] if dinfo.device.startswith("cuda") else None)
    pad = base.fmt.pad_id

    state = _load_state(out) if cfg.resume else None
    history: list[dict[str, float]] = []
    start = 0
    if state is not None:
        from peft import set_peft_model_state_dict  # peft is heavy: loaded once a run starts

        set_peft_model_state_dict(model, state["lora"])
        opt.load_state_dict(state["optimizer"])
        start, history = state["step"], state["history"]
        before = state["before"]
        notify(Progress(start, cfg.max_iters, f"resumed at step {start}"))
    else:
        notify(Progress(0, cfg.max_iters, "evaluating the base"))
        before = lora_eval.evaluate(fwd, base, val, val_records, cfg, device, adapter=False)

    batches = D.iter_batches(train, cfg.batch_size, pad, seed=cfg.seed)
    for _ in range(start * cfg.grad_accum):  # replay the data order up to the resume point
        next(batches)
    model.train()
    status = "done"
    clock = RunClock(cfg.max_iters, start)
    while clock.step < cfg.max_iters:
        if stop_agreed(bool(stop()), dinfo, sync=True):
            status = "cancelled"
            break
        row = train_step(ddp_model, opt, params, batches, cfg, base.kind, device, clock.step, autocast, dinfo)
        clock.tick(int(row.pop("tokens")))
        step = clock.step
        if cfg.eval_interval and step % cfg.eval_interval == 0 and step < cfg.max_iters:
            row["val_loss"] = lora_eval.val_loss(
                fwd, val, base.kind, cfg.batch_size, pad, device, cfg.eval_iters
            )
        history.append({"step": step, **row})
        notify(
            Progress(step, cfg.max_iters, f"step {step}/{cfg.max_iters} loss {row['train_loss']:.4f}", row)
        )
        if master and cfg.ckpt_interval and step % cfg.ckpt_interval == 0 and step < cfg.max_iters:
            _save_state(out, model, opt, step, history, {"before": before})
    step = clock.step
    train_seconds = clock.session_seconds
    tokens = clock.session_tokens

    if status == "cancelled":
        if master:
            _save_state(out, model, opt, step, history, {"before": before})
        notify(
            Progress(step, cfg.max_iters, f"cancelled at step {step}; checkpoint kept, resume to continue")
        )
        return {"status": "cancelled", "adapter_dir": str(out), "steps": step, "seconds": round(time.time() - t0, 2),
                "trainable_params": trainable, "total_params": total}  # fmt: skip

    notify(Progress(step, cfg.max_iters, "evaluating the adapter"))
    after = lora_eval.evaluate(fwd, base, val, val_records, cfg, device, adapter=True)
    samples = lora_eval.side_by_side(before.get("generations", []), after.get("generations", []))
    metrics = {
        "val_loss_before": before["val_loss"], "val_loss_after": after["val_loss"],
        "val_ppl_before": before["val_ppl"], "val_ppl_after": after["val_ppl"],
        **{f"{k}_before": v for k, v in before.items() if k in lora_eval.TEXT_METRICS},
        **{f"{k}_after": v for k, v in after.items() if k in lora_eval.TEXT_METRICS},
        "train_loss_last": history[-1]["train_loss"] if history else None,
        "steps": step, "train_seconds": round(train_seconds, 2),
        "step_seconds": round(train_seconds / max(1, step - start), 4),
        "tokens_per_s": round(tokens / max(train_seconds, 1e-9), 1),
        "device": dinfo.device, "dtype": precision.dtype_name(amp_dtype), "world_size": dinfo.world_size,
    }  # fmt: skip
    cfg_dict = asdict(cfg)
    meta = {
        "base": {"kind": base.kind, "ref": cfg.base_ref, "path": str(base.path), "hash": base.hash, "name": base.name},
        "config": cfg_dict,
        "data": {"path": str(cfg.data), "n_records": report.n_records, "n_train": len(train), "n_val": len(val),
                 "n_truncated": report.n_truncated, "n_dropped": report.n_dropped, "format": base.fmt.name,
                 "eos_appended": report.eos_appended},
        "params": {"trainable": trainable, "total": total},
        "metrics": metrics,
        "samples": samples,
        "history": history,
    }  # fmt: skip
    if master:
        save_adapter(model, out, meta)
        (out / TRAIN_STATE).unlink(missing_ok=True)
    return {"status": "done", "adapter_dir": str(out), "trainable_params": trainable, "total_params": total,
            **metrics, "samples": samples, "warnings": report.warnings,
            "seconds": round(time.time() - t0, 2), "model": model, "base": base}  # fmt: skip


# ---- job entry point --------------------------------------------------------------------------
def run_job(config: dict[str, Any], reporter: Any = None) -> dict[str, Any]:
    """Job entry (see `scratchlab.lab.job_child.run_job_main`): progress to `reporter` (rate-limited), stop
    when its `stop_requested` turns true. Without a reporter the run is silent."""
    rep = Throttled(reporter, REPORT_EVERY_S)

    def progress(p: Progress) -> None:
        rep.update(p.step, p.total, p.message, force=p.step in (0, p.total) or not p.metrics, **p.metrics)

    stop = (lambda: rep.stop_requested) if reporter is not None else None
    res = run_finetune(
        LoraTrainConfig.from_dict(config), on_progress=progress if reporter else None, should_stop=stop
    )
    res.pop("model", None)
    res.pop("base", None)
    return res


def job_main(argv: list[str] | None = None) -> int:
    """`python -m scratchlab.training.lora --config cfg.json [--job-id ID --home DIR]`: one fine-tune
    (under `torchrun`, one process per rank; rank 0 prints the result)."""
    return job_child.job_main(argv, prog="python -m scratchlab.training.lora", what="LoRA fine-tune",
                              config_name="LoraTrainConfig", work=run_job, alone=_alone)  # fmt: skip


def _alone(config: dict[str, Any]) -> int:
    res = run_job(config, SignalStop(sys.stderr))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(job_main())
