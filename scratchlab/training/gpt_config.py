"""The GPT run settings: `TrainConfig`, the one place each GPT hyperparameter, its default, bounds and
help text are written (saved in every checkpoint; the tool schemas and CLI options are generated from
it by `scratchlab.training.settings`).

    from scratchlab.training.gpt_config import TrainConfig
    cfg = TrainConfig.from_dict({"n_layer": 6, "max_iters": 5000})   # unknown keys and bad values raise
    cfg.lr_at(step)                                                  # warmup + cosine schedule

Source: karpathy/nanoGPT `train.py` (the names and defaults of its configuration).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from scratchlab.training.errors import TrainError
from scratchlab.training.fields import DTYPES, check_settings, setting
from scratchlab.training.schedule import warmup_cosine

MAX_LR = 1.0  # AdamW steps beyond this diverge at once; refuse rather than train to NaN


@dataclass
class TrainConfig:
    """Everything a run needs; saved in its checkpoints. Model fields mirror `GPTConfig`."""

    out_dir: str = setting("out", "Run folder (checkpoints, history, result).")
    dataset: str = setting("shakespeare", "Text to train on: 'shakespeare' or a path to a text file/folder.")
    tokenizer: str = setting(
        "char", "'char' (one token per character) or a trained tokenizer's name, id or path."
    )
    data_dir: str | None = setting(
        None, "A prepared dataset folder (default: <out_dir>/../../datasets/<key>)."
    )
    # model
    block_size: int = setting(64, "Context length in tokens.", ge=1, le=65536)
    n_layer: int = setting(4, "Number of transformer blocks.", ge=1, le=256)
    n_head: int = setting(4, "Attention heads per block (must divide n_embd).", ge=1, le=256)
    n_embd: int = setting(128, "Embedding width.", ge=1, le=65536)
    dropout: float = setting(0.0, "Dropout rate, 0 to 0.5.", ge=0, lt=1)
    bias: bool = setting(False, "Biases in Linear layers and layer norms.")
    pos_emb: str = setting("learned", "Position embedding: learned | none | rope.")
    residual: bool = setting(True, "Residual connections around each sublayer.")
    layernorm: bool = setting(True, "Layer norms before each sublayer and at the end.")
    activation: str = setting("gelu", "MLP activation: gelu | relu.")
    mlp_ratio: float = setting(4.0, "MLP hidden width as a multiple of n_embd.", gt=0, le=64)
    # optimisation
    batch_size: int = setting(12, "Sequences per optimizer step.", ge=1, le=1 << 20)  # all ranks together
    grad_accum: int = setting(1, "Micro steps per optimizer step.", ge=1, le=1 << 16)
    max_iters: int = setting(2000, "Optimizer steps, e.g. 2000 or '2k'.", ge=0, le=10**9)
    lr: float = setting(1e-3, "Peak learning rate (warmup then cosine decay to lr/10).", gt=0, le=MAX_LR)
    min_lr: float | None = setting(
        None, "Learning rate at the end of the decay (default lr/10).", ge=0, le=MAX_LR
    )
    warmup_iters: int = setting(100, "Steps of linear learning-rate warmup.", ge=0, le=10**9)
    lr_decay_iters: int | None = setting(
        None, "Step where the cosine decay ends (default max_iters).", ge=0, le=10**9
    )
    weight_decay: float = setting(0.1, "AdamW weight decay on matrices.", ge=0, le=10)
    beta1: float = setting(0.9, "AdamW beta1.", ge=0, lt=1)
    beta2: float = setting(0.99, "AdamW beta2.", ge=0, lt=1)
    grad_clip: float = setting(1.0, "Clip the gradient norm to this (0 disables).", ge=0, le=1e6)
    # evaluation, logging, stopping
    eval_interval: int = setting(250, "Steps between evals.", ge=1, le=10**9)
    eval_iters: int = setting(
        20, "Eval batches per split (eval windows = eval_iters * batch_size).", ge=1, le=10**6
    )
    log_interval: int = setting(10, "Steps between logged training losses.", ge=1, le=10**9)
    target_loss: float | None = setting(None, "Stop early once val loss <= this.", ge=0, le=1e3)
    seed: int = setting(1337, "Random seed.", ge=0, le=2**63 - 1)
    # system
    device: str = setting("auto", "auto | cpu | cuda (or cuda:N).")
    compile: bool | str = setting(
        "auto", "torch.compile the model (auto: runs of >= 1000 steps on CUDA, >= 10000 on CPU).",
        choices=(True, False, "auto"),
    )  # fmt: skip
    dtype: str = setting(
        "auto", "auto | float32 | bfloat16 (auto: bf16 autocast where the GPU/CPU has bf16).", choices=DTYPES
    )
    num_threads: int | None = setting(
        None, "CPU intra-op threads (default: the idle cores; 0: torch's default).", ge=0, le=4096
    )
    resume: bool = setting(False, "Continue from <out_dir>/ckpt.pt.")
    plot_path: str | None = setting(None, "Loss plot PNG (default <out_dir>/loss.png).")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build and validate from a dict (older dicts: missing keys take defaults).

        Raises:
            TrainError: unknown keys or a refused value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise TrainError(f"unknown training config keys {sorted(unknown)}; known: {sorted(names)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Raises TrainError for a non-finite, out-of-bounds or unknown-choice value (see the field bounds)."""
        check_settings(self, TrainError)

    def model_config(self, vocab_size: int):
        """The `GPTConfig` of this run (its checks raise TrainError: n_embd % n_head, pos_emb, activation)."""
        # torch is heavy: this module is read by the CLI and the tool schemas, which must start without it
        from scratchlab.models.gpt import GPTConfig

        keys = {f.name for f in dataclasses.fields(GPTConfig)} - {"vocab_size"}
        try:
            return GPTConfig(vocab_size=vocab_size, **{k: getattr(self, k) for k in keys})
        except ValueError as e:
            raise TrainError(str(e)) from e

    def lr_at(self, step: int) -> float:
        """Linear warmup to `lr`, cosine decay to `min_lr` at `lr_decay_iters`, then flat."""
        min_lr = self.lr / 10 if self.min_lr is None else self.min_lr
        decay_iters = self.max_iters if self.lr_decay_iters is None else self.lr_decay_iters
        return warmup_cosine(step, self.lr, self.warmup_iters, decay_iters, min_lr)
