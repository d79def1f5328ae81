"""The LoRA run settings: `LoraTrainConfig`, the one place each LoRA hyperparameter, its default, bounds
and help text are written (saved with every adapter; the tool schema and CLI options are generated from
it by `scratchlab.training.settings`). Free of torch, so the CLI and the tool schemas load fast.

    from scratchlab.training.lora_config import LoraTrainConfig
    cfg = LoraTrainConfig(base_kind="gpt", r=8).resolved()     # defaults filled in, values checked

Source: huggingface/peft `LoraConfig` (the names r, lora_alpha, lora_dropout, target_modules).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from scratchlab.training.errors import TrainError
from scratchlab.training.fields import DTYPES, check_settings, setting

DEFAULT_LR = {"gpt": 1e-3, "hf": 2e-4}
MAX_R = 1024
LORA_META = "lora_meta.json"  # in an adapter folder: settings, base, metrics (its presence = saved)
TRAIN_STATE = "train_state.pt"  # in an adapter folder while training: the resumable state


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
    cached_prefix: str = setting(
        "", "Text every record starts with (a long system prompt), evaluated once by the base with the "
        "adapter off and reused by every step; only the rest is trained through (hf bases).",
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
