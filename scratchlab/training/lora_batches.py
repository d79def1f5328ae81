"""Padded batches of tokenized LoRA examples: an endless shuffled training stream and one eval pass.

    for batch in iter_batches(train, batch_size=4, pad_id=fmt.pad_id, seed=0): ...
    # batch: input_ids, labels, attention_mask, each int64 (B, T), right-padded to the longest example

Dynamic padding (pad to the longest example of the batch, labels -100 and attention_mask 0 on
padding) with right padding and causal attention leaves the real tokens' logits exactly as without
padding, so a batch's rows can be split across processes without changing any row's loss.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from scratchlab.training.lora_format import IGNORE_INDEX, LoraDataError


def collate(examples: Sequence[Any], pad_id: int):
    """Right-pad examples to the longest one.

    Returns:
        dict of int64 tensors `input_ids` (B, T), `labels` (B, T) (-100 on padding and prompts) and
        `attention_mask` (B, T) (1 on real tokens).
    """
    import torch  # lora_data (records, formats) is read by the tools without torch

    T = max(len(e) for e in examples)
    B = len(examples)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    labels = torch.full((B, T), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e)
        ids[i, :n] = torch.tensor(e.input_ids, dtype=torch.long)
        labels[i, :n] = torch.tensor(e.labels, dtype=torch.long)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def iter_batches(
    examples: Sequence[Any], batch_size: int, pad_id: int, seed: int = 0, shuffle: bool = True
) -> Iterator[dict]:
    """Endless stream of dynamically padded batches (reshuffled each epoch when `shuffle`).

    Raises:
        LoraDataError: batch_size < 1 or no examples.
    """
    if batch_size < 1:
        raise LoraDataError(f"batch_size must be >= 1, got {batch_size}")
    if not examples:
        raise LoraDataError("no training examples")
    rng = random.Random(seed)
    epoch = 0
    while True:
        order = list(range(len(examples)))
        if shuffle:
            rng.shuffle(order)
        for s in range(0, len(order), batch_size):
            chunk = [examples[i] for i in order[s : s + batch_size]]
            if len(chunk) < batch_size and len(examples) >= batch_size:
                chunk += [examples[i] for i in order[: batch_size - len(chunk)]]
            yield collate(chunk, pad_id)
        epoch += 1


def eval_batches(examples: Sequence[Any], batch_size: int, pad_id: int) -> Iterator[dict]:
    """The examples once, in order, in padded batches (for validation loss)."""
    for s in range(0, len(examples), batch_size):
        yield collate(examples[s : s + batch_size], pad_id)
