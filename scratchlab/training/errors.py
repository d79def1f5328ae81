"""The training engine's user-facing error type.

    from scratchlab.training.errors import TrainError
    raise TrainError(f"lr must be a finite number > 0, got {lr!r}")

Every bad setting, unusable checkpoint or impossible device request raises `TrainError` (a
`ValueError`) with the offending value and what to change; the LoRA engine's `LoraError` is a
subclass, so a face can catch both with one `except`.
"""

from __future__ import annotations


class TrainError(ValueError):
    """A bad training configuration or an unusable checkpoint; the message says what to change."""
