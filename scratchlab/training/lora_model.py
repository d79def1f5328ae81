"""LoRA on a model: settings, target modules, adapter injection, logits and the masked loss, adapter folders.

    from scratchlab.training.lora_model import LoraTrainConfig, add_lora, count_params
    cfg = LoraTrainConfig(base_kind="gpt", r=8).resolved()     # defaults filled in, values checked
    model = add_lora(base, cfg)                                # a peft PeftModel; only A/B trainable
    trainable, total = count_params(model)

LoRA (Hu et al., 2021) freezes each target weight W (out, in) and learns W + (lora_alpha / r) B A,
A (r, in), B (out, r) with B = 0 at the start. peft (huggingface/peft) injects the A/B pairs into
Linear layers whose names end with one of `target_modules`, saves only them (`save_pretrained`)
and loads them back (`PeftModel.from_pretrained`). The training loop is in `scratchlab.training.lora`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from scratchlab.lab.atomic import atomic_files, atomic_write_json
from scratchlab.training import lora_data as D
from scratchlab.training.lora_base import LoadedBase
from scratchlab.training.lora_config import (  # noqa: F401 - re-exported
    DEFAULT_LR,
    LORA_META,
    MAX_R,
    LoraError,
    LoraTrainConfig,
)

LORA_FORMAT = "scratchlab-lora"
LORA_FORMAT_VERSION = 1
GPT_TARGETS = ("c_attn", "c_proj", "c_fc")
HF_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MERGE_TOLERANCE = 1e-3  # max abs logit difference accepted between adapter and merged outputs (fp32)
FOUR_BIT_MERGE_ERROR = (
    "cannot merge into a 4-bit (QLoRA) base: the LoRA update would be rounded into NF4 and the merged "
    "model would differ from the adapter's outputs. Dequantize first: reload the base in bf16/fp32 "
    "(load_in_4bit=False), attach the adapter, then merge."
)


# ---- adapters on a model -----------------------------------------------------------------------
def linear_module_names(model: nn.Module) -> list[str]:
    """Distinct last name components of the model's Linear layers (what `target_modules` can name)."""
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})


def default_targets(model: nn.Module) -> list[str]:
    """Per-architecture LoRA targets: our GPT's c_attn/c_proj/c_fc, Qwen2/Llama's q/k/v/o + gate/up/down.

    Raises:
        LoraError: no known projection layer found (name them with `target_modules`).
    """
    present = set(linear_module_names(model))
    for family in (GPT_TARGETS, HF_TARGETS):
        found = [t for t in family if t in present]
        if found:
            return found
    raise LoraError(
        f"no known attention/MLP projections in this model; pick target_modules from {sorted(present)}"
    )


def check_targets(model: nn.Module, targets: list[str]) -> None:
    """Raise LoraError naming any target that matches no Linear layer of `model` (with the valid names)."""
    present = set(linear_module_names(model))
    missing = [t for t in targets if t.rsplit(".", 1)[-1] not in present]
    if missing:
        raise LoraError(
            f"target module(s) {missing} not found in the model; Linear layers are: {sorted(present)}"
        )


def add_lora(base: LoadedBase, cfg: LoraTrainConfig, adapter_name: str = "default") -> nn.Module:
    """Wrap `base.model` with fresh LoRA adapters (B = 0, so outputs are unchanged).

    Args:
        base: the loaded base (its model is modified in place by peft).
        cfg: a resolved config (r, lora_alpha, lora_dropout, target_modules).

    Returns:
        The `peft.PeftModel`; only LoRA parameters have requires_grad.

    Raises:
        LoraError: a target module does not exist or r is invalid.
    """
    from peft import LoraConfig, get_peft_model  # peft is heavy: loaded when adapters are added

    targets = list(cfg.target_modules) if cfg.target_modules else default_targets(base.model)
    check_targets(base.model, targets)
    lcfg = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.lora_alpha if cfg.lora_alpha is not None else 2 * cfg.r,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM" if base.kind == "hf" else None,
    )
    if base.quantized:
        from peft import prepare_model_for_kbit_training  # see above

        prepare_model_for_kbit_training(base.model, use_gradient_checkpointing=False)
    return get_peft_model(base.model, lcfg, adapter_name=adapter_name)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; shared (tied) tensors counted once."""
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        n = p.numel() * (2 if p.__class__.__name__ == "Params4bit" else 1)  # 4-bit packs two per byte
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


def lm_logits(model: nn.Module, batch: dict, kind: str) -> torch.Tensor:
    """Logits (B, T, vocab) for `batch["input_ids"]`; works on bases and PeftModels of either kind."""
    ids = batch["input_ids"]
    if kind == "gpt":
        return model(ids)
    return model(input_ids=ids, attention_mask=batch.get("attention_mask")).logits


def next_token_targets(labels: torch.Tensor) -> torch.Tensor:
    """(B, T) targets for each position: labels shifted left by one, -100 in the last column."""
    return F.pad(labels, (0, 1), value=D.IGNORE_INDEX)[:, 1:]


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy: logits[:, t] predicts labels[:, t+1]; -100 labels are ignored.

    Args:
        logits: (B, T, V) float.
        labels: (B, T) int64, aligned with the inputs.
        reduction: "mean" over counted tokens or "sum".
    """
    targets = next_token_targets(labels).to(logits.device)  # (B, T); no copy of the (B, T, V) logits
    return F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        ignore_index=D.IGNORE_INDEX,
        reduction=reduction,
    )


def _supports_mask_slicing() -> bool:
    try:
        from transformers.modeling_utils import slice_logits_to_keep  # noqa: F401 - 2-D boolean logits_to_keep
    except ImportError:
        return False
    return True


def lm_loss(model: nn.Module, batch: dict, kind: str, reduction: str = "mean") -> torch.Tensor:
    """The masked next-token loss of `batch`, projecting onto the vocabulary only where it counts.

    For Hugging Face models the LM head runs only at positions whose next token is trained
    (`logits_to_keep`): prompt positions need no logits, and with a 150k vocabulary the head is a
    quarter of the model's FLOPs. Equal to `masked_lm_loss(lm_logits(...))` up to float rounding.

    Args:
        batch: `input_ids`, `labels` (and `attention_mask`), each (B, T).
        kind: "gpt" (full logits) or "hf".
        reduction: "mean" or "sum" over trained tokens.
    """
    if kind != "hf":
        return masked_lm_loss(lm_logits(model, batch, kind), batch["labels"], reduction)
    targets = next_token_targets(batch["labels"])  # (B, T)
    keep = targets != D.IGNORE_INDEX
    ids, mask = batch["input_ids"], batch.get("attention_mask")
    if _supports_mask_slicing():
        logits = model(
            input_ids=ids, attention_mask=mask, logits_to_keep=keep
        ).logits  # (N, V), N trained tokens
        picked = targets[keep]  # (N,)
    else:  # older transformers: one set of columns for the whole batch
        cols = keep.any(0).nonzero().squeeze(1)  # (K,)
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=cols).logits  # (B, K, V)
        picked = targets[:, cols]  # (B, K)
    return F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)),
        picked.reshape(-1),
        ignore_index=D.IGNORE_INDEX,
        reduction=reduction,
    )


# ---- adapter folder ---------------------------------------------------------------------------
def read_adapter_meta(adapter_dir: str | os.PathLike) -> dict[str, Any]:
    """The `lora_meta.json` of an adapter folder.

    Raises:
        LoraError: missing/unreadable, not ours, or a newer format version.
    """
    p = Path(adapter_dir) / LORA_META
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise LoraError(
            f"{adapter_dir} is not a saved LoRA adapter ({LORA_META} missing or unreadable: {e})"
        ) from e
    if meta.get("format") != LORA_FORMAT:
        raise LoraError(f"{p} is not a scratchlab LoRA adapter (format {meta.get('format')!r})")
    if meta.get("format_version", 0) > LORA_FORMAT_VERSION:
        raise LoraError(
            f"adapter {adapter_dir} has format {meta['format_version']}; this scratchlab reads <= {LORA_FORMAT_VERSION}"
        )
    return meta


def save_adapter(peft_model: nn.Module, out_dir: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write the adapter weights (peft format) and `lora_meta.json` into `out_dir`, each file atomically."""
    out = Path(out_dir)
    with atomic_files(out) as tmp:
        peft_model.save_pretrained(tmp)
    atomic_write_json(out / LORA_META, {"format": LORA_FORMAT, "format_version": LORA_FORMAT_VERSION, **meta})
    return out
