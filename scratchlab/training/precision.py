"""Where and how a run computes: device, CPU threads, autocast precision and `torch.compile`, per device.

One policy for every trainer (GPT and LoRA):

    from scratchlab.training import precision
    device = precision.resolve_device("auto")            # "cuda" when there is a GPU, else "cpu"
    precision.configure(device, num_threads=None)        # CPU threads for the idle cores; TF32 on CUDA
    amp = precision.autocast_dtype("auto", device)       # torch.bfloat16 or None (float32)
    with precision.autocast_context(amp, device): loss = model(x, y)
    precision.want_compile("auto", remaining_iters=5000, device=device)

- bf16 autocast where the hardware multiplies bf16 natively: CUDA GPUs with bf16 (Ampere and
  later) and CPUs with AVX512-BF16 or AMX; float32 elsewhere (mixed precision: Micikevicius et al.
  2018; PyTorch `torch.autocast`).
- `torch.compile` only for runs long enough to pay for the compile.
- On CPU, one intra-op thread per idle core (a larger OpenMP team spins at every barrier on a busy
  machine).

Source: measured in `benchmarks/gpt_train.py` (results in `benchmarks/results/gpt_train.md`).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import nullcontext

import torch

from scratchlab.training.errors import TrainError
from scratchlab.training.fields import DTYPES

COMPILE_AUTO_MIN_ITERS = {"cpu": 10_000, "cuda": 1000}
TORCH_DEFAULT_THREADS = torch.get_num_threads()  # before anyone changes it


def resolve_device(device: str) -> str:
    """ "cuda" or "cpu" for "auto"; `device` itself otherwise.

    Raises:
        TrainError: a CUDA device asked for on a machine without CUDA.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return device


def runnable_others(samples: int = 5, interval_s: float = 0.05) -> float:
    """Threads of other processes runnable right now: the median of `samples` readings of
    /proc/loadavg's runnable count (minus the reading thread) over `interval_s` gaps; the 1-minute
    load average where /proc is missing. The 1-minute average lags: right after another job ends
    it would still count that job's cores as busy.
    """
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


def threads_for_idle_cores(busy: float) -> int:
    """Intra-op CPU threads given `busy` runnable threads of others: the idle cores, >= 1.

    On a shared machine an OpenMP team larger than the idle cores spins at every operator's barrier;
    for the small matrices of a char-level GPT that made steps several times slower in our
    measurements (benchmarks/gpt_train.py), while one thread per idle core keeps each kernel busy.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, TORCH_DEFAULT_THREADS, int(cores - busy + 0.5)))


def configure(device: str, num_threads: int | None) -> None:
    """Set up `device` for training: CPU intra-op threads (`num_threads`; None: the idle cores,
    `threads_for_idle_cores(runnable_others())`; 0: torch's default) or TF32 matmuls on CUDA."""
    if device == "cpu":
        n = threads_for_idle_cores(runnable_others()) if num_threads is None else int(num_threads)
        if n > 0:
            torch.set_num_threads(n)
    elif device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


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

    Weights, optimizer state, layer norms, softmax and the loss stay float32 either way. "auto"
    picks bf16 where the hardware has it: CUDA GPUs with bf16 (Ampere and later) and CPUs with
    native bf16 (`cpu_has_native_bf16`); float32 elsewhere. On the nanoGPT CPU configuration bf16
    autocast made steady-state steps 1.85x faster than fp32 on an AVX512-BF16 CPU (18.7 vs 34.6 ms,
    interleaved steps in benchmarks/results/gpt_train.md).

    Args:
        setting: "auto" | "float32" | "bfloat16".
        device: "cpu", "cuda" or "cuda:N".

    Raises:
        TrainError: "bfloat16" asked for on a GPU without bf16, or an unknown setting.
    """
    if setting not in DTYPES:
        raise TrainError(f"dtype must be one of {DTYPES}, got {setting!r}")
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


def dtype_name(amp_dtype: torch.dtype | None) -> str:
    """ "bfloat16" or "float32" (None) for results and reports."""
    return str(amp_dtype or torch.float32).removeprefix("torch.")


def want_compile(setting: bool | str, remaining_iters: int, device: str = "cpu") -> bool:
    """Whether to `torch.compile` the model: `setting` True/False, or "auto".

    "auto" compiles runs of at least `COMPILE_AUTO_MIN_ITERS[device type]` remaining steps when
    TorchInductor can build kernels here (a C++ compiler on PATH). On 2 CPU cores the first compile
    costs 25-46 s (Inductor then caches the kernels on disk) and made steady-state steps of the nanoGPT
    CPU configuration only 1.04x (bf16) to 1.17x (fp32) faster than eager (interleaved steps in
    benchmarks/results/gpt_train.md), so a CPU run must be about 10k steps long before compiling pays
    for itself. If compiling fails at the first step, training goes on eagerly.
    """
    if setting != "auto":
        return bool(setting)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if remaining_iters < COMPILE_AUTO_MIN_ITERS[kind] or sys.platform == "win32":
        return False
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))
