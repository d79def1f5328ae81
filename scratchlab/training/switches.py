"""Ablation switches: the variants an ablation compares with its baseline, and their one parser.

A switch is a name (`no_pos_emb`, `rope`, `no_residual`, `no_layernorm`, `relu`) or `key=value`, an
override of one model or optimisation setting of `TrainConfig` (`n_head=1`, `dropout=0.2`). Kept apart
from `scratchlab.training.ablate` (which loads torch) so the tool schema and the planner can check a
switch without it.

    parse_switch("no_pos_emb")   # ("no_pos_emb", {"pos_emb": "none"})
    parse_switch("n_head=1")     # ("n_head=1", {"n_head": 1})

Source: the classic transformer ablations (Vaswani et al. 2017, table 3).
"""

from __future__ import annotations

from typing import Any

from scratchlab.training.gpt_config import TrainConfig

# name -> (overrides, what the variant is, in words: the tool schema glosses each name with it)
NAMED_SWITCHES: dict[str, tuple[dict[str, Any], str]] = {
    "no_pos_emb": ({"pos_emb": "none"}, "no positional embeddings, no position embeddings"),
    "rope": ({"pos_emb": "rope"}, "rotary"),
    "no_residual": ({"residual": False}, "no residual connections, no skip connections"),
    "no_layernorm": ({"layernorm": False}, "no layernorm, no layer norm or normalization"),
    "relu": ({"activation": "relu"}, "instead of gelu"),
}
DEFAULT_SWITCHES = ("no_pos_emb", "n_head=1", "no_residual", "no_layernorm", "relu", "mlp_ratio=2")
OVERRIDABLE = ("n_layer", "n_head", "n_embd", "mlp_ratio", "dropout", "bias", "pos_emb", "residual", "layernorm",
               "activation", "lr", "block_size", "weight_decay", "batch_size", "warmup_iters")  # fmt: skip
KEY_VALUE_PATTERN = rf"^({'|'.join(OVERRIDABLE)})=[a-z0-9.e+-]+$"


def normalise_switch(switch: str) -> str:
    """The switch as written canonically: lower case, '-' as '_' in a name or key, no spaces."""
    s = switch.strip().lower().replace(" ", "")
    key, eq, value = s.partition("=")
    return key.replace("-", "_") + eq + value


def parse_switch(switch: str) -> tuple[str, dict[str, Any]]:
    """("label", overrides) for a switch name or `key=value`.

    Raises:
        ValueError: unknown name or key, or a value of the wrong type.
    """
    s = normalise_switch(switch)
    if s in NAMED_SWITCHES:
        return s, dict(NAMED_SWITCHES[s][0])
    if "=" in s:
        key, raw = s.split("=", 1)
        if key not in OVERRIDABLE:
            raise ValueError(
                f"cannot ablate {key!r}; use one of {', '.join(OVERRIDABLE)} or {', '.join(NAMED_SWITCHES)}"
            )
        default = getattr(TrainConfig(), key)
        try:
            if isinstance(default, bool):
                if raw not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                value: Any = raw in ("true", "1")
            elif isinstance(default, int):
                value = int(float(raw))
            elif isinstance(default, float):
                value = float(raw)
            else:
                value = raw
        except ValueError as e:
            raise ValueError(f"bad value {raw!r} for {key} in switch {switch!r}") from e
        return f"{key}={raw}", {key: value}
    raise ValueError(f"unknown ablation switch {switch!r}; use one of {', '.join(NAMED_SWITCHES)} or key=value "
                     f"with key in {', '.join(OVERRIDABLE)}")  # fmt: skip
