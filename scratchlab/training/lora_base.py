"""Bases for LoRA: load a scratchlab GPT run or a Hugging Face folder into one `LoadedBase` shape.

    from scratchlab.training.lora_base import load_base, wrap_gpt
    base = load_base("gpt", "workspace/runs/gpt-3", device)        # our GPT + its tokenizer
    base = load_base("hf", "workspace/bases/smollm2-135m", device)  # a converted pretrained model
    base.model, base.fmt (lora_data.ChatFormat), base.max_len, base.hash

Our `GPT.forward(idx)` returns `(logits, loss)`; peft expects a module whose forward returns the
output, and it reads `model.config` as a Hugging Face config. `GPTLM` is a thin wrapper with neither
problem: `forward(input_ids) -> logits (B, T, vocab)`, layer names `gpt.transformer.h.<i>.attn.c_attn`
etc., so peft's suffix matching on `c_attn`/`c_proj`/`c_fc` works unchanged.

A GPT run folder holds `ckpt.pt`/`best.pt` (`scratchlab.training.trainer` checkpoints: model state,
`GPTConfig` dict and the prepared dataset folder, whose `meta.json` names the tokenizer). Char
tokenizers have no end-of-sequence token: answers then end with the text marker `STOP_TEXT`, and
generation stops there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from scratchlab.lab.atomic import atomic_write_json
from scratchlab.training import lora_data as D
from scratchlab.training.data import DataError, load_meta, load_tokenizer, tokenizer_eot_id
from scratchlab.training.errors import TrainError
from scratchlab.training.gpt_io import BEST_CKPT, LAST_CKPT, load_model, save_checkpoint
from scratchlab.training.hf_base import base_hash, load_base_model

HF_MAX_LEN = 512
STOP_TEXT = "\n\n###"  # answer terminator for vocabularies without an EOS token (our char GPTs)
CKPT_FILE = "ckpt.pt"
RUN_CONFIG = "config.json"
CKPT_KEEP = ("model_config", "train_config", "data_dir", "tokenizer", "vocab_size", "eot_id")


class BaseLoadError(ValueError):
    """The base cannot be loaded (missing folder/checkpoint, unknown tokenizer); says what is wrong."""


class GPTLM(nn.Module):
    """Our GPT as peft sees it: `forward(input_ids, attention_mask=None) -> logits (B, T, vocab)`.

    Right padding needs no mask: attention is causal, so padding never changes real tokens' logits.
    """

    def __init__(self, gpt: nn.Module):
        super().__init__()
        self.gpt = gpt

    @property
    def block_size(self) -> int:
        return int(self.gpt.config.block_size)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any
    ) -> torch.Tensor:
        logits, _loss = self.gpt(input_ids)
        return logits


@dataclass
class LoadedBase:
    """A base ready for LoRA.

    Attributes:
        kind: "gpt" or "hf".
        model: `GPTLM` (gpt) or a transformers causal LM (hf).
        fmt: how conversations become token ids for this base.
        path: the run or base folder.
        hash: short identity of the weights (sha256 prefix).
        max_len: longest training sequence (block_size for our GPT).
        name: a display name.
        tokenizer: the underlying tokenizer object.
        quantized: weights are 4-bit (QLoRA).
        info: extra facts for reports (architecture, params, tokenizer kind).
    """

    kind: str
    model: nn.Module
    fmt: D.ChatFormat
    path: Path
    hash: str
    max_len: int
    name: str
    tokenizer: Any = None
    quantized: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def file_hash(path: str | os.PathLike, limit: int = 1 << 30) -> str:
    """sha256 prefix (16 hex) of a file's first `limit` bytes and its size."""
    h = hashlib.sha256()
    p = Path(path)
    h.update(str(p.stat().st_size).encode())
    with open(p, "rb") as f:
        left = limit
        while left > 0 and (block := f.read(min(1 << 20, left))):
            h.update(block)
            left -= len(block)
    return h.hexdigest()[:16]


def _char_safe_encode(tok: Any):
    """Encode with a char tokenizer, dropping characters outside its alphabet (counted in `dropped`)."""
    stoi = getattr(tok, "stoi", None)
    if stoi is None:
        return tok.encode, None
    dropped = {"n": 0}

    def encode(text: str) -> list[int]:
        ids = [stoi[c] for c in text if c in stoi]
        dropped["n"] += len(text) - len(ids)
        return ids

    return encode, dropped


def gpt_format(tok: Any) -> D.ChatFormat:
    """The "### Instruction/### Response" format over one of our tokenizers (char or BPE)."""
    encode, _ = _char_safe_encode(tok)
    eos = tokenizer_eot_id(tok)
    fmt = D.template_format(encode, lambda ids: tok.decode(list(ids)), eos)
    if eos is None:
        fmt.stop_text = STOP_TEXT
    return fmt


def load_gpt_run(run_dir: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedBase:
    """Load a scratchlab GPT run folder (best.pt preferred, else ckpt.pt) and its tokenizer.

    Raises:
        BaseLoadError: missing or foreign checkpoint, or a tokenizer that cannot be found.
    """
    run = Path(run_dir)
    try:
        gpt, ckpt = load_model(run, device="cpu")
    except TrainError as e:
        raise BaseLoadError(str(e)) from e
    ckpt_file = run / BEST_CKPT if (run / BEST_CKPT).is_file() else run / LAST_CKPT
    try:
        meta = load_meta(ckpt["data_dir"])
        tok = load_tokenizer(meta)
    except (KeyError, DataError, OSError) as e:
        raise BaseLoadError(
            f"cannot load the tokenizer of run {run.name} (dataset {ckpt.get('data_dir')!r}): {e}"
        ) from e
    model = GPTLM(gpt).to(device)
    model.eval()
    keep = {k: ckpt[k] for k in CKPT_KEEP if k in ckpt}
    return LoadedBase(
        kind="gpt", model=model, fmt=gpt_format(tok), path=run, hash=file_hash(ckpt_file),
        max_len=gpt.config.block_size, name=run.name, tokenizer=tok,
        info={"architecture": "scratchlab-gpt", "n_params": gpt.num_params(), "ckpt": keep},
    )  # fmt: skip


def save_gpt_run(gpt: nn.Module, base: LoadedBase, out_dir: str | os.PathLike, extra: dict[str, Any]) -> Path:
    """Save a (merged) GPT as a run folder the GPT tools can read (`ckpt.pt` + `config.json`).

    Args:
        gpt: the plain `GPT` (after `merge_and_unload`, `GPTLM.gpt`).
        base: the base it was tuned from (model config, dataset and tokenizer are copied).
        out_dir: the new run folder.
        extra: more checkpoint fields (e.g. merged_from).

    Returns:
        The checkpoint path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = dict(base.info.get("ckpt", {}))
    save_checkpoint(out / LAST_CKPT, {**info, "model": gpt.state_dict(), "step": 0, **extra})
    train_cfg = dict(info.get("train_config") or {})
    train_cfg["out_dir"] = str(out)
    atomic_write_json(out / RUN_CONFIG, train_cfg)
    return out / LAST_CKPT


def load_hf(
    path: str | os.PathLike, device: torch.device | str = "cpu", qlora: bool | None = None
) -> LoadedBase:
    """Load a Hugging Face causal-LM folder (made by `hf_base.ensure_base`) with its chat format.

    Args:
        path: the base folder.
        device: torch device.
        qlora: 4-bit NF4 base (True), full precision (False), or auto (None: 4-bit when CUDA and
            bitsandbytes are present).
    """
    p = Path(path)
    dev = str(device)
    if qlora is None:
        qlora = dev.startswith("cuda") and importlib.util.find_spec("bitsandbytes") is not None
    model, tok = load_base_model(p, device=dev, load_in_4bit=bool(qlora))
    n_params = sum(x.numel() for x in model.parameters())
    return LoadedBase(
        kind="hf", model=model, fmt=D.hf_chat_format(tok), path=p, hash=base_hash(p), max_len=HF_MAX_LEN,
        name=p.name, tokenizer=tok, quantized=bool(qlora),
        info={"architecture": model.config.model_type, "n_params": n_params},
    )  # fmt: skip


def load_base(
    kind: str, path: str | os.PathLike, device: torch.device | str = "cpu", qlora: bool | None = None
) -> LoadedBase:
    """Load a base of `kind` ("gpt" run folder or "hf" model folder).

    Raises:
        BaseLoadError: unknown kind or missing folder.
    """
    if not path or not Path(path).exists():
        raise BaseLoadError(f"base folder {str(path)!r} does not exist")
    if kind == "gpt":
        return load_gpt_run(path, device)
    if kind == "hf":
        return load_hf(path, device, qlora)
    raise BaseLoadError(f"unknown base kind {kind!r}; expected 'gpt' or 'hf'")
