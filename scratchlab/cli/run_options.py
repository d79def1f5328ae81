"""CLI options generated from the run settings (`scratchlab.training.settings`).

    params = settings_params("train_gpt", short={"dataset": "-d"})
    command = with_params(train, params)       # `train(**kw)` gets one typer option per config field

Each option is `--field-name` (bools: `--x/--no-x`), defaults to None ("the config's default", shown in
the help as "(default X)") and carries the field's help text, so the CLI can never drift from the
config dataclass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer

from scratchlab.training import settings


def _fields(surface: str, tool_only: bool) -> list[tuple[str, Any, Any, str]]:
    if not tool_only:
        return settings.cli_fields(surface)
    s = settings.SURFACES[surface]
    return [(k, settings.field_type(s.config, k), d, h) for k, _, d, h in settings.tool_fields(surface)]


def settings_params(
    surface: str, short: dict[str, str] | None = None, tool_only: bool = False
) -> list[inspect.Parameter]:
    """Keyword-only typer parameters for every CLI field of `surface` (or only its tool fields),
    all defaulting to None (= the config's default, named in the help)."""
    short = short or {}
    params = []
    for name, tp, default, help_ in _fields(surface, tool_only):
        flag = "--" + name.replace("_", "-")
        text = help_ if default is None or default is ... else f"{help_} (default {default})"
        if tp is bool or tp == (bool | str):  # a switch; compile's "auto" is the unset default
            decls, tp = (f"{flag}/--no-{name.replace('_', '-')}",), bool
        else:
            decls = (flag, *([short[name]] if name in short else []))
        opt = typer.Option(None, *decls, help=text, show_default=False)
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=tp | None)
        )
    return params


def with_params(fn: Callable[..., Any], generated: list[inspect.Parameter]) -> Callable[..., Any]:
    """`fn` with `generated` keyword parameters added to its signature (typer reads `__signature__`)."""
    sig = inspect.signature(fn)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    fn.__signature__ = sig.replace(parameters=[*own, *generated])
    return fn


def overrides(values: dict[str, Any], surface: str, tool_only: bool = False) -> dict[str, Any]:
    """The settings the user gave (the generated options that are not None)."""
    names = {name for name, *_ in _fields(surface, tool_only)}
    return {k: v for k, v in values.items() if k in names and v is not None}
