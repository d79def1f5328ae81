"""The GPT training loop: AdamW, warmup + cosine, clipping, accumulation, eval, checkpoints, resume, DDP.

    python -m scratchlab.training.trainer --config run.json            # one process (CPU by default)
    torchrun --standalone --nproc_per_node=2 -m scratchlab.training.trainer --config run.json
    python -m scratchlab.training.trainer --config run.json --job-id job-3 --home ~/lab   # as a lab job

`run.json` holds a `TrainConfig` (`gpt_config`; unknown keys and out-of-bounds values are rejected,
missing ones defaulted). The run folder `out_dir` receives `ckpt.pt` (last state, with optimizer;
what resume reads), `best.pt` (weights with the best val loss), `history.json` and `result.json`,
all written atomically, so a SIGKILL at any moment leaves the previous checkpoint intact.

The parts shared with the LoRA trainer live beside this file: `schedule` (warmup + cosine),
`precision` (device, threads, bf16 autocast, compile), `checkpoint` (atomic versioned states),
`report` (throttled progress, signal stop), `loop` (run clock, stop agreement across ranks),
`estimate` (the run-time estimate) and `ddp` (torchrun process groups).

Determinism: the windows of optimizer step `s` come from `np.random.default_rng([seed, 0, s])`, so a
resumed run sees exactly the batches it would have seen, and a DDP run (each rank a contiguous shard
of the same global batch) follows the single-process loss curve.

Performance on CPU (measured in `benchmarks/gpt_train.py`): batches are cut from an in-RAM array
with one fancy-indexing call per step, the fused AdamW kernel, gradients set to None, loss read back
only at log steps, and evaluation on fixed windows in large no-grad batches.

Source: karpathy/nanoGPT `train.py` (schedule, param groups, DDP accumulation); Loshchilov & Hutter
2019 (AdamW, cosine schedule).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from scratchlab.lab.atomic import atomic_write_json
from scratchlab.lab.job_child import job_main
from scratchlab.models.gpt import GPT, GPTConfig
from scratchlab.training import ddp, precision
from scratchlab.training.batches import Batcher, evaluate, resolve_data, split_micro_steps
from scratchlab.training.errors import TrainError
from scratchlab.training.estimate import estimate_gpt
from scratchlab.training.gpt_config import TrainConfig
from scratchlab.training.gpt_io import (  # noqa: F401 - re-exported: the engine's public names
    BEST_CKPT,
    CKPT_FORMAT,
    CKPT_VERSION,
    DIVERGED_HINT,
    LAST_CKPT,
    load_checkpoint,
    load_model,
    sample_from_checkpoint,
    save_checkpoint,
    strip_prefix,
)
from scratchlab.training.loop import RunClock, rank_slice, stop_agreed
from scratchlab.training.precision import (  # noqa: F401 - re-exported
    COMPILE_AUTO_MIN_ITERS,
    DTYPES,
    TORCH_DEFAULT_THREADS,
    autocast_context,
    autocast_dtype,
    cpu_has_native_bf16,
    resolve_device,
    want_compile,
)
from scratchlab.training.precision import runnable_others as _runnable_others
from scratchlab.training.report import REPORT_EVERY_S, Reporter, SignalStop, Throttled
from scratchlab.training.schedule import set_lr

MAX_EXP = 700.0  # exp() of a larger loss overflows a float; the perplexity is then reported as exp(700)

__all__ = ["TrainConfig", "TrainError", "train", "estimate_seconds", "load_model", "sample_from_checkpoint",
           "load_checkpoint", "save_checkpoint", "run_job", "main"]  # fmt: skip


def auto_num_threads() -> int:
    """Intra-op CPU threads for training: the cores not busy right now (`precision.threads_for_idle_cores`)."""
    return precision.threads_for_idle_cores(_runnable_others())


def estimate_seconds(cfg: TrainConfig, timed_steps: int = 5) -> dict[str, Any]:
    """The run-time estimate of `cfg` as a job (see `scratchlab.training.estimate.estimate_gpt`)."""
    return estimate_gpt(cfg, timed_steps)


def train(cfg: TrainConfig, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run (or resume) training as configured; returns the result dict also written to result.json.

    Returns:
        dict with run_dir, step, status ("done" | "target" | "cancelled"), val_loss, best_val_loss,
        best_step, train_loss, perplexity, bits_per_char, bits_per_byte, params, seconds,
        tokens_per_sec, checkpoint (best.pt), last_checkpoint, plot, model_config.

    Raises:
        TrainError: bad config, unusable checkpoint on resume, data too small.
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    dinfo = ddp.setup(device)
    device = dinfo.device
    precision.configure(device, cfg.num_threads)
    amp_dtype = autocast_dtype(cfg.dtype, device)
    autocast = autocast_context(amp_dtype, device)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    ckpt = None
    if cfg.resume:
        ckpt = load_checkpoint(out_dir / LAST_CKPT)
    meta = resolve_data(cfg.dataset, cfg.tokenizer, cfg.data_dir, cfg.out_dir)
    train_b = Batcher(meta.load_split("train"), cfg.block_size, cfg.seed)
    val_b = Batcher(meta.load_split("val"), cfg.block_size, cfg.seed)
    n_eval = cfg.eval_iters * cfg.batch_size
    eval_batchers = {"train": train_b, "val": val_b}
    eval_starts = {s: b.starts(0, n_eval, stream=1 + i) for i, (s, b) in enumerate(eval_batchers.items())}

    mcfg = cfg.model_config(meta.vocab_size)
    torch.manual_seed(cfg.seed)
    model = GPT(mcfg).to(device)
    optimizer = model.configure_optimizer(
        cfg.weight_decay, cfg.lr, (cfg.beta1, cfg.beta2), device.split(":")[0]
    )
    step, best_val, best_step, elapsed = 0, float("inf"), 0, 0.0
    history: dict[str, list] = {"eval": [], "log": []}
    if ckpt is not None:
        saved = GPTConfig.from_dict(ckpt["model_config"])
        if saved != mcfg:
            raise TrainError(
                f"cannot resume: the checkpoint's model {saved} differs from the config's {mcfg}"
            )
        model.load_state_dict(strip_prefix(ckpt["model"]))
        optimizer.load_state_dict(ckpt["optimizer"])
        step, best_val, best_step = (
            int(ckpt["step"]),
            float(ckpt["best_val_loss"]),
            int(ckpt.get("best_step", 0)),
        )
        history, elapsed = ckpt.get("history", history), float(ckpt.get("seconds", 0.0))
        if "rng" in ckpt:
            torch.set_rng_state(ckpt["rng"])
    clock = RunClock(
        cfg.max_iters, step, elapsed, tokens_per_step=cfg.batch_size * cfg.grad_accum * cfg.block_size
    )
    rep = Throttled(reporter, REPORT_EVERY_S)
    raw_model = model
    compiled = want_compile(cfg.compile, cfg.max_iters - step, device)
    if compiled:
        model = torch.compile(model)
    if dinfo.enabled:
        model = DDP(model, device_ids=[dinfo.local_rank] if device.startswith("cuda") else None)

    global_batch = cfg.batch_size * cfg.grad_accum
    if global_batch % dinfo.world_size:
        raise TrainError(
            f"batch_size*grad_accum ({global_batch}) must be divisible by the world size {dinfo.world_size}"
        )
    shard = global_batch // dinfo.world_size
    micro_steps = split_micro_steps(cfg.batch_size, cfg.grad_accum, dinfo.world_size)
    micro = shard // micro_steps
    n_params = raw_model.num_params()
    plot_path = Path(cfg.plot_path) if cfg.plot_path else out_dir / "loss.png"
    master = dinfo.is_master

    def state(kind: str) -> dict[str, Any]:
        s = {"model_config": mcfg.to_dict(), "train_config": cfg.to_dict(), "model": raw_model.state_dict(),
             "step": step, "best_val_loss": best_val, "best_step": best_step, "data_dir": str(meta.path),
             "tokenizer": meta.tokenizer, "vocab_size": meta.vocab_size, "eot_id": meta.eot_id}  # fmt: skip
        if kind == "last":
            s.update(
                optimizer=optimizer.state_dict(),
                history=history,
                seconds=clock.elapsed,
                rng=torch.get_rng_state(),
            )
        return s

    def do_eval() -> dict[str, float]:
        nonlocal best_val, best_step
        losses = evaluate(raw_model, eval_batchers, eval_starts, autocast)
        if not math.isfinite(losses["val"]):
            raise TrainError(f"val loss is {losses['val']} at step {step}: {DIVERGED_HINT} (lr {cfg.lr:g})")
        history["eval"].append({"step": step, "train_loss": losses["train"], "val_loss": losses["val"],
                                "lr": cfg.lr_at(step), "seconds": clock.elapsed})  # fmt: skip
        if master:
            if losses["val"] < best_val:
                best_val, best_step = losses["val"], step
                if step > 0:
                    save_checkpoint(out_dir / BEST_CKPT, state("best"))
            save_checkpoint(out_dir / LAST_CKPT, state("last"))
            atomic_write_json(out_dir / "history.json", history)
            rep.update(step, cfg.max_iters, f"eval: train {losses['train']:.4f} val {losses['val']:.4f}",
                       force=True, train_loss=losses["train"], val_loss=losses["val"])  # fmt: skip
        return losses

    status = "done"
    last_eval_step = history["eval"][-1]["step"] if history["eval"] else -1
    lossf = float("nan")
    model.train()
    try:
        while True:
            if step % cfg.eval_interval == 0 and step != last_eval_step or step >= cfg.max_iters:
                if step != last_eval_step:
                    losses = do_eval()
                    last_eval_step = step
                    if cfg.target_loss is not None and losses["val"] <= cfg.target_loss:
                        status = "target"
                        break
                if step >= cfg.max_iters:
                    break
            lr = cfg.lr_at(step)
            set_lr(optimizer, lr)
            starts = train_b.starts(step, global_batch)[rank_slice(global_batch, dinfo)]
            x_all, y_all = train_b.windows(starts)
            if device != "cpu":
                x_all, y_all = x_all.to(device, non_blocking=True), y_all.to(device, non_blocking=True)
            for m in range(micro_steps):
                x, y = x_all[m * micro : (m + 1) * micro], y_all[m * micro : (m + 1) * micro]
                if dinfo.enabled:
                    model.require_backward_grad_sync = m == micro_steps - 1
                try:
                    with autocast:
                        _, loss = model(x, y)
                except Exception as e:  # Inductor failed to build kernels: go on eagerly
                    if not compiled or model is raw_model:
                        raise
                    print(
                        f"torch.compile failed ({type(e).__name__}: {e}); training eagerly", file=sys.stderr
                    )
                    model, compiled = raw_model, False
                    if dinfo.enabled:
                        model = DDP(
                            raw_model, device_ids=[dinfo.local_rank] if device.startswith("cuda") else None
                        )
                    with autocast:
                        _, loss = model(x, y)
                (loss / micro_steps).backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            clock.tick()
            step = clock.step
            log_step = step % cfg.log_interval == 0 or step == cfg.max_iters
            if log_step:
                lossf = loss.item()
                if not math.isfinite(lossf):
                    raise TrainError(
                        f"training loss is {lossf} at step {step}: {DIVERGED_HINT} (lr {cfg.lr:g})"
                    )
                if master:
                    history["log"].append([step, lossf])
                    val = f" | val {history['eval'][-1]['val_loss']:.3f}" if history["eval"] else ""
                    rep.update(step, cfg.max_iters, f"loss {lossf:.3f}{val} | {clock.speed()}", force=step == cfg.max_iters,
                               loss=lossf, lr=lr, tokens_per_sec=clock.tokens_per_sec())  # fmt: skip
            # ranks agree on stopping only at log steps (a collective all must join)
            if stop_agreed(rep.stop_requested, dinfo, sync=log_step):
                status = "cancelled"
                if master:
                    save_checkpoint(out_dir / LAST_CKPT, state("last"))
                break
    finally:
        ddp.teardown(dinfo)

    seconds = clock.session_seconds
    last_eval = (
        history["eval"][-1] if history["eval"] else {"val_loss": float("nan"), "train_loss": float("nan")}
    )
    val_loss = last_eval["val_loss"]
    result = {
        "run_dir": str(out_dir), "status": status, "step": step, "max_iters": cfg.max_iters,
        "val_loss": val_loss, "best_val_loss": best_val, "best_step": best_step,
        "train_loss": last_eval["train_loss"], "last_batch_loss": lossf,
        "perplexity": math.exp(min(val_loss, MAX_EXP)) if val_loss == val_loss else float("nan"),
        "bits_per_char": meta.bits_per_unit(val_loss, "val", "chars"),
        "bits_per_byte": meta.bits_per_unit(val_loss, "val", "bytes"),
        "params": n_params, "seconds": round(clock.elapsed, 3), "session_seconds": round(seconds, 3),
        "tokens_per_sec": round(clock.session_tokens / max(seconds, 1e-9), 1),
        "checkpoint": str(out_dir / (BEST_CKPT if (out_dir / BEST_CKPT).exists() else LAST_CKPT)),
        "last_checkpoint": str(out_dir / LAST_CKPT), "plot": None, "model_config": mcfg.to_dict(),
        "data_dir": str(meta.path), "tokenizer": meta.tokenizer, "device": device, "world_size": dinfo.world_size,
        "num_threads": torch.get_num_threads(), "compiled": compiled,
        "dtype": precision.dtype_name(amp_dtype),
    }  # fmt: skip
    if master:
        try:
            from scratchlab.training.plots import plot_losses  # matplotlib: optional, and slow to import

            result["plot"] = str(plot_losses(history, plot_path, title=out_dir.name))
        except ImportError:  # matplotlib missing: training results still stand
            result["plot"] = None
        atomic_write_json(out_dir / "result.json", result)
    return result


def run_job(config: dict[str, Any], reporter: Reporter | None = None) -> dict[str, Any]:
    """Job entry: build a `TrainConfig` from a dict and train."""
    return train(TrainConfig.from_dict(config), reporter)


def main(argv: list[str] | None = None) -> int:
    return job_main(argv, prog="python -m scratchlab.training.trainer", what="Train a GPT.",
                    config_name="TrainConfig (see scratchlab.training.gpt_config)", work=run_job, alone=_alone,
                    flags=[("resume", "continue from <out_dir>/ckpt.pt")])  # fmt: skip


def _alone(config: dict[str, Any]) -> int:
    result = train(TrainConfig.from_dict(config), SignalStop(sys.stdout, every=100))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: result[k] for k in ("status", "step", "val_loss", "best_val_loss", "tokens_per_sec",
                                                 "seconds", "checkpoint")}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
