"""Pieces of the training loop shared by the GPT and LoRA trainers: the run clock, the stop decision
across ranks, and the shard of a global batch a rank works on.

    clock = RunClock(total=cfg.max_iters, step=start, elapsed=saved_seconds, tokens_per_step=B * T)
    while clock.step < clock.total:
        ...one optimizer step...
        clock.tick()                                         # step += 1, seconds and tokens counted
        if stop_agreed(reporter, dinfo, sync=clock.step % log_interval == 0): break
        reporter.update(clock.step, clock.total, f"loss {l:.3f} | {clock.speed()}")

Determinism across processes: every rank draws the same global batch and takes its contiguous
`rank_slice` of it; DDP averages the gradients, so a run on W processes follows the one-process
curve at the same global batch (karpathy/nanoGPT `train.py`; PyTorch DDP docs).
"""

from __future__ import annotations

import time

from scratchlab.training import ddp
from scratchlab.training.report import fmt_eta


class RunClock:
    """Step count, wall time and token throughput of a run, including earlier sessions of it.

    Attributes:
        step: optimizer steps done (all sessions).
        total: the step to stop at.
        elapsed: training seconds of all sessions (what `result.json` reports as `seconds`).
        session_tokens: tokens trained in this session.
    """

    def __init__(self, total: int, step: int = 0, elapsed: float = 0.0, tokens_per_step: int = 0) -> None:
        self.total, self.step, self.elapsed = total, step, elapsed
        self.tokens_per_step = tokens_per_step
        self.session_tokens = 0
        self.t_start = self._t_last = time.perf_counter()

    def tick(self, tokens: int | None = None) -> float:
        """Count one optimizer step of `tokens` tokens (default `tokens_per_step`); returns now (s)."""
        self.step += 1
        self.session_tokens += self.tokens_per_step if tokens is None else tokens
        now = time.perf_counter()
        self.elapsed += now - self._t_last
        self._t_last = now
        return now

    @property
    def session_seconds(self) -> float:
        return time.perf_counter() - self.t_start

    def tokens_per_sec(self) -> float:
        """Tokens per second over this session."""
        return self.session_tokens / max(1e-9, time.perf_counter() - self.t_start)

    def eta_s(self) -> float:
        """Seconds left at this session's token rate."""
        steps_per_s = self.tokens_per_sec() / max(1, self.tokens_per_step)
        return (self.total - self.step) / max(steps_per_s, 1e-9)

    def speed(self) -> str:
        """ "12.3k tok/s | ETA 1m05s"."""
        return f"{self.tokens_per_sec() / 1000:.1f}k tok/s | ETA {fmt_eta(self.eta_s())}"


def stop_agreed(stop_requested: bool, dinfo: ddp.DistInfo, sync: bool) -> bool:
    """Whether to stop now. One process: `stop_requested`. Under DDP the ranks agree only at `sync`
    steps (an all-reduce every rank joins), so a request seen by one rank stops all at the same step.
    """
    if not dinfo.enabled:
        return stop_requested
    return ddp.any_flag(stop_requested, dinfo) if sync else False


def rank_slice(n: int, dinfo: ddp.DistInfo) -> slice:
    """This rank's contiguous part of `n` items (n divisible by the world size)."""
    shard = n // dinfo.world_size
    return slice(dinfo.rank * shard, (dinfo.rank + 1) * shard)
