"""Atomic, versioned training checkpoints shared by the GPT and LoRA trainers.

    from scratchlab.training.checkpoint import save_state, load_state
    save_state(run_dir / "ckpt.pt", {"model": ..., "optimizer": ..., "step": 120}, "scratchlab.gpt.ckpt", 1)
    state = load_state(run_dir / "ckpt.pt", "scratchlab.gpt.ckpt", 1)

A state is a dict saved with `torch.save` to a temporary file beside the target, fsynced and renamed
over it (`scratchlab.lab.atomic`), so a SIGKILL or a full disk at any moment leaves the previous
checkpoint intact. Each file carries `format` and `version`; loading checks both and says what to do
when the file is torn, foreign or from a newer scratchlab (nanoGPT stores its `model_args` in the
checkpoint for the same reason).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from scratchlab.lab.atomic import atomic_path
from scratchlab.training.errors import TrainError


def save_state(path: str | Path, state: dict[str, Any], fmt: str, version: int) -> None:
    """`torch.save` `state` plus `format`/`version` to `path` atomically.

    Raises:
        OSError: the write failed (e.g. no space left); the previous file at `path` is untouched.
    """
    with atomic_path(path) as tmp:
        torch.save({**state, "format": fmt, "version": version}, tmp)


def load_state(
    path: str | Path,
    fmt: str,
    version: int,
    map_location: str = "cpu",
    error: type[TrainError] = TrainError,
    legacy_ok: bool = False,
    hint: str = "",
    torn_hint: str | None = None,
) -> dict[str, Any]:
    """Read a state written by `save_state`.

    Args:
        path: the checkpoint file.
        fmt, version: the expected format name and the newest version this code reads.
        map_location: where tensors go (`torch.load`).
        error: the `TrainError` subclass to raise.
        legacy_ok: accept a dict without `format` (files written before formats were stamped).
        hint: appended to the message of a missing or torn file (what the user can do).
        torn_hint: for a torn file, what the user can do instead of `hint` ("use the other checkpoint").

    Returns:
        The state dict.

    Raises:
        `error`: missing, unreadable (torn, truncated), foreign or newer than `version`.
    """
    path = Path(path)
    if not path.exists():
        raise error(f"no checkpoint at {path}{hint}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises many types for truncated/foreign files
        if torn_hint is not None:
            raise error(f"checkpoint {path} is truncated or damaged ({type(e).__name__}: {e}); {torn_hint}") from e
        raise error(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}){hint}") from e
    if not isinstance(state, dict) or state.get("format", None if legacy_ok else "?") not in (fmt, None):
        raise error(f"{path} is not a {fmt} checkpoint")
    if int(state.get("version", 0)) > version:
        raise error(f"{path} has checkpoint version {state['version']}; this scratchlab reads <= {version}")
    return state
