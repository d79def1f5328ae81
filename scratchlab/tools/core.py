"""Core agent tools: long-term memory (`remember`, `recall`) and the artifact list (`list_artifacts`)."""

from __future__ import annotations

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from scratchlab.tools.base import ToolContext, ToolError, lab_tool

MAX_LIST = 15


class RememberArgs(BaseModel):
    fact: str = Field(description="The fact to keep for later, as one short self-contained sentence.")


class RecallArgs(BaseModel):
    query: str = Field(description="What to look up in long-term memory (a few keywords).")


class ListArtifactsArgs(BaseModel):
    kind: str | None = Field(
        default=None,
        description="Only this kind: tokenizer, dataset, run, index, adapter, base, plot or file. Null for all.",
    )


def _store(ctx: ToolContext):
    store = ctx.extras.get("store")
    if store is None:
        from scratchlab.agent.memory import open_memory

        _, store, _ = open_memory(ctx.workspace.db_path)
        ctx.extras["store"] = store
    return store


def make_tools(ctx: ToolContext) -> list[BaseTool]:
    from scratchlab.agent import memory

    @lab_tool("remember", RememberArgs)
    def remember(args: RememberArgs) -> str:
        """Save a fact about the user or their work in long-term memory (kept across conversations)."""
        if not args.fact.strip():
            raise ToolError("fact is empty; give the sentence to remember")
        key = memory.add_memory(_store(ctx), args.fact)
        return f"Remembered ({key}): {args.fact.strip()}"

    @lab_tool("recall", RecallArgs)
    def recall(args: RecallArgs) -> str:
        """Look up facts saved earlier with remember (what the user told you in any conversation)."""
        hits = memory.search_memories(_store(ctx), args.query)
        if not hits:
            return "Long-term memory is empty: nothing was remembered yet."
        return "Memories:\n" + "\n".join(f"- {fact}" for _, fact, _ in hits)

    @lab_tool("list_artifacts", ListArtifactsArgs)
    def list_artifacts(args: ListArtifactsArgs) -> str:
        """List what the lab has built (tokenizers, runs, indexes, adapters...), newest first."""
        kind = args.kind.rstrip("s") if args.kind else None
        arts = ctx.registry.list_artifacts(kind=kind, limit=MAX_LIST)
        if not arts:
            return f"No {kind + ' ' if kind else ''}artifacts yet."
        lines = []
        for a in arts:
            m = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(a.metrics.items())[:3]
            )
            lines.append(f"- {a.id} {a.kind} '{a.name}'" + (f" ({m})" if m else ""))
        return "\n".join(lines)

    return [remember, recall, list_artifacts]
