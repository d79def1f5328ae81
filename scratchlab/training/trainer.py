"""The GPT training loop: AdamW, warmup + cosine, clipping, accumulation, eval, checkpoints, resume, DDP.

    python -m scratchlab.training.trainer --config run.json            # one process (CPU by default)
    torchrun --standalone --nproc_per_node=2 -m scratchlab.training.trainer --config run.json
    python -m scratchlab.training.trainer --config run.json --job-id job-3 --home ~/lab   # as a lab job

`run.json` holds a `TrainConfig` (unknown keys are rejected, missing ones defaulted). The run folder
`out_dir` receives `ckpt.pt` (last state, with optimizer; what resume reads), `best.pt` (weights with
the best val loss), `history.json` and `result.json`, all written atomically, so a SIGKILL at any
moment leaves the previous checkpoint intact.

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

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from scratchlab.lab.atomic import atomic_path, atomic_write_json
from scratchlab.models.gpt import GPT, GPTConfig
from scratchlab.training import ddp
from scratchlab.training.data import DatasetMeta, ensure_dataset, load_meta

CKPT_FORMAT = "scratchlab.gpt.ckpt"
CKPT_VERSION = 1
LAST_CKPT = "ckpt.pt"
BEST_CKPT = "best.pt"
REPORT_EVERY_S = 0.5  # at most this often to the job reporter (SQLite writes)
EVAL_BATCH = 64  # windows per no-grad eval forward
TORCH_DEFAULT_THREADS = torch.get_num_threads()  # before anyone changes it
MODEL_KEYS = {f.name for f in dataclasses.fields(GPTConfig)} - {"vocab_size"}


class TrainError(ValueError):
    """A bad training configuration or an unusable checkpoint; the message says what to change."""


class Reporter(Protocol):
    """What the loop reports to (a lab `JobReporter`, or nothing)."""

    stop_requested: bool

    def update(self, step: int, total: int, message: str = "", **metrics: float) -> None: ...


@dataclass
class TrainConfig:
    """Everything a run needs; saved in its checkpoints. Model fields mirror `GPTConfig`."""

    out_dir: str = "out"
    dataset: str = "shakespeare"
    tokenizer: str = "char"
    data_dir: str | None = None  # a prepared dataset folder; default: <out_dir>/../../datasets/<key>
    # model
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    pos_emb: str = "learned"
    residual: bool = True
    layernorm: bool = True
    activation: str = "gelu"
    mlp_ratio: float = 4.0
    # optimisation
    batch_size: int = 12  # sequences per micro step, all ranks together
    grad_accum: int = 1  # micro steps per optimizer step
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float | None = None  # default lr / 10
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # default max_iters
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 disables
    # evaluation, logging, stopping
    eval_interval: int = 250
    eval_iters: int = 20  # eval windows = eval_iters * batch_size per split
    log_interval: int = 10
    target_loss: float | None = None  # stop once val loss <= this
    seed: int = 1337
    # system
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    compile: bool | str = "auto"  # True | False | "auto" (see want_compile)
    dtype: str = "auto"  # "auto" | "float32" | "bfloat16": autocast precision (see autocast_dtype)
    num_threads: int | None = None  # CPU intra-op threads (None: auto_num_threads(); 0: torch's default)
    resume: bool = False  # continue from <out_dir>/ckpt.pt
    plot_path: str | None = None  # loss PNG (default <out_dir>/loss.png)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise TrainError(f"unknown training config keys {sorted(unknown)}; known: {sorted(names)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        for k in ("batch_size", "grad_accum", "eval_interval", "eval_iters", "log_interval"):
            if int(getattr(self, k)) < 1:
                raise TrainError(f"{k} must be >= 1, got {getattr(self, k)!r}")
        if self.max_iters < 0 or self.warmup_iters < 0:
            raise TrainError("max_iters and warmup_iters must be >= 0")
        if not self.lr > 0:
            raise TrainError(f"lr must be > 0, got {self.lr!r}")
        if self.compile not in (True, False, "auto"):
            raise TrainError(f'compile must be true, false or "auto", got {self.compile!r}')
        if self.dtype not in DTYPES:
            raise TrainError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")

    def model_config(self, vocab_size: int) -> GPTConfig:
        try:
            return GPTConfig(vocab_size=vocab_size, **{k: getattr(self, k) for k in MODEL_KEYS})
        except ValueError as e:
            raise TrainError(str(e)) from e

    def lr_at(self, step: int) -> float:
        """Linear warmup to `lr`, cosine decay to `min_lr` at `lr_decay_iters`, then flat."""
        min_lr = self.lr / 10 if self.min_lr is None else self.min_lr
        decay_iters = self.max_iters if self.lr_decay_iters is None else self.lr_decay_iters
        if step < self.warmup_iters:
            return self.lr * (step + 1) / (self.warmup_iters + 1)
        if step >= decay_iters or decay_iters <= self.warmup_iters:
            return min_lr
        ratio = (step - self.warmup_iters) / (decay_iters - self.warmup_iters)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (self.lr - min_lr)


class Batcher:
    """Random (x, y) windows of one split; the windows of step `s` depend only on (seed, s)."""

    def __init__(self, data: np.ndarray, block_size: int, seed: int):
        if len(data) <= block_size + 1:
            raise TrainError(f"split has {len(data)} tokens, fewer than block_size + 2 = {block_size + 2}")
        self.data, self.block_size, self.seed = data, block_size, seed
        self.offsets = np.arange(block_size + 1)

    def starts(self, step: int, count: int, stream: int = 0) -> np.ndarray:
        """`count` window starts for `step` (stream 0: training; other streams: eval sets)."""
        rng = np.random.default_rng([self.seed, stream, step])
        return rng.integers(0, len(self.data) - self.block_size, size=count)

    def windows(self, starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) int64 (B, T) for windows starting at `starts`; y is x shifted by one."""
        chunk = torch.from_numpy(self.data[starts[:, None] + self.offsets].astype(np.int64))  # (B, T+1)
        return chunk[:, :-1], chunk[:, 1:]


def auto_num_threads() -> int:
    """Intra-op CPU threads for training: the cores not busy right now, >= 1.

    On a shared machine an OpenMP team larger than the idle cores spins at every operator's barrier;
    for the small matrices of a char-level GPT that made steps several times slower in our
    measurements (benchmarks/gpt_train.py), while one thread per idle core keeps each kernel busy.
    "Busy" is the median of five samples of the kernel's runnable-thread count (/proc/loadavg,
    minus this process) over 0.2 s: the 1-minute load average lags, and right after another job
    ends it would still count that job's cores as busy.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = _runnable_others()
    return max(1, min(cores, TORCH_DEFAULT_THREADS, int(cores - busy + 0.5)))


def _runnable_others(samples: int = 5, interval_s: float = 0.05) -> float:
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)  # minus this reading thread
        except (OSError, ValueError, IndexError):  # not Linux: fall back to the 1-minute load average
            try:
                return os.getloadavg()[0]
            except OSError:
                return 0.0
        if i < samples - 1:
            time.sleep(interval_s)
    return float(sorted(counts)[len(counts) // 2])


DTYPES = ("auto", "float32", "bfloat16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16).

    There oneDNN's bf16 GEMMs do twice the multiply-adds per instruction of fp32 ones; on other x86
    CPUs PyTorch still accepts bf16 but emulates it, which is slower than fp32.
    """
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        f = getattr(torch.cpu, probe, None)
        try:
            if f is not None and f():
                return True
        except Exception:  # a probe missing on this build or platform: look at the next
            continue
    return False


def autocast_dtype(setting: str, device: str) -> torch.dtype | None:
    """The dtype to autocast matmuls and attention to while training, or None for plain float32.

    Weights, optimizer state, layer norms, softmax and the loss stay float32 either way (mixed
    precision: Micikevicius et al. 2018; PyTorch `torch.autocast` op lists). "auto" picks bf16 where
    the hardware has it: CUDA GPUs with bf16 (Ampere and later) and CPUs with native bf16
    (`cpu_has_native_bf16`); float32 elsewhere. On the nanoGPT CPU configuration bf16 autocast made
    steady-state steps 1.85x faster than fp32 on an AVX512-BF16 CPU (18.7 vs 34.6 ms, interleaved
    steps in benchmarks/results/gpt_train.md).

    Raises:
        TrainError: "bfloat16" asked for on a GPU without bf16.
    """
    if setting == "float32":
        return None
    cuda = device.startswith("cuda")
    if setting == "bfloat16":
        if cuda and not torch.cuda.is_bf16_supported():
            raise TrainError("this GPU has no bf16 support; train with dtype float32")
        return torch.bfloat16
    if cuda:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_native_bf16() else None


def autocast_context(amp_dtype: torch.dtype | None, device: str):
    """`torch.autocast` to `amp_dtype` on `device`'s type, or a no-op context for None (float32)."""
    return torch.autocast(device.split(":")[0], dtype=amp_dtype) if amp_dtype else nullcontext()


COMPILE_AUTO_MIN_ITERS = {"cpu": 10_000, "cuda": 1000}


def want_compile(setting: bool | str, remaining_iters: int, device: str = "cpu") -> bool:
    """Whether to `torch.compile` the model: `setting` True/False, or "auto".

    "auto" compiles runs of at least `COMPILE_AUTO_MIN_ITERS[device type]` remaining steps when
    TorchInductor can build kernels here (a C++ compiler on PATH). On 2 CPU cores the first compile
    costs 25-46 s (Inductor then caches the kernels on disk) and made steady-state steps of the nanoGPT
    CPU configuration only 1.04x (bf16) to 1.17x (fp32) faster than eager (interleaved steps in
    benchmarks/results/gpt_train.md), so a CPU run must be about 10k steps long before compiling pays
    for itself.
    If compiling fails at the first step, training goes on eagerly.
    """
    if setting != "auto":
        return bool(setting)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if remaining_iters < COMPILE_AUTO_MIN_ITERS[kind] or sys.platform == "win32":
        return False
    import shutil

    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


def split_micro_steps(batch_size: int, grad_accum: int, world_size: int) -> int:
    """Micro steps per rank so that each rank's shard (batch_size*grad_accum/world_size) splits evenly.

    Prefers micro batches of `batch_size` (grad_accum / world_size steps), else `grad_accum` steps of
    batch_size / world_size, else one step with the whole shard.
    """
    shard = batch_size * grad_accum // world_size
    if grad_accum % world_size == 0:
        return grad_accum // world_size
    if shard % grad_accum == 0:
        return grad_accum
    return 1


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return device


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save `state` (plus format/version) atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": CKPT_FORMAT, "version": CKPT_VERSION, **state}, tmp)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`. Raises TrainError if missing or foreign."""
    path = Path(path)
    if path.is_dir():
        path = path / (BEST_CKPT if (path / BEST_CKPT).exists() else LAST_CKPT)
    if not path.exists():
        raise TrainError(f"no checkpoint at {path}; train the run first (or check the run id)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises many types for truncated/foreign files
        other = path.with_name(BEST_CKPT if path.name == LAST_CKPT else LAST_CKPT)
        way_out = f"use the run's other checkpoint (`cp {other} {path}`), or " if other.exists() else ""
        raise TrainError(f"checkpoint {path} is truncated or damaged ({type(e).__name__}: {e}); "
                         f"{way_out}delete it and train the run again") from e  # fmt: skip
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise TrainError(f"{path} is not a scratchlab GPT checkpoint")
    if int(ckpt.get("version", 0)) > CKPT_VERSION:
        raise TrainError(
            f"{path} has checkpoint version {ckpt['version']}; this scratchlab reads <= {CKPT_VERSION}"
        )
    return ckpt


def load_model(path: str | Path, device: str = "cpu") -> tuple[GPT, dict[str, Any]]:
    """(model in eval mode, checkpoint dict) from a checkpoint file or a run folder (best.pt preferred)."""
    ckpt = load_checkpoint(path, map_location=device)
    model = GPT(GPTConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(_strip_prefix(ckpt["model"]))
    return model.to(device).eval(), ckpt


def _strip_prefix(sd: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in sd.items()}


@torch.no_grad()
def evaluate(
    model: GPT, batchers: dict[str, Batcher], starts: dict[str, np.ndarray], autocast
) -> dict[str, float]:
    """Mean loss per split over fixed windows (no grad, eval mode, large batches)."""
    was_training = model.training
    model.eval()
    out = {}
    for split, b in batchers.items():
        total, n = 0.0, 0
        for i in range(0, len(starts[split]), EVAL_BATCH):
            s = starts[split][i : i + EVAL_BATCH]
            x, y = b.windows(s)
            x, y = x.to(model.lm_head.weight.device), y.to(model.lm_head.weight.device)
            with autocast:
                _, loss = model(x, y)
            total += float(loss) * len(s)
            n += len(s)
        out[split] = total / n
    model.train(was_training)
    return out


def _resolve_data(cfg: TrainConfig) -> DatasetMeta:
    if cfg.data_dir and (Path(cfg.data_dir) / "meta.json").exists():
        return load_meta(cfg.data_dir)
    root = (
        Path(cfg.data_dir).parent if cfg.data_dir else Path(cfg.out_dir).resolve().parent.parent / "datasets"
    )
    return ensure_dataset(cfg.dataset, cfg.tokenizer, root)


def _fmt_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


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
    if device == "cpu":
        n = auto_num_threads() if cfg.num_threads is None else int(cfg.num_threads)
        if n > 0:
            torch.set_num_threads(n)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    amp_dtype = autocast_dtype(cfg.dtype, device)
    autocast = autocast_context(amp_dtype, device)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    ckpt = None
    if cfg.resume:
        ckpt = load_checkpoint(out_dir / LAST_CKPT)
    meta = _resolve_data(cfg)
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
        model.load_state_dict(_strip_prefix(ckpt["model"]))
        optimizer.load_state_dict(ckpt["optimizer"])
        step, best_val, best_step = (
            int(ckpt["step"]),
            float(ckpt["best_val_loss"]),
            int(ckpt.get("best_step", 0)),
        )
        history, elapsed = ckpt.get("history", history), float(ckpt.get("seconds", 0.0))
        if "rng" in ckpt:
            torch.set_rng_state(ckpt["rng"])
    raw_model = model
    compiled = want_compile(cfg.compile, cfg.max_iters - step, device)
    if compiled:
        model = torch.compile(model)
    from torch.nn.parallel import DistributedDataParallel as DDP

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
    tokens_per_step = global_batch * cfg.block_size
    n_params = raw_model.num_params()
    plot_path = Path(cfg.plot_path) if cfg.plot_path else out_dir / "loss.png"
    master = dinfo.is_master

    def state(kind: str) -> dict[str, Any]:
        s = {"model_config": mcfg.to_dict(), "train_config": cfg.to_dict(), "model": raw_model.state_dict(),
             "step": step, "best_val_loss": best_val, "best_step": best_step, "data_dir": str(meta.path),
             "tokenizer": meta.tokenizer, "vocab_size": meta.vocab_size, "eot_id": meta.eot_id}  # fmt: skip
        if kind == "last":
            s.update(
                optimizer=optimizer.state_dict(), history=history, seconds=elapsed, rng=torch.get_rng_state()
            )
        return s

    def do_eval() -> dict[str, float]:
        nonlocal best_val, best_step
        losses = evaluate(raw_model, eval_batchers, eval_starts, autocast)
        history["eval"].append({"step": step, "train_loss": losses["train"], "val_loss": losses["val"],
                                "lr": cfg.lr_at(step), "seconds": elapsed})  # fmt: skip
        if master:
            if losses["val"] < best_val:
                best_val, best_step = losses["val"], step
                if step > 0:
                    save_checkpoint(out_dir / BEST_CKPT, state("best"))
            save_checkpoint(out_dir / LAST_CKPT, state("last"))
            atomic_write_json(out_dir / "history.json", history)
            if reporter is not None:
                reporter.update(step, cfg.max_iters, f"eval: train {losses['train']:.4f} val {losses['val']:.4f}",
                                train_loss=losses["train"], val_loss=losses["val"])  # fmt: skip
        return losses

    status = "done"
    t_start = time.perf_counter()
    t_last = t_start
    session_tokens = 0
    last_report = 0.0
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
            for g in optimizer.param_groups:
                g["lr"] = lr
            starts = train_b.starts(step, global_batch)[dinfo.rank * shard : (dinfo.rank + 1) * shard]
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
            step += 1
            session_tokens += tokens_per_step
            now = time.perf_counter()
            elapsed += now - t_last
            t_last = now
            stop = reporter is not None and reporter.stop_requested
            if step % cfg.log_interval == 0 or step == cfg.max_iters:
                lossf = loss.item()
                if master:
                    history["log"].append([step, lossf])
                stop = ddp.any_flag(stop, dinfo)
                if (
                    master
                    and reporter is not None
                    and (now - last_report >= REPORT_EVERY_S or step == cfg.max_iters)
                ):
                    last_report = now
                    tps = session_tokens / max(1e-9, now - t_start)
                    eta = (cfg.max_iters - step) * tokens_per_step / max(tps, 1e-9)
                    val = f" | val {history['eval'][-1]['val_loss']:.3f}" if history["eval"] else ""
                    reporter.update(step, cfg.max_iters, f"loss {lossf:.3f}{val} | {tps / 1000:.1f}k tok/s | ETA {_fmt_eta(eta)}",
                                    loss=lossf, lr=lr, tokens_per_sec=tps)  # fmt: skip
            elif dinfo.enabled:  # ranks agree on stopping only at log steps (a collective all must join)
                stop = False
            if stop:
                status = "cancelled"
                if master:
                    save_checkpoint(out_dir / LAST_CKPT, state("last"))
                break
    finally:
        ddp.teardown(dinfo)

    seconds = time.perf_counter() - t_start
    last_eval = (
        history["eval"][-1] if history["eval"] else {"val_loss": float("nan"), "train_loss": float("nan")}
    )
    val_loss = last_eval["val_loss"]
    result = {
        "run_dir": str(out_dir), "status": status, "step": step, "max_iters": cfg.max_iters,
        "val_loss": val_loss, "best_val_loss": best_val, "best_step": best_step,
        "train_loss": last_eval["train_loss"], "last_batch_loss": lossf,
        "perplexity": math.exp(val_loss) if val_loss == val_loss else float("nan"),
        "bits_per_char": meta.bits_per_unit(val_loss, "val", "chars"),
        "bits_per_byte": meta.bits_per_unit(val_loss, "val", "bytes"),
        "params": n_params, "seconds": round(elapsed, 3), "session_seconds": round(seconds, 3),
        "tokens_per_sec": round(session_tokens / max(seconds, 1e-9), 1),
        "checkpoint": str(out_dir / (BEST_CKPT if (out_dir / BEST_CKPT).exists() else LAST_CKPT)),
        "last_checkpoint": str(out_dir / LAST_CKPT), "plot": None, "model_config": mcfg.to_dict(),
        "data_dir": str(meta.path), "tokenizer": meta.tokenizer, "device": device, "world_size": dinfo.world_size,
        "num_threads": torch.get_num_threads(), "compiled": compiled,
        "dtype": str(amp_dtype or torch.float32).removeprefix("torch."),
    }  # fmt: skip
    if master:
        try:
            from scratchlab.training.plots import plot_losses

            result["plot"] = str(plot_losses(history, plot_path, title=out_dir.name))
        except ImportError:  # matplotlib missing: training results still stand
            result["plot"] = None
        atomic_write_json(out_dir / "result.json", result)
    return result


def estimate_seconds(cfg: TrainConfig, timed_steps: int = 3) -> dict[str, Any]:
    """Estimate a run's wall time by timing a few optimizer steps in this process (no files written
    except the prepared dataset cache).

    Returns:
        {"estimated_seconds", "seconds_per_step", "params", "vocab_size", "data_dir"}.
    """
    cfg.validate()
    meta = _resolve_data(cfg)
    device = resolve_device(cfg.device)
    b = Batcher(meta.load_split("train"), cfg.block_size, cfg.seed)
    model = GPT(cfg.model_config(meta.vocab_size)).to(device)
    opt = model.configure_optimizer(cfg.weight_decay, cfg.lr, (cfg.beta1, cfg.beta2), device.split(":")[0])
    amp_dtype = autocast_dtype(cfg.dtype, device)
    autocast = autocast_context(amp_dtype, device)
    per_step = []
    for i in range(timed_steps + 1):
        t0 = time.perf_counter()
        for m in range(cfg.grad_accum):
            x, y = b.windows(b.starts(i * cfg.grad_accum + m, cfg.batch_size))
            with autocast:
                _, loss = model(x.to(device), y.to(device))
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:  # the first step warms up allocators and kernels
            per_step.append(time.perf_counter() - t0)
    sps = sorted(per_step)[len(per_step) // 2]
    remaining = max(0, cfg.max_iters) if not cfg.resume else cfg.max_iters
    n_evals = remaining // cfg.eval_interval + 1
    eval_steps = n_evals * 2 * cfg.eval_iters / 3 / cfg.grad_accum  # a no-grad forward ~ 1/3 of a step
    return {"estimated_seconds": round(sps * (remaining + eval_steps) + 3.0, 1), "seconds_per_step": sps,
            "params": model.num_params(), "vocab_size": meta.vocab_size, "data_dir": str(meta.path)}  # fmt: skip


def sample_from_checkpoint(
    path: str | Path,
    prompt: str = "",
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> str:
    """Generate text from a run folder or checkpoint; returns the continuation (prompt excluded).

    An empty prompt starts from a newline (char tokenizer) or the end-of-text token (BPE).

    Raises:
        TrainError: unusable checkpoint; ValueError: prompt characters outside the vocabulary.
    """
    from scratchlab.training.data import encode_text, load_tokenizer

    model, ckpt = load_model(path)
    meta = load_meta(ckpt["data_dir"])
    tok = load_tokenizer(meta)
    ids = encode_text(tok, prompt) if prompt else []
    if not ids:
        if meta.eot_id is not None:
            ids = [meta.eot_id]
        elif meta.tokenizer == "char" and "\n" in (meta.chars or ""):
            ids = tok.encode("\n")
        else:
            ids = [0]
    idx = torch.tensor([ids], dtype=torch.long)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                         eos_id=meta.eot_id)  # fmt: skip
    new = out[0, len(ids) :].tolist()
    if meta.eot_id is not None and new and new[-1] == meta.eot_id:
        new = new[:-1]
    return tok.decode(new)


class _SignalStop:
    """Stand-alone runs: SIGINT/SIGTERM request a clean stop (checkpoint kept) instead of dying."""

    def __init__(self) -> None:
        self.stop_requested = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.stop_requested = True

    def update(self, step: int, total: int, message: str = "", **metrics: float) -> None:
        if step % 100 == 0 or step == total or message.startswith("eval"):
            print(f"step {step}/{total}: {message}", flush=True)


def run_job(config: dict[str, Any], reporter: Reporter | None = None) -> dict[str, Any]:
    """Job entry: build a `TrainConfig` from a dict and train."""
    return train(TrainConfig.from_dict(config), reporter)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scratchlab.training.trainer", description="Train a GPT.")
    p.add_argument(
        "--config", required=True, help="path of a JSON TrainConfig (see scratchlab.training.trainer)"
    )
    p.add_argument(
        "--job-id", default=None, help="lab job id to report progress to (set by scratchlab.lab.jobs)"
    )
    p.add_argument("--home", default=None, help="workspace root holding lab.db (with --job-id)")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/ckpt.pt")
    args = p.parse_args(argv)
    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    if args.resume:
        config["resume"] = True
    if args.job_id:
        from scratchlab.lab.jobs import run_job_main  # the job face of this engine

        return run_job_main(args.job_id, args.home, run_job, config)
    result = train(TrainConfig.from_dict(config), _SignalStop())
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: result[k] for k in ("status", "step", "val_loss", "best_val_loss", "tokens_per_sec",
                                                 "seconds", "checkpoint")}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
