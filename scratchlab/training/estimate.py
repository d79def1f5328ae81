"""How long a training run will take, from a few timed steps of the real thing.

    from scratchlab.training.estimate import estimate_gpt
    est = estimate_gpt(cfg)       # {"estimated_seconds": 31.4, "seconds_per_step": 0.012, ...}

The model is built and stepped in this process exactly as the job will (same device, thread policy,
precision and batch), and the estimate adds up what the job does:

    startup + first step + (steps - 1) * median step + evals * (eval + checkpoint save) + finish

- startup: a job's child process importing torch and scratchlab and reading its data
  (`JOB_STARTUP_S`, measured on the project machine by `benchmarks/estimate.py`);
- first step: timed on its own (allocators, oneDNN/cuBLAS kernel selection), plus a compile allowance
  when the run will `torch.compile`;
- a step: the median of `timed_steps` steps after the first;
- an eval: one real eval pass over the run's eval windows, timed, plus one timed checkpoint save;
- finish: the loss plot and result files (`FINISH_S`).

`benchmarks/estimate.py` checks the total against the measured wall time of 10 runs
(`benchmarks/results/estimate.md`). The older estimate timed only steps in the calling process with
its own thread count, and assumed an eval cost a third of a step per eval window; in the agent's
process (busy threads of the chat model) that came out 25-30x too high (issue 16).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from scratchlab.models.gpt import GPT
from scratchlab.training import precision
from scratchlab.training.batches import Batcher, evaluate, resolve_data
from scratchlab.training.gpt_io import save_checkpoint

JOB_STARTUP_S = 2.5  # seconds from job start to the first training step (imports, data, model)
FINISH_S = 1.0  # seconds for the loss plot and result files
COMPILE_S = {"cpu": 35.0, "cuda": 40.0}  # first-step torch.compile allowance (seconds)
TIMED_STEPS = 5


def time_steps(step: Callable[[int], Any], n: int, budget_s: float = math.inf) -> tuple[float, float]:
    """Run `step(i)` for i in 0..n and time each call, stopping early (after at least two calls) once
    `budget_s` seconds are spent, so a big model's estimate stays short.

    Returns:
        (seconds of the first call, median seconds of the later calls).
    """
    times = []
    for i in range(n + 1):
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
        if i >= 1 and sum(times) >= budget_s:
            break
    return times[0], statistics.median(times[1:]) if len(times) > 1 else times[0]


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of `fn` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def count_evals(max_iters: int, eval_interval: int) -> int:
    """Evals a GPT run does: at step 0, every `eval_interval` steps, and at `max_iters`."""
    return max_iters // eval_interval + 1 + (1 if max_iters % eval_interval else 0)


def total_seconds(first_step_s: float, step_s: float, steps: int, eval_s: float, n_evals: int,
                  startup_s: float = JOB_STARTUP_S, finish_s: float = FINISH_S) -> float:  # fmt: skip
    """startup + first step + (steps - 1) steps + n_evals evals + finish, in seconds."""
    body = first_step_s + max(0, steps - 1) * step_s if steps > 0 else 0.0
    return startup_s + body + n_evals * eval_s + finish_s


class threads_as_job:
    """Context: CPU threads set as a training job would set them (`precision.configure`), restored after."""

    def __init__(self, device: str, num_threads: int | None) -> None:
        self.device, self.num_threads = device, num_threads

    def __enter__(self):
        self.saved = torch.get_num_threads()
        precision.configure(self.device, self.num_threads)
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.saved)


def estimate_gpt(cfg, timed_steps: int = TIMED_STEPS) -> dict[str, Any]:
    """Estimate a GPT run's wall time as a job (see the module docstring). Writes nothing but the
    prepared dataset cache and a temporary checkpoint.

    Args:
        cfg: a `TrainConfig`.
        timed_steps: steps timed after the first.

    Returns:
        dict: estimated_seconds, seconds_per_step, first_step_seconds, eval_seconds, evals, params,
        vocab_size, data_dir, threads.

    Raises:
        TrainError: a bad config or too little data.
    """
    cfg.validate()
    meta = resolve_data(cfg.dataset, cfg.tokenizer, cfg.data_dir, cfg.out_dir)
    device = precision.resolve_device(cfg.device)
    kind = device.split(":")[0]
    with threads_as_job(device, cfg.num_threads):
        train_b = Batcher(meta.load_split("train"), cfg.block_size, cfg.seed)
        val_b = Batcher(meta.load_split("val"), cfg.block_size, cfg.seed)
        torch.manual_seed(cfg.seed)
        model = GPT(cfg.model_config(meta.vocab_size)).to(device)
        opt = model.configure_optimizer(cfg.weight_decay, cfg.lr, (cfg.beta1, cfg.beta2), kind)
        autocast = precision.autocast_context(precision.autocast_dtype(cfg.dtype, device), device)

        def step(i: int) -> None:
            for m in range(cfg.grad_accum):
                x, y = train_b.windows(train_b.starts(i * cfg.grad_accum + m, cfg.batch_size))
                with autocast:
                    _, loss = model(x.to(device), y.to(device))
                (loss / cfg.grad_accum).backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if kind == "cuda":
                torch.cuda.synchronize()

        first, per_step = time_steps(step, max(1, timed_steps))
        n_eval = cfg.eval_iters * cfg.batch_size
        batchers = {"train": train_b, "val": val_b}
        starts = {s: b.starts(0, n_eval, stream=1 + i) for i, (s, b) in enumerate(batchers.items())}
        eval_s = timed(lambda: evaluate(model, batchers, starts, autocast))
        with tempfile.TemporaryDirectory() as tmp:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict()}
            eval_s += timed(lambda: save_checkpoint(Path(tmp) / "ckpt.pt", state))
        threads = torch.get_num_threads()
    if precision.want_compile(cfg.compile, cfg.max_iters, device):
        first += COMPILE_S[kind]
    n_evals = count_evals(cfg.max_iters, cfg.eval_interval)
    total = total_seconds(first, per_step, cfg.max_iters, eval_s, n_evals)
    return {"estimated_seconds": round(total, 1), "seconds_per_step": per_step, "first_step_seconds": first,
            "eval_seconds": eval_s, "evals": n_evals, "params": model.num_params(),
            "vocab_size": meta.vocab_size, "data_dir": str(meta.path), "threads": threads}  # fmt: skip


def flops_seconds(flops: float, flops_per_s: float) -> float:
    """`flops` at `flops_per_s`, in seconds (inf for a non-positive rate)."""
    return flops / flops_per_s if flops_per_s > 0 else math.inf
