"""How long a LoRA fine-tune will take, from a few timed steps of the real run.

    from scratchlab.training.lora_estimate import estimate_finetune
    est = estimate_finetune(LoraTrainConfig(base_kind="gpt", base_path="runs/run-3", data="qa.jsonl"))
    est["estimated_seconds"]

The base is loaded, the data tokenized and the adapter added in this process as the job will (same
device, thread policy and precision); then, as in `estimate.estimate_gpt`:

    startup + load + 2 * (val loss + generations) + first step + (steps - 1) * median step
          + periodic val losses + finish

where "load" is the measured time to load the base, tokenize and add the adapter; one val batch is
timed and scaled to the val pass, one generation (up to `max_new_tokens`, for one val prompt) to
`eval_generate` prompts, and the before/after evaluations count twice. Step timing stops after
`STEP_BUDGET_S` seconds (two steps at least), so the estimate of a large base stays short. A base that still needs converting from its
GGUF file cannot be timed; `flops_estimate` (about 4 * params * tokens FLOPs per step at an assumed
throughput) covers it. `benchmarks/estimate.py` checks the estimate against measured runs.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from scratchlab.training import lora_data as D
from scratchlab.training import precision
from scratchlab.training.estimate import FINISH_S, JOB_STARTUP_S, threads_as_job, time_steps, timed
from scratchlab.training.lora import prepare_data, train_step
from scratchlab.training.lora_base import load_base
from scratchlab.training.lora_eval import generate_answer, val_loss
from scratchlab.training.lora_model import LoraTrainConfig, add_lora

TIMED_STEPS = 3
STEP_BUDGET_S = 5.0  # stop timing steps once this much is spent (after two steps)
PEFT_IMPORT_S = 2.0  # a job imports peft/transformers once (seconds); the estimating process may have already
CPU_FLOPS = 2e10  # effective float32 training throughput assumed by `flops_estimate` (FLOP/s), CPU
GPU_FLOPS = 5e12
OVERHEAD_S = 20.0  # loading + before/after evaluation allowance of `flops_estimate` (seconds)


def estimate_finetune(cfg: LoraTrainConfig, timed_steps: int = TIMED_STEPS) -> dict[str, Any]:
    """Estimate a fine-tune's wall time as a job (see the module docstring); writes nothing.

    Args:
        cfg: the run's settings (defaults are resolved here).
        timed_steps: steps timed after the first.

    Returns:
        dict: estimated_seconds, seconds_per_step, first_step_seconds, load_seconds, val_seconds,
        generate_seconds (one prompt), n_train, n_val, threads.

    Raises:
        LoraError, LoraDataError, BaseLoadError: bad settings, data or base.
    """
    cfg = cfg.resolved()
    device = precision.resolve_device(cfg.device)
    with threads_as_job(device, cfg.num_threads):
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed)
        base = load_base(cfg.base_kind, cfg.base_path, device, cfg.qlora)
        train, val, val_records, _ = prepare_data(cfg, base)
        model = add_lora(base, cfg)
        if not base.quantized:
            model.to(device)
        load_s = time.perf_counter() - t0
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        autocast = precision.autocast_context(precision.autocast_dtype(cfg.dtype, device), device)
        batches = D.iter_batches(train, cfg.batch_size, base.fmt.pad_id, seed=cfg.seed)
        model.train()
        first, per_step = time_steps(
            lambda i: train_step(model, opt, params, batches, cfg, base.kind, device, i, autocast),
            timed_steps,
            STEP_BUDGET_S,
        )
        n_batches = math.ceil(len(val) / cfg.batch_size)
        n_batches = min(n_batches, cfg.eval_iters) if cfg.eval_iters else n_batches
        one = timed(lambda: val_loss(model, val, base.kind, cfg.batch_size, base.fmt.pad_id, device, 1))
        val_s = one * n_batches  # one val batch timed, the pass scaled from it
        gen_s = 0.0
        n_gen = min(cfg.eval_generate, len(val_records))
        if n_gen:
            model.eval()
            prompt = val_records[0].prompt_and_answer()[0]
            gen_s = timed(lambda: generate_answer(model, base, prompt, cfg.max_new_tokens))
        threads = torch.get_num_threads()
    n_periodic = (cfg.max_iters - 1) // cfg.eval_interval if cfg.eval_interval else 0
    total = (JOB_STARTUP_S + PEFT_IMPORT_S + load_s + 2 * (val_s + n_gen * gen_s) + first
             + (cfg.max_iters - 1) * per_step + n_periodic * val_s + FINISH_S)  # fmt: skip
    out = {"estimated_seconds": round(total, 1), "seconds_per_step": per_step, "first_step_seconds": first,
           "load_seconds": load_s, "val_seconds": val_s, "generate_seconds": gen_s, "n_train": len(train),
           "n_val": len(val), "threads": threads}  # fmt: skip
    return out  # the base, adapter and optimizer are freed with this frame


def flops_estimate(n_params: int, tokens_per_iter: int, max_iters: int, cpu: bool = True) -> float:
    """Rough wall time (seconds) of a run whose base cannot be loaded yet: ~4 * params * tokens FLOPs
    per step (forward, plus the backward through activations that LoRA still needs), at CPU_FLOPS (or
    GPU_FLOPS) effective throughput, plus a fixed allowance for loading and the before/after evaluation.
    """
    flops = 4.0 * n_params * tokens_per_iter * max_iters
    return OVERHEAD_S + flops / (CPU_FLOPS if cpu else GPU_FLOPS)
