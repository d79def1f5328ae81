"""Distributed data parallel setup for the GPT trainer (torchrun + DDP; gloo on CPU, NCCL on CUDA).

    torchrun --standalone --nproc_per_node=2 -m scratchlab.training.trainer --config run.json
    torchrun --nproc_per_node=8 --nnodes=2 --node_rank=0 --master_addr=10.0.0.1 --master_port=29500 \\
        -m scratchlab.training.trainer --config run.json

The trainer splits every global batch (same sampled windows as a single process with the same
`batch_size * grad_accum`) into one contiguous shard per rank; DDP averages the gradients, so the
loss curve matches the single-process run up to floating-point summation order.

Source: PyTorch DDP docs; karpathy/nanoGPT `train.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job: rank 0 of 1 when not launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_master(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: str) -> DistInfo:
    """Initialise the process group if torchrun launched us; return this rank's `DistInfo`.

    Args:
        device: "cpu" or "cuda" (each CUDA rank takes GPU `LOCAL_RANK`).

    Raises:
        RuntimeError: CUDA requested but fewer GPUs than local ranks.
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistInfo(device=device)
    rank, world, local = (
        int(os.environ["RANK"]),
        int(os.environ["WORLD_SIZE"]),
        int(os.environ.get("LOCAL_RANK", 0)),
    )
    if device.startswith("cuda"):
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"local rank {local} has no GPU ({torch.cuda.device_count()} visible)")
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=device)


def any_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank if `flag` is true on any rank (a stop request seen by one rank stops all)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    if info.device.startswith("cuda"):
        t = t.to(info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
