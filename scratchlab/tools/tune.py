"""Agent tool for tuning the agent's own router: tune_router ("tune yourself on my tools").

Thin: it asks for confirmation (a tune is long) and starts the background job
`python -m scratchlab.agent.tune` (`scratchlab.agent.tune`: training set from the example bank, LoRA
with scratchlab's engine, GGUF export), named by module so this layer imports nothing from the agent.
The job resumes from its checkpoint when started again with the same name.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from scratchlab.lab import jobs
from scratchlab.tools.base import ToolContext, ToolError, lab_tool

TUNE_MODULE = "scratchlab.agent.tune"  # the job's module (agent layer: started by name, not imported)
SECONDS_PER_STEP = (
    7.1  # one step (4 decisions) of the 0.5B on 2 idle cores, compact catalogue cached (stop 28)
)


class TuneRouterArgs(BaseModel):
    base: Literal["0.5b", "smollm2"] = Field(
        default="0.5b",
        description="Local chat model whose tool router is tuned (LoRA on scratchlab's own tools and example bank).",
    )
    max_iters: int = Field(default=180, ge=1, le=100_000, description="Optimizer steps of the tune.")


def make_tools(ctx: ToolContext) -> list[BaseTool]:
    @lab_tool("tune_router", TuneRouterArgs)
    def tune_router(args: TuneRouterArgs) -> str:
        """Tune yourself (the local chat model) on scratchlab's tools: a LoRA trained on the example bank in the background; afterwards use --model local:<base>+tuned."""
        name = f"router-{args.base}"
        out = ctx.workspace.dir("adapters") / name
        if (out / "adapter.gguf").is_file() and not (out / "train_state.pt").is_file():
            raise ToolError(
                f"local:{args.base} is already tuned ({out}); use it with --model local:{args.base}+tuned"
            )
        est = args.max_iters * SECONDS_PER_STEP * (0.3 if args.base == "smollm2" else 1.0)
        ctx.confirm("tune_router", {"config": args.model_dump()}, estimate_s=est)
        config = {"base": args.base, "name": name, "max_iters": args.max_iters}
        job = jobs.start_job(ctx.workspace, ctx.registry, "tune", TUNE_MODULE, config, run_dir=out,
                             total=args.max_iters, resume_hint="Ask to tune the router again to resume.")  # fmt: skip
        return (f"Started {job.id}: tuning local:{args.base}'s router ({args.max_iters} steps) in the background. "
                f"When it is done, use --model local:{args.base}+tuned.")  # fmt: skip

    return [tune_router]
