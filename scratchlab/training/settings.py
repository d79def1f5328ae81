"""Run settings as the faces see them, generated from the config dataclasses.

`TrainConfig` (`gpt_config`) and `LoraTrainConfig` (`lora_config`) are the only place a hyperparameter,
its default, bounds and help text are written (`fields.setting`). This module says which of them each
face offers and derives the rest:

    from scratchlab.training import settings
    settings.defaults("train_gpt")        # {"dataset": "shakespeare", ..., "lr": 0.001, "dropout": 0.0}
    settings.diff_from_defaults(config)   # {"n_layer": {"default": 4, "value": 6}} for a confirm panel
    settings.tool_fields("train_gpt", int_type=Count)   # (name, type, default, description) for pydantic
    settings.bounds_of("train_gpt", "lr")     # {"gt": 0, "le": 1.0}
    settings.cli_fields("train_gpt")      # every user-settable field, with type, default and help

- "train_gpt" / "finetune_lora": the agent tools' run settings (`scratchlab.tools.gpt`, `.lora`).
- "ablate_gpt": the same fields as the ablation baseline, with the ablation's own shorter default run
  and per-variant wording (`SURFACES[...].overrides`).
- CLI options (`scratchlab gpt train`, `scratchlab lora train`) offer every field of the config except
  those the lab fills in itself (`LAB_FIELDS`).

Adding a hyperparameter: declare it once in the config dataclass with `setting(default, help, bounds)`;
the CLI gets `--its-name` at once; add its name to a surface's `tool_fields` to show it to the agent.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field

from scratchlab.training.fields import BOUNDS, HELP, default_of
from scratchlab.training.gpt_config import TrainConfig
from scratchlab.training.lora_config import LoraTrainConfig


@dataclass(frozen=True)
class Surface:
    """Which config fields a face offers.

    Attributes:
        config: the config dataclass.
        tool_fields: the fields the agent tool takes, in schema order.
        required: tool fields without a default (the tool requires them).
        plain_str: str tool fields that are not nullable.
        overrides: field -> {"default": ..., "help": ...} for this surface only.
    """

    config: type
    tool_fields: tuple[str, ...]
    required: tuple[str, ...] = ()
    plain_str: tuple[str, ...] = ()
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


GPT_TOOL_FIELDS = ("dataset", "tokenizer", "n_layer", "n_head", "n_embd", "block_size", "batch_size",
                   "max_iters", "lr", "dropout")  # fmt: skip
SURFACES: dict[str, Surface] = {
    "train_gpt": Surface(TrainConfig, GPT_TOOL_FIELDS, plain_str=("dataset",)),
    "ablate_gpt": Surface(
        TrainConfig,
        ("dataset", "tokenizer", "max_iters", "n_layer", "n_head", "n_embd", "block_size", "batch_size"),
        plain_str=("dataset",),
        overrides={  # the ablation's baseline: a shorter default run, fields worded per variant
            "dataset": {"help": "Text to train on: 'shakespeare' or a path."},
            "tokenizer": {"help": "'char' or a trained tokenizer's name, id or path."},
            "max_iters": {"default": 500, "help": "Steps per variant."},
            "n_layer": {"help": "Baseline number of blocks."},
            "n_head": {"help": "Baseline heads."},
            "n_embd": {"help": "Baseline embedding width."},
            "block_size": {"help": "Context length."},
            "batch_size": {"help": "Sequences per step."},
        },
    ),
    "finetune_lora": Surface(
        LoraTrainConfig, ("data", "r", "lora_alpha", "lora_dropout", "max_iters", "lr"), required=("data",)
    ),
}
LAB_FIELDS = {  # filled in by the lab (paths, registry ids, resume), not offered as CLI options
    TrainConfig: ("out_dir", "data_dir", "resume", "plot_path"),
    LoraTrainConfig: (
        "base_kind",
        "base_path",
        "data",
        "out_dir",
        "base_ref",
        "resume",
        "target_modules",
        "cached_prefix",
    ),
}


def _fields(config: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(config)}


def _surface(name: str) -> Surface:
    try:
        return SURFACES[name]
    except KeyError:
        raise KeyError(f"unknown settings surface {name!r}; known: {sorted(SURFACES)}") from None


def _default(s: Surface, f: dataclasses.Field) -> Any:
    return s.overrides.get(f.name, {}).get("default", default_of(f))


def help_of(name: str, field_name: str) -> str:
    """The help text of `field_name` as surface `name` shows it."""
    s = _surface(name)
    f = _fields(s.config)[field_name]
    return s.overrides.get(field_name, {}).get("help", f.metadata.get(HELP, ""))


def bounds_of(name: str, field_name: str) -> dict[str, float]:
    """The numeric bounds of `field_name` ({"gt": 0, "le": 1} for lr), as pydantic's `Field` takes
    them: the tool schema then carries them, and a value outside can never reach the run."""
    f = _fields(_surface(name).config)[field_name]
    return {k: f.metadata[k] for k in BOUNDS if k in f.metadata}


def defaults(name: str) -> dict[str, Any]:
    """The default of every tool field of surface `name` ("train_gpt", "ablate_gpt", "finetune_lora");
    None for required fields and for defaults derived at run time (e.g. LoRA's lr).

    Raises:
        KeyError: an unknown surface.
    """
    s = _surface(name)
    fs = _fields(s.config)
    return {k: (None if k in s.required else _default(s, fs[k])) for k in s.tool_fields}


def _base_type(tp: Any) -> Any:
    """int for `int | None`, etc.: the non-None member of an optional annotation."""
    if isinstance(tp, str):
        tp = eval(tp, {"list": list, "str": str, "int": int, "float": float, "bool": bool})  # noqa: S307 - our own annotations
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return args[0] if len(args) == 1 else tp
    return tp


def field_type(config: type, field_name: str) -> Any:
    """The value type of a config field without its `| None` (bool | str stays as it is)."""
    return _base_type(_fields(config)[field_name].type)


def tool_fields(name: str, int_type: Any = int) -> list[tuple[str, Any, Any, str]]:
    """(field, annotation, default, description) of surface `name`'s tool fields, in schema order.

    Annotations are nullable (`int_type | None`, `float | None`, `str | None`) except required and
    `plain_str` fields, and carry the field's bounds (`bounds_of`); `int_type` lets the tools use
    their count type ("2k" -> 2000). A required field's default is `...` (pydantic's "required").
    """
    s = _surface(name)
    fs = _fields(s.config)
    out = []
    for k in s.tool_fields:
        base = field_type(s.config, k)
        base = int_type if base is int else base
        if bounds := bounds_of(name, k):  # in the schema too: the model can never write lr=8
            base = _bounded(base, bounds)
        annotation = base if (k in s.required or k in s.plain_str) else base | None
        default = ... if k in s.required else _default(s, fs[k])
        out.append((k, annotation, default, help_of(name, k)))
    return out


def _bounded(tp: Any, bounds: dict[str, float]) -> Any:
    """`tp` with `bounds` checked on the value itself, before any validator of `tp` runs (so that
    `Count`'s "2k" parser keeps them in the JSON schema as minimum / maximum)."""
    if typing.get_origin(tp) is Annotated:
        return Annotated[typing.get_args(tp)[0], Field(**bounds), *tp.__metadata__]
    return Annotated[tp, Field(**bounds)]


def cli_fields(name: str) -> list[tuple[str, Any, Any, str]]:
    """(field, value type, default, help) of every config field the CLI of surface `name` offers."""
    s = _surface(name)
    skip = LAB_FIELDS.get(s.config, ())
    return [(f.name, field_type(s.config, f.name), _default(s, f), help_of(name, f.name))
            for f in dataclasses.fields(s.config) if f.name not in skip]  # fmt: skip


def diff_from_defaults(config: Any, name: str | None = None) -> dict[str, dict[str, Any]]:
    """What a run's settings change from the defaults: {field: {"default": d, "value": v}}.

    Args:
        config: a `TrainConfig` / `LoraTrainConfig`, or a dict of one (as a confirm panel gets it);
            keys that are no config field (e.g. "switches") are ignored, lab-filled paths skipped.
        name: the surface whose defaults count (e.g. "ablate_gpt": max_iters 500); default: the
            config's own. A dict is read as a GPT config unless it has LoRA-only keys.

    Returns:
        Only the fields whose value differs, in declaration order.
    """
    if name is not None:
        cls = _surface(name).config
    elif dataclasses.is_dataclass(config):
        cls = type(config)
    else:
        cls = LoraTrainConfig if "r" in config or "lora_alpha" in config else TrainConfig
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    s = _surface(name) if name else Surface(cls, ())
    skip = LAB_FIELDS.get(cls, ())
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name not in values:
            continue
        d = _default(s, f)
        if values[f.name] != d:
            out[f.name] = {"default": d, "value": values[f.name]}
    return out
