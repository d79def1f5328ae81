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

Bases: `base_kind="gpt"` loads a scratchlab GPT run folder (`ckpt.pt` + `config.json`); our GPT is
wrapped in `GPTLM` so peft sees a plain module with nanoGPT's layer names (`c_attn`, `c_proj`,
`c_fc`). `base_kind="hf"` loads a Hugging Face folder (see `hf_base.ensure_base`); on CUDA with
bitsandbytes the base can be 4-bit NF4 with double quantization (QLoRA, Dettmers et al., 2023).

Training: AdamW on the adapter parameters only, linear warmup then cosine decay to lr/10, gradient
accumulation, clipping; loss only on answer tokens (see `lora_data`). A checkpoint
(`train_state.pt`: adapter weights, optimizer, step) is written every `ckpt_interval` steps and when
`should_stop()` turns true, so a cancelled or crashed run resumes where it stopped.

Sources: Hu et al. 2021 "LoRA"; Dettmers et al. 2023 "QLoRA"; huggingface/peft (`LoraConfig`,
`get_peft_model`, custom-model support).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from scratchlab.lab.atomic import atomic_path
from scratchlab.training import lora_data as D
from scratchlab.training.lora_base import LoadedBase, load_base
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

TRAIN_STATE = "train_state.pt"
MIN_LR_RATIO = 0.1
CPU_FLOPS = 2e10  # effective float32 training throughput assumed for estimates (FLOP/s), CPU
GPU_FLOPS = 5e12
OVERHEAD_S = 20.0  # loading + before/after evaluation allowance for estimates (seconds)
REPORT_EVERY_S = 0.5  # at most this often to the job reporter (SQLite writes)


# ---- schedule, step, validation ------------------------------------------------------------
def lr_at(step: int, lr: float, warmup_iters: int, max_iters: int) -> float:
    """Linear warmup over `warmup_iters` then cosine decay to lr * MIN_LR_RATIO at `max_iters`."""
    min_lr = lr * MIN_LR_RATIO
    if step < warmup_iters:
        return lr * (step + 1) / (warmup_iters + 1)
    if step >= max_iters:
        return min_lr
    ratio = (step - warmup_iters) / max(1, max_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA, nothing on CPU (float32 there)."""
    import contextlib

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(model: nn.Module, opt: torch.optim.Optimizer, params: list[torch.Tensor], batches: Any,
               cfg: LoraTrainConfig, kind: str, device: torch.device, step: int) -> dict[str, float]:  # fmt: skip
    """One optimizer step: set the scheduled lr, accumulate `cfg.grad_accum` micro-batches, clip, step.

    Args:
        batches: iterator of padded batches (`lora_data.iter_batches`).
        step: the index of this step (0-based), for the schedule.

    Returns:
        dict: train_loss (mean over micro-batches), lr, grad_norm (before clipping), tokens (real tokens seen).
    """
    lr = lr_at(step, cfg.lr, cfg.warmup_iters, cfg.max_iters)
    for g in opt.param_groups:
        g["lr"] = lr
    loss_sum, tokens = 0.0, 0
    for _ in range(cfg.grad_accum):
        batch = _to(next(batches), device)
        with autocast_for(device):
            loss = lm_loss(model, batch, kind) / cfg.grad_accum
        loss.backward()
        loss_sum += float(loss.detach())
        tokens += int(batch["attention_mask"].sum())
    gnorm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)) if cfg.grad_clip > 0 else 0.0
    opt.step()
    opt.zero_grad(set_to_none=True)
    return {"train_loss": loss_sum, "lr": lr, "grad_norm": gnorm, "tokens": tokens}


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def val_loss(model: nn.Module, examples: list[D.Example], kind: str, batch_size: int, pad_id: int,
             device: torch.device, max_batches: int = 0) -> float:  # fmt: skip
    """Mean cross-entropy per answer token over `examples` (nats; perplexity = exp of it)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i, batch in enumerate(D.eval_batches(examples, batch_size, pad_id)):
        if max_batches and i >= max_batches:
            break
        batch = _to(batch, device)
        total += float(lm_loss(model, batch, kind, reduction="sum"))
        count += int((batch["labels"][:, 1:] != D.IGNORE_INDEX).sum())
    model.train(was_training)
    return total / max(1, count)


# ---- checkpoints ----------------------------------------------------------------------------
def _lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}


def _save_state(
    out: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int, history: list, extra: dict
) -> None:
    state = {"version": LORA_FORMAT_VERSION, "step": step, "lora": _lora_state(model),
             "optimizer": opt.state_dict(), "history": history, **extra}  # fmt: skip
    with atomic_path(out / TRAIN_STATE) as tmp:
        torch.save(state, tmp)


def _load_state(out: Path) -> dict | None:
    p = out / TRAIN_STATE
    if not p.is_file():
        return None
    try:
        state = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:  # a torn or foreign file: say so rather than silently restart
        raise LoraError(f"cannot resume from {p} ({type(e).__name__}: {e}); delete it to start over") from e
    if state.get("version", 0) > LORA_FORMAT_VERSION:
        raise LoraError(f"{p} was written by a newer scratchlab (version {state['version']})")
    return state


# ---- the run ----------------------------------------------------------------------------------
@dataclass
class Progress:
    """What `on_progress` receives: the step, the total, and the latest numbers."""

    step: int
    total: int
    message: str
    metrics: dict[str, float] = field(default_factory=dict)


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LoraError("device 'cuda' requested but no CUDA GPU is available; use device='cpu'")
    return torch.device(device)


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
    from scratchlab.training import lora_eval

    cfg = cfg.resolved()
    if not cfg.out_dir:
        raise LoraError("out_dir is required (the adapter folder)")
    out = Path(cfg.out_dir)
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if base is None:
        base = load_base(cfg.base_kind, cfg.base_path, device, cfg.qlora)
    train, val, val_records, report = prepare_data(cfg, base)
    model = add_lora(base, cfg)
    if not base.quantized:  # bitsandbytes places 4-bit weights itself
        model.to(device)
    trainable, total = count_params(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999))
    notify = on_progress or (lambda p: None)
    stop = should_stop or (lambda: False)
    pad = base.fmt.pad_id

    state = _load_state(out) if cfg.resume else None
    history: list[dict[str, float]] = []
    start = 0
    if state is not None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, state["lora"])
        opt.load_state_dict(state["optimizer"])
        start, history = state["step"], state["history"]
        before = state["before"]
        notify(Progress(start, cfg.max_iters, f"resumed at step {start}"))
    else:
        notify(Progress(0, cfg.max_iters, "evaluating the base"))
        before = lora_eval.evaluate(model, base, val, val_records, cfg, device, adapter=False)

    batches = D.iter_batches(train, cfg.batch_size, pad, seed=cfg.seed)
    for _ in range(start * cfg.grad_accum):  # replay the data order up to the resume point
        next(batches)
    model.train()
    step = start
    status = "done"
    tokens = 0
    t_loop = time.time()
    while step < cfg.max_iters:
        if stop():
            status = "cancelled"
            break
        row = train_step(model, opt, params, batches, cfg, base.kind, device, step)
        tokens += int(row.pop("tokens"))
        step += 1
        if cfg.eval_interval and step % cfg.eval_interval == 0 and step < cfg.max_iters:
            row["val_loss"] = val_loss(model, val, base.kind, cfg.batch_size, pad, device, cfg.eval_iters)
        history.append({"step": step, **row})
        notify(
            Progress(step, cfg.max_iters, f"step {step}/{cfg.max_iters} loss {row['train_loss']:.4f}", row)
        )
        if cfg.ckpt_interval and step % cfg.ckpt_interval == 0 and step < cfg.max_iters:
            _save_state(out, model, opt, step, history, {"before": before})
    train_seconds = time.time() - t_loop

    if status == "cancelled":
        _save_state(out, model, opt, step, history, {"before": before})
        notify(
            Progress(step, cfg.max_iters, f"cancelled at step {step}; checkpoint kept, resume to continue")
        )
        return {"status": "cancelled", "adapter_dir": str(out), "steps": step, "seconds": round(time.time() - t0, 2),
                "trainable_params": trainable, "total_params": total}  # fmt: skip

    notify(Progress(step, cfg.max_iters, "evaluating the adapter"))
    after = lora_eval.evaluate(model, base, val, val_records, cfg, device, adapter=True)
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
    save_adapter(model, out, meta)
    (out / TRAIN_STATE).unlink(missing_ok=True)
    return {"status": "done", "adapter_dir": str(out), "trainable_params": trainable, "total_params": total,
            **metrics, "samples": samples, "warnings": report.warnings,
            "seconds": round(time.time() - t0, 2), "model": model, "base": base}  # fmt: skip


# ---- job entry point --------------------------------------------------------------------------
def estimate_seconds(n_params: int, tokens_per_iter: int, max_iters: int, cpu: bool = True) -> float:
    """Rough wall time of a run: ~4 * params * tokens FLOPs per step (forward, plus the backward
    through activations that LoRA still needs), at CPU_FLOPS (or GPU_FLOPS) effective throughput,
    plus a fixed allowance for loading and the before/after evaluation.
    """
    flops = 4.0 * n_params * tokens_per_iter * max_iters
    return OVERHEAD_S + flops / (CPU_FLOPS if cpu else GPU_FLOPS)


class _PrintReporter:
    """Stand-alone runs: progress lines on stderr; SIGINT/SIGTERM request a clean stop (checkpoint kept)."""

    def __init__(self) -> None:
        import signal

        self.stop_requested = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.stop_requested = True

    def update(self, step: int, total: int, message: str = "", **metrics: float) -> None:
        print(message, file=sys.stderr, flush=True)


def run_job(config: dict[str, Any], reporter: Any = None) -> dict[str, Any]:
    """Job entry (see `scratchlab.lab.jobs.run_job_main`): progress to `reporter` (rate-limited), stop
    when its `stop_requested` turns true. Without a reporter the run is silent."""
    last = {"t": 0.0}

    def progress(p: Progress) -> None:
        now = time.monotonic()
        if now - last["t"] >= REPORT_EVERY_S or p.step in (0, p.total) or not p.metrics:
            last["t"] = now
            reporter.update(
                p.step, p.total, p.message, **{k: v for k, v in p.metrics.items() if v is not None}
            )

    stop = (lambda: bool(reporter.stop_requested)) if reporter is not None else None
    res = run_finetune(
        LoraTrainConfig.from_dict(config), on_progress=progress if reporter else None, should_stop=stop
    )
    res.pop("model", None)
    res.pop("base", None)
    return res


def job_main(argv: list[str] | None = None) -> int:
    """`python -m scratchlab.training.lora --config cfg.json [--job-id ID --home DIR]`: one fine-tune."""
    ap = argparse.ArgumentParser(prog="python -m scratchlab.training.lora", description="LoRA fine-tune")
    ap.add_argument("--config", required=True, help="JSON file with LoraTrainConfig fields")
    ap.add_argument(
        "--job-id", default=None, help="lab job id to report progress to (set by scratchlab.lab.jobs)"
    )
    ap.add_argument("--home", default=None, help="workspace root holding lab.db (with --job-id)")
    a = ap.parse_args(argv)
    config = json.loads(Path(a.config).read_text(encoding="utf-8"))
    if a.job_id:
        from scratchlab.lab.jobs import run_job_main  # the job face of this engine

        return run_job_main(a.job_id, a.home, run_job, config)
    print(json.dumps(run_job(config, _PrintReporter()), indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(job_main())
