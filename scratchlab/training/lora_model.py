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
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from scratchlab.lab.atomic import atomic_write_json
from scratchlab.training import lora_data as D
from scratchlab.training.errors import TrainError
from scratchlab.training.fields import check_settings, setting
from scratchlab.training.lora_base import LoadedBase
from scratchlab.training.precision import DTYPES

LORA_META = "lora_meta.json"
LORA_FORMAT = "scratchlab-lora"
LORA_FORMAT_VERSION = 1
GPT_TARGETS = ("c_attn", "c_proj", "c_fc")
HF_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DEFAULT_LR = {"gpt": 1e-3, "hf": 2e-4}
MAX_R = 1024
MERGE_TOLERANCE = 1e-3  # max abs logit difference accepted between adapter and merged outputs (fp32)
FOUR_BIT_MERGE_ERROR = (
    "cannot merge into a 4-bit (QLoRA) base: the LoRA update would be rounded into NF4 and the merged "
    "model would differ from the adapter's outputs. Dequantize first: reload the base in bf16/fp32 "
    "(load_in_4bit=False), attach the adapter, then merge."
)


class LoraError(TrainError):
    """Bad LoRA settings (r, target modules, base) or a bad adapter folder; the message says how to fix it."""


# ---- configuration ----------------------------------------------------------------------------
@dataclass
class LoraTrainConfig:
    """Everything a fine-tuning run needs (saved with the adapter; missing keys default on load).

    The one place each LoRA hyperparameter, its default, bounds and help text are written; the tool
    schema and CLI options are generated from it (`scratchlab.training.settings`).
    """

    base_kind: str = setting("hf", "Base kind: hf (a pretrained Hugging Face model) | gpt (our GPT run).",
                             choices=("hf", "gpt"))  # fmt: skip
    base_path: str = setting("", "Folder of the base model.")
    data: str = setting(
        "",
        "Training data: a .jsonl file of alpaca records {instruction, input, output}, chat records "
        "{messages: [{role, content}]}, or {text}; or 'demo' for the built-in wiki question/answer set.",
    )
    out_dir: str = setting("", "The adapter folder.")
    base_ref: str = setting("", "Registry id or name of the base, for the record.")
    r: int = setting(8, "LoRA rank r (>= 1): size of the low-rank update; 4-16 is typical.", ge=1, le=MAX_R,
                     label="r (LoRA rank)")  # fmt: skip
    lora_alpha: float | None = setting(None, "LoRA scaling alpha; null for 2 * r.", gt=0, le=1e6)
    lora_dropout: float = setting(0.05, "Dropout on the LoRA input, in [0, 1).", ge=0, lt=1)
    target_modules: list[str] | None = setting(
        None, "Linear layer names to adapt (default per architecture)."
    )
    max_iters: int = setting(200, "Optimizer steps, e.g. 200 or '1k'.", ge=1, le=10**9)
    lr: float | None = setting(
        None, "Peak learning rate; null for 2e-4 (pretrained base) or 1e-3 (our GPT).", gt=0, lt=1
    )
    warmup_iters: int | None = setting(
        None, "Steps of linear warmup (default max_iters // 10, at most 100).", ge=0, le=10**9
    )
    batch_size: int = setting(4, "Sequences per micro step, all processes together.", ge=1, le=1 << 16)
    grad_accum: int = setting(1, "Micro steps per optimizer step.", ge=1, le=1 << 16)
    grad_clip: float = setting(1.0, "Clip the gradient norm to this (0 disables).", ge=0, le=1e6)
    weight_decay: float = setting(0.0, "AdamW weight decay.", ge=0, le=10)
    max_len: int | None = setting(
        None, "Longest example in tokens (default: block_size for our GPT, 512 for a pretrained base).",
        ge=2, le=1 << 20,
    )  # fmt: skip
    val_fraction: float = setting(0.1, "Share of the records held out for validation.", gt=0, lt=1)
    eval_interval: int = setting(
        0, "Steps between val-loss checks (0: only before and after).", ge=0, le=10**9
    )
    eval_iters: int = setting(0, "Val batches per loss estimate (0: the whole val split).", ge=0, le=10**9)
    eval_generate: int = setting(
        4, "Val prompts answered before and after training for BLEU/ROUGE and samples.", ge=0, le=100_000
    )
    max_new_tokens: int = setting(64, "Tokens generated per val prompt.", ge=1, le=1 << 16)
    ckpt_interval: int = setting(
        50, "Steps between resumable checkpoints (0: only when cancelled).", ge=0, le=10**9
    )
    seed: int = setting(1337, "Random seed.", ge=0, le=2**63 - 1)
    device: str = setting("auto", "auto | cpu | cuda (or cuda:N).")
    dtype: str = setting(
        "auto", "auto | float32 | bfloat16 (auto: bf16 autocast where the GPU/CPU has bf16).", choices=DTYPES
    )
    num_threads: int | None = setting(
        None, "CPU intra-op threads (default: the idle cores; 0: torch's default).", ge=0, le=4096
    )
    qlora: bool | None = setting(
        None, "4-bit NF4 base (QLoRA); default: on CUDA with bitsandbytes for an hf base."
    )
    resume: bool = setting(True, "Continue from <out_dir>/train_state.pt when it exists.")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoraTrainConfig:
        """Build from a (possibly older) dict; unknown keys raise LoraError."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise LoraError(f"unknown LoRA config keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def resolved(self) -> LoraTrainConfig:
        """A copy with defaults filled in and values checked.

        Raises:
            LoraError: an unknown base kind, or a value outside its field's bounds (r, dropout, lr, ...).
        """
        if self.base_kind not in ("hf", "gpt"):
            raise LoraError(f"base_kind must be 'hf' or 'gpt', got {self.base_kind!r}")
        if not isinstance(self.r, int) or self.r <= 0 or self.r > MAX_R:
            raise LoraError(f"r (LoRA rank) must be an integer in 1..{MAX_R}, got {self.r!r}; try 8 or 16")
        check_settings(self, LoraError)
        d = asdict(self)
        d["lora_alpha"] = float(self.lora_alpha if self.lora_alpha is not None else 2 * self.r)
        d["lr"] = self.lr if self.lr is not None else DEFAULT_LR[self.base_kind]
        d["warmup_iters"] = (
            self.warmup_iters if self.warmup_iters is not None else min(100, self.max_iters // 10)
        )
        return LoraTrainConfig(**d)


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
    from peft import LoraConfig, get_peft_model

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
        from peft import prepare_model_for_kbit_training

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
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter.tmp-", dir=out))
    try:
        peft_model.save_pretrained(tmp)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_json(out / LORA_META, {"format": LORA_FORMAT, "format_version": LORA_FORMAT_VERSION, **meta})
    return out
