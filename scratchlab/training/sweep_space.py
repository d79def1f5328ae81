"""Search spaces for sweeps: which run settings may vary, over what values, checked against the config.

    from scratchlab.training.sweep_space import parse_space, suggest, grid
    space = parse_space(["lr", "n_layer=2,4", "dropout=0..0.2"], "gpt")
    # {"lr": {"low": 0.0001, "high": 0.01, "log": True, "type": "float"}, "n_layer": {"choices": [2, 4]}, ...}
    params = suggest(optuna_trial, space)          # {"lr": 0.0021, "n_layer": 4, "dropout": 0.13}
    grid(space)                                    # {"lr": [1e-4, 4.6e-4, 2.2e-3, 1e-2], "n_layer": [2, 4], ...}

A spec is "name" (the name's default range, `DEFAULT_RANGES`), "name=v1,v2,v3" (those values) or
"name=lo..hi" (a range; learning rates are searched on a log scale). Names, types, bounds and help
text come from the config dataclasses (`TrainConfig`, `LoraTrainConfig`), written once there; a value
outside a field's bounds is refused here, before any run starts. `vocab_size` (GPT only) is no config
field: each value means a BPE tokenizer of that size trained on the run's dataset (the tool layer
prepares them), and trials with different tokenizers are compared in bits per character.

Source: Optuna's define-by-run `trial.suggest_*` API (Akiba et al. 2019).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from scratchlab.training.fields import HELP, check_value
from scratchlab.training.gpt_config import TrainConfig
from scratchlab.training.lora_config import LoraTrainConfig

CONFIGS = {"gpt": TrainConfig, "lora": LoraTrainConfig}
VOCAB = "vocab_size"  # a sweep-only name: one trained BPE tokenizer per value (GPT)
SWEEPABLE = {
    "gpt": ("lr", "dropout", "weight_decay", "warmup_iters", "n_layer", "n_head", "n_embd", "block_size",
            "batch_size", "mlp_ratio", "beta2", "grad_clip", "activation", "pos_emb", VOCAB),
    "lora": ("lr", "r", "lora_alpha", "lora_dropout", "weight_decay", "warmup_iters", "batch_size"),
}  # fmt: skip
DEFAULT_RANGES: dict[str, dict[str, Any]] = {  # what "sweep lr" means when no values are given
    "lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "dropout": {"low": 0.0, "high": 0.3},
    "weight_decay": {"low": 0.0, "high": 0.3},
    "warmup_iters": {"low": 0, "high": 200},
    "n_layer": {"choices": [1, 2, 3, 4, 6]},
    "n_head": {"choices": [1, 2, 4, 8]},
    "n_embd": {"choices": [64, 128, 192, 256]},
    "block_size": {"choices": [32, 64, 128]},
    "batch_size": {"choices": [8, 12, 16, 32]},
    "mlp_ratio": {"choices": [2.0, 3.0, 4.0]},
    "beta2": {"choices": [0.95, 0.99, 0.999]},
    "grad_clip": {"choices": [0.5, 1.0, 2.0]},
    "activation": {"choices": ["gelu", "relu"]},
    "pos_emb": {"choices": ["learned", "rope"]},
    VOCAB: {"choices": [256, 512, 1024]},
    "r": {"choices": [4, 8, 16, 32]},
    "lora_alpha": {"choices": [8.0, 16.0, 32.0, 64.0]},
    "lora_dropout": {"low": 0.0, "high": 0.2},
}
ALIASES = {"learning_rate": "lr", "vocab": VOCAB, "tokens": VOCAB, "vocabulary": VOCAB, "vocabulary_size": VOCAB, "layers": "n_layer",
           "depth": "n_layer", "heads": "n_head", "width": "n_embd", "d_model": "n_embd", "embedding": "n_embd", "embedding_size": "n_embd",
           "context": "block_size", "context_length": "block_size", "ctx": "block_size", "batch": "batch_size", "bs": "batch_size",
           "warmup": "warmup_iters",
           "rank": "r", "lora_rank": "r", "alpha": "lora_alpha"}  # fmt: skip
LOG_SCALE = ("lr",)  # ranges searched on a log scale
GRID_POINTS = 4  # values per range when a range is turned into a grid
VOCAB_BOUNDS = {"ge": 256, "le": 100_000}  # a byte-level BPE: 256 bytes (no merges) and up
VOCAB_HELP = "BPE vocabulary size: one tokenizer per value, trained on the run's dataset."


class SpaceError(ValueError):
    """A search-space spec that names an unknown setting or a value outside its bounds."""


def _field(kind: str, name: str) -> dataclasses.Field | None:
    return {f.name: f for f in dataclasses.fields(CONFIGS[kind])}.get(name)


def _meta(kind: str, name: str) -> dict[str, Any]:
    if name == VOCAB:
        return {HELP: VOCAB_HELP, **VOCAB_BOUNDS}
    return dict(_field(kind, name).metadata)


def value_type(kind: str, name: str) -> type:
    """int, float, str or bool: the type a setting's values take (from its config field)."""
    if name == VOCAB:
        return int
    default = getattr(CONFIGS[kind](), name)
    if default is None:  # optional fields (LoRA's lr, lora_alpha): numbers
        return float
    return type(default)


def help_of(kind: str, name: str) -> str:
    """The setting's help text, as the config dataclass writes it."""
    return _meta(kind, name).get(HELP, "")


def own_name(kind: str, name: str) -> str:
    """The kind's own setting for a plain name: "dropout" is lora_dropout in a LoRA sweep, where no
    setting is called dropout; any other name is returned as it is."""
    own = f"{kind}_{name}"
    return own if name not in SWEEPABLE[kind] and own in SWEEPABLE[kind] else name


def names_help(kind: str) -> str:
    """ "Names: lr (learning_rate); n_layer (layers); ...": the sweepable names with the words that name
    them, for a tool description (the agent reads it to bind "vocab 256, 512 and 1024" to vocab_size and
    "embedding width" to n_embd: `scratchlab.agent.extract.setting_words`, `named_settings`)."""
    words = {n: [a for a, m in ALIASES.items() if m == n] for n in SWEEPABLE[kind]}
    for n, w in words.items():
        plain = n.removeprefix(f"{kind}_")
        if plain != n and own_name(kind, plain) == n and plain not in w:
            w.append(plain)  # lora_dropout (dropout)
    return "Names: " + "; ".join(f"{n} ({', '.join(w)})" if w else n for n, w in words.items()) + "."


def describe(kind: str) -> str:
    """ "lr (1e-4..1e-2, log), n_layer (1,2,3,4,6), ...": the sweepable names and their default ranges."""
    parts = []
    for name in SWEEPABLE[kind]:
        r = DEFAULT_RANGES[name]
        vals = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in r["choices"]) if "choices" in r \
            else f"{r['low']:g}..{r['high']:g}" + (", log" if r.get("log") else "")  # fmt: skip
        parts.append(f"{name} ({vals})")
    return ", ".join(parts)


def _cast(kind: str, name: str, raw: str) -> Any:
    tp = value_type(kind, name)
    raw = raw.strip()
    try:
        if tp is bool:
            return raw.lower() in ("1", "true", "yes", "on")
        if tp is int:
            f = float(raw.lower().replace("k", "e3"))
            if not f.is_integer():
                raise ValueError(raw)
            return int(f)
        if tp is float:
            return float(raw)
    except ValueError:
        raise SpaceError(f"{name} takes {tp.__name__} values, got {raw!r}") from None
    return raw


def _check(kind: str, name: str, value: Any) -> None:
    reason = check_value(name, value, _meta(kind, name))
    if reason:
        raise SpaceError(f"{reason} ({help_of(kind, name)})")


def parse_one(spec: str | tuple[str, Any], kind: str = "gpt") -> tuple[str, dict[str, Any]]:
    """(name, {"choices": [...]} or {"low", "high", "log"}) for one spec; see the module docstring.

    Raises:
        SpaceError: an unknown name, a value of the wrong type or outside the setting's bounds.
    """
    if isinstance(spec, tuple):
        name, rest = spec
    else:
        name, _, rest = str(spec).partition("=")
    name = name.strip().lower().replace("-", "_").replace(" ", "_")
    name = own_name(kind, ALIASES.get(name, name))
    if name not in SWEEPABLE[kind]:
        raise SpaceError(f"cannot sweep {name!r} for {kind}; sweepable: {', '.join(SWEEPABLE[kind])}")
    if isinstance(rest, dict):
        out = dict(rest)
    elif isinstance(rest, list | tuple):
        out = {"choices": [_cast(kind, name, str(v)) for v in rest]}
    elif not str(rest).strip():
        out = dict(DEFAULT_RANGES[name])
    elif ".." in str(rest):
        lo, hi = (_cast(kind, name, p) for p in str(rest).split("..", 1))
        if lo >= hi:
            raise SpaceError(f"range of {name} must go from low to high, got {rest!r}")
        out = {"low": lo, "high": hi, "log": name in LOG_SCALE}
    else:
        out = {
            "choices": [_cast(kind, name, p) for p in str(rest).replace(" and ", ",").split(",") if p.strip()]
        }
    for v in out.get("choices", [out.get("low"), out.get("high")]):
        _check(kind, name, v)
    if "choices" in out:
        out["choices"] = list(dict.fromkeys(out["choices"]))  # duplicates add nothing
        if not out["choices"]:
            raise SpaceError(f"no values for {name}")
    out["type"] = value_type(kind, name).__name__
    return name, out


def parse_space(specs: list[str] | dict[str, Any], kind: str = "gpt") -> dict[str, dict[str, Any]]:
    """A search space from specs (list of strings, or {name: values|range|""}).

    Specs that name one setting twice join their values (["dropout=0", "dropout=0.15"] searches both),
    never the last one alone.

    Raises:
        SpaceError: a bad spec (`parse_one`), or one setting given both a range and values, or two ranges.
    """
    items = list(specs.items()) if isinstance(specs, dict) else list(specs)
    if not items:
        raise SpaceError(f"nothing to search: name at least one setting, e.g. 'lr' ({describe(kind)})")
    space: dict[str, dict[str, Any]] = {}
    for spec in items:
        name, part = parse_one(spec, kind)
        if name not in space:
            space[name] = part
        elif "choices" in part and "choices" in space[name]:
            space[name]["choices"] = list(dict.fromkeys(space[name]["choices"] + part["choices"]))
        else:
            raise SpaceError(f"{name} is given twice, as a range and as values (or two ranges): give one, "
                             f"e.g. '{name}=a,b,c' or '{name}=low..high'")  # fmt: skip
    return space


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The trial's values for every setting of `space` (Optuna define-by-run)."""
    out = {}
    for name, s in space.items():
        if "choices" in s:
            out[name] = trial.suggest_categorical(name, s["choices"])
        elif s.get("type") == "int":
            out[name] = trial.suggest_int(name, int(s["low"]), int(s["high"]), log=bool(s.get("log")))
        else:
            out[name] = trial.suggest_float(name, float(s["low"]), float(s["high"]), log=bool(s.get("log")))
    return out


def grid(space: dict[str, dict[str, Any]], points: int = GRID_POINTS) -> dict[str, list[Any]]:
    """Every setting's grid values: its choices, or `points` values spread over its range."""
    out = {}
    for name, s in space.items():
        if "choices" in s:
            out[name] = list(s["choices"])
            continue
        lo, hi = float(s["low"]), float(s["high"])
        if s.get("log"):
            vals = [
                math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (points - 1))
                for i in range(points)
            ]
        else:
            vals = [lo + i * (hi - lo) / (points - 1) for i in range(points)]
        out[name] = (
            sorted({int(round(v)) for v in vals})
            if s.get("type") == "int"
            else [float(f"{v:.4g}") for v in vals]
        )
    return out


def grid_size(space: dict[str, dict[str, Any]]) -> int:
    """How many configs the full grid of `space` has."""
    return math.prod(len(v) for v in grid(space).values())


def fmt_params(params: dict[str, Any]) -> str:
    """ "lr=0.0021 n_layer=4": a trial's values for humans."""
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
