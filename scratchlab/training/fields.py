"""How a run setting is declared: default, help text and bounds in one `dataclasses.field`.

    from scratchlab.training.fields import setting, check_settings
    @dataclass
    class TrainConfig:
        lr: float = setting(1e-3, "Peak learning rate (warmup then cosine decay to lr/10).", gt=0, le=1)
    check_settings(cfg, TrainError)        # non-finite or out-of-bounds values raise, naming the field

The config dataclasses (`TrainConfig`, `LoraTrainConfig`) are the one place a hyperparameter is
written; `scratchlab.training.settings` generates the tool schemas, CLI options, eval defaults and
the confirm panel's diff from these declarations.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

DTYPES = (
    "auto",
    "float32",
    "bfloat16",
)  # the choices of every config's `dtype` (see `precision.autocast_dtype`)
HELP = "help"
BOUNDS = ("ge", "gt", "le", "lt")
CHOICES = "choices"


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple | None = None,
    label: str | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field carrying its help text and bounds in `metadata`.

    Args:
        default: the default value (None: "derived at run time", said in `help`).
        help: one sentence for the CLI `--help`, the tool schema the LLM reads and the docs.
        ge, gt, le, lt: inclusive/exclusive numeric bounds (checked only when the value is not None).
        choices: the allowed values.
        label: how error messages name the field (default: its name).
        default_factory: for mutable defaults.
    """
    meta = {HELP: help, **{k: v for k, v in dict(ge=ge, gt=gt, le=le, lt=lt).items() if v is not None}}
    if choices is not None:
        meta[CHOICES] = tuple(choices)
    if label is not None:
        meta["label"] = label
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def describe_bounds(meta: dict[str, Any]) -> str:
    """ "in [0, 1)", ">= 1", "one of ('a', 'b')" or "" for a field's metadata."""
    if CHOICES in meta:
        return f"one of {meta[CHOICES]}"
    lo = f"[{_num(meta['ge'])}" if "ge" in meta else f"({_num(meta['gt'])}" if "gt" in meta else None
    hi = f"{_num(meta['le'])}]" if "le" in meta else f"{_num(meta['lt'])})" if "lt" in meta else None
    if lo and hi:
        return f"in {lo}, {hi}"
    if lo:
        return (">= " if lo[0] == "[" else "> ") + lo[1:]
    if hi:
        return ("<= " if hi[-1] == "]" else "< ") + hi[:-1]
    return ""


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def check_value(name: str, value: Any, meta: dict[str, Any]) -> str | None:
    """The reason `value` is refused for the field `name` (metadata `meta`), or None when it is fine."""
    if value is None:
        return None
    if CHOICES in meta:
        return None if value in meta[CHOICES] else f"{name} must be {describe_bounds(meta)}, got {value!r}"
    if not any(k in meta for k in BOUNDS):
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} must be a finite number, got {value!r}"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number {describe_bounds(meta)}, got {value!r}"
    if not math.isfinite(value):
        return f"{name} must be a finite number {describe_bounds(meta)}, got {value!r}"
    ok = (
        ("ge" not in meta or value >= meta["ge"])
        and ("gt" not in meta or value > meta["gt"])
        and ("le" not in meta or value <= meta["le"])
        and ("lt" not in meta or value < meta["lt"])
    )
    return None if ok else f"{name} must be {describe_bounds(meta)}, got {value!r}"


def check_settings(cfg: Any, error: type[Exception], names: list[str] | None = None) -> None:
    """Check every declared field of the dataclass `cfg` (or only `names`) against its bounds.

    Raises:
        `error`: the first refused value, with the field name, the allowed range and the value.
    """
    for f in dataclasses.fields(cfg):
        if names is not None and f.name not in names:
            continue
        reason = check_value(f.metadata.get("label", f.name), getattr(cfg, f.name), dict(f.metadata))
        if reason:
            help_ = f.metadata.get(HELP, "")
            raise error(f"{reason}" + (f" ({help_})" if help_ else ""))


def default_of(f: dataclasses.Field) -> Any:
    """The default value of a dataclass field (calling its default_factory)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING
