"""GPT checkpoints on disk, loading a trained model back, and sampling from it.

    from scratchlab.training.gpt_io import load_model, sample_from_checkpoint
    model, ckpt = load_model("runs/run-3")                 # best.pt when there is one, else ckpt.pt
    text = sample_from_checkpoint("runs/run-3", "ROMEO:", max_new_tokens=100, top_k=40, seed=0)

A run folder holds `ckpt.pt` (last state, with optimizer; what resume reads) and `best.pt` (weights
with the best val loss), both `scratchlab.gpt.ckpt` version 1 files written atomically by
`scratchlab.training.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from scratchlab.models.gpt import GPT, GPTConfig
from scratchlab.training.checkpoint import load_state, save_state
from scratchlab.training.data import encode_text, load_meta, load_tokenizer
from scratchlab.training.errors import TrainError

CKPT_FORMAT = "scratchlab.gpt.ckpt"
CKPT_VERSION = 1
LAST_CKPT = "ckpt.pt"
BEST_CKPT = "best.pt"
DIVERGED_HINT = "training diverged (non-finite loss); train again with a lower lr"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save `state` (plus format/version) atomically."""
    save_state(path, state, CKPT_FORMAT, CKPT_VERSION)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (a run folder: best.pt, else ckpt.pt).

    Raises:
        TrainError: missing, unreadable, foreign or newer than this code.
    """
    path = Path(path)
    if path.is_dir():
        path = path / (BEST_CKPT if (path / BEST_CKPT).exists() else LAST_CKPT)
    other = path.with_name(BEST_CKPT if path.name == LAST_CKPT else LAST_CKPT)
    way_out = f"use the run's other checkpoint (`cp {other} {path}`), or " if other.exists() else ""
    return load_state(path, CKPT_FORMAT, CKPT_VERSION, map_location, hint="; train the run first (or check the run id)",
                      torn_hint=f"{way_out}delete it and train the run again")  # fmt: skip


def strip_prefix(sd: dict[str, Any]) -> dict[str, Any]:
    """A state dict without the `_orig_mod.` (torch.compile) and `module.` (DDP) key prefixes."""
    return {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in sd.items()}


def load_model(path: str | Path, device: str = "cpu") -> tuple[GPT, dict[str, Any]]:
    """(model in eval mode, checkpoint dict) from a checkpoint file or a run folder (best.pt preferred)."""
    ckpt = load_checkpoint(path, map_location=device)
    model = GPT(GPTConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(strip_prefix(ckpt["model"]))
    return model.to(device).eval(), ckpt


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

    An empty prompt starts from the end-of-text token when the data has one, else from a newline (id 0,
    a NUL byte for BPE, was never trained on: a 1-layer run sampled from it wrote only '@' and broken
    bytes).

    Raises:
        TrainError: unusable checkpoint, or weights that are not finite (a diverged run);
        ValueError: prompt characters outside the vocabulary.
    """
    model, ckpt = load_model(path)
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise TrainError(f"run {path} has non-finite weights: {DIVERGED_HINT}")
    meta = load_meta(ckpt["data_dir"])
    tok = load_tokenizer(meta)
    ids = encode_text(tok, prompt) if prompt else []
    if not ids:
        if meta.eot_id is not None:
            ids = [meta.eot_id]
        elif meta.tokenizer != "char" or "\n" in (meta.chars or ""):
            ids = encode_text(tok, "\n")
        ids = ids or [0]
    idx = torch.tensor([ids], dtype=torch.long)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                         eos_id=meta.eot_id)  # fmt: skip
    new = out[0, len(ids) :].tolist()
    if meta.eot_id is not None and new and new[-1] == meta.eot_id:
        new = new[:-1]
    return tok.decode(new)
