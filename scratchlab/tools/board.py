"""Agent tool for the run dashboard: show_curves ("show me the curves").

Thin adapter over `scratchlab.training.board`: exports the registry's metrics to TensorBoard, makes sure
a board serves the workspace (starting one in the background if none does), and plots the train/val
loss of the chosen runs to a PNG (registered as a plot artifact). The answer gives both: the
URL to explore every run, and the PNG for a quick look.
"""

from __future__ import annotations

import re

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from scratchlab.tools.base import ToolContext, ToolError, lab_tool
from scratchlab.training import board
from scratchlab.training.plots import plot_compare

DEFAULT_RUNS = 3
MAX_RUNS = 8
CURVE_KINDS = ("run", "adapter")


class ShowCurvesArgs(BaseModel):
    runs: list[str] | None = Field(
        default=None,
        description="GPT runs or LoRA adapters to plot: ids ('run-3'), names or 'last'; null for the newest three.",
    )


def _pick_runs(ctx: ToolContext, refs: list[str] | None) -> list:
    reg = ctx.registry
    if refs:
        if len(refs) > MAX_RUNS:
            raise ToolError(f"at most {MAX_RUNS} runs fit in one plot, got {len(refs)}")
        return [
            reg.get_artifact(r, kind="run") if r.strip().lower() == "last" else reg.get_artifact(r)
            for r in refs
        ]
    arts = [a for kind in CURVE_KINDS for a in reg.list_artifacts(kind=kind, limit=20)]
    arts = [a for a in arts if reg.metrics(a.id, "val_loss")]
    arts.sort(key=lambda a: a.created_at or 0, reverse=True)
    return arts[:DEFAULT_RUNS]


def make_tools(ctx: ToolContext) -> list[BaseTool]:
    @lab_tool("show_curves", ShowCurvesArgs)
    def show_curves(args: ShowCurvesArgs) -> str:
        """Plot the train/val loss curves of the chosen runs in one PNG, and give the run dashboard's URL (TensorBoard: every run's losses, lr, tokens/s, samples)."""
        arts = _pick_runs(ctx, args.runs)
        if not arts:
            raise ToolError("no runs with logged losses yet; train one with train_gpt or finetune_lora")
        names = board.export_board(ctx.workspace, ctx.registry)
        try:
            url = board.ensure_board(ctx.workspace)
        except board.BoardError as e:
            url = f"(dashboard not started: {e})"
        ids = [a.id for a in arts]
        label = "-".join(ids)
        path = ctx.workspace.dir("plots") / f"curves-{re.sub(r'[^A-Za-z0-9_-]', '', label)}.png"
        plot_compare(board.histories(ctx.registry, ids), path, title="loss")
        plot = ctx.registry.add_artifact("plot", f"curves-{label}", path, config={"runs": ids})
        return (f"Dashboard: {url} ({len(names)} runs). Loss curves of {', '.join(f'{a.name} ({a.id})' for a in arts)}"
                f" (val solid, train dashed): {path} ({plot.id})")  # fmt: skip

    return [show_curves]
