"""GPT training batches: random windows of a prepared split, reproducible per step, and how a global
batch is cut into micro steps across ranks.

    b = Batcher(meta.load_split("train"), block_size=64, seed=1337)
    x, y = b.windows(b.starts(step, 12))        # int64 (12, 64) each; y is x shifted by one

The windows of optimizer step `s` come from `np.random.default_rng([seed, 0, s])`, so a resumed run
sees exactly the batches it would have seen. Batches are cut from an in-RAM array with one
fancy-indexing call per step (measured in `benchmarks/gpt_train.py`).

Source: karpathy/nanoGPT `train.py` `get_batch`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from scratchlab.training.data import DatasetMeta, ensure_dataset, load_meta
from scratchlab.training.errors import TrainError


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


def resolve_data(dataset: str, tokenizer: str, data_dir: str | None, out_dir: str) -> DatasetMeta:
    """The prepared dataset of a run: `data_dir` when it holds one, else prepared (or reused) in
    `data_dir`'s parent or `<out_dir>/../../datasets`."""
    if data_dir and (Path(data_dir) / "meta.json").exists():
        return load_meta(data_dir)
    root = Path(data_dir).parent if data_dir else Path(out_dir).resolve().parent.parent / "datasets"
    return ensure_dataset(dataset, tokenizer, root)


EVAL_BATCH = 64  # windows per no-grad eval forward


@torch.no_grad()
def evaluate(
    model, batchers: dict[str, Batcher], starts: dict[str, np.ndarray], autocast
) -> dict[str, float]:
    """Mean loss per split over fixed windows (no grad, eval mode, batches of `EVAL_BATCH` windows).

    Args:
        model: a `GPT` (not wrapped); its `lm_head` tells the device.
        batchers: split name -> Batcher.
        starts: split name -> window starts (the same every eval, so evals compare).
        autocast: the precision context (`precision.autocast_context`).

    Returns:
        split name -> mean cross-entropy (nats per token).
    """
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
