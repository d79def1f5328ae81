"""The learning-rate schedule shared by the GPT and LoRA trainers: linear warmup, then cosine decay.

    from scratchlab.training.schedule import warmup_cosine
    lr = warmup_cosine(step, lr=1e-3, warmup_iters=100, decay_iters=2000, min_lr=1e-4)

Source: Loshchilov & Hutter 2017 ("SGDR", cosine annealing); karpathy/nanoGPT `train.py` `get_lr`
(warmup over `warmup_iters`, cosine to `min_lr` at `lr_decay_iters`, flat afterwards).
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, lr: float, warmup_iters: int, decay_iters: int, min_lr: float) -> float:
    """The learning rate at optimizer step `step` (0-based).

    Linear warmup `lr * (step + 1) / (warmup_iters + 1)` for `step < warmup_iters`; then cosine
    decay from `lr` to `min_lr` over `[warmup_iters, decay_iters)`; `min_lr` from `decay_iters` on
    (and right after warmup when `decay_iters <= warmup_iters`).

    Args:
        step: optimizer step index, >= 0.
        lr: peak learning rate.
        warmup_iters: steps of linear warmup.
        decay_iters: the step at which the decay reaches `min_lr`.
        min_lr: the floor.

    Returns:
        The learning rate (same unit as `lr`).
    """
    if step < warmup_iters:
        return lr * (step + 1) / (warmup_iters + 1)
    if step >= decay_iters or decay_iters <= warmup_iters:
        return min_lr
    ratio = (step - warmup_iters) / (decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def set_lr(optimizer, lr: float) -> None:
    """Set `lr` on every parameter group of `optimizer` (a torch optimizer)."""
    for g in optimizer.param_groups:
        g["lr"] = lr
