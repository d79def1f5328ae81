"""Core agent tools: long-term memory (`remember`, `recall`) and the artifact list (`list_artifacts`)."""

from __future__ import annotations

from typing import Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, field_validator

from scratchlab.lab import memory
from scratchlab.lab.words import words_in
from scratchlab.tools.base import ToolContext, ToolError, lab_tool

MAX_LIST = 15


class RememberArgs(BaseModel):
    fact: str = Field(description="The fact to keep for later, as one short self-contained sentence.")


class RecallArgs(BaseModel):
    query: str = Field(description="What to look up in long-term memory (a few keywords).")


ARTIFACT_KINDS = ("tokenizer", "dataset", "run", "ablation", "index", "adapter", "base", "plot", "file")


class ListArtifactsArgs(BaseModel):
    kind: Literal[ARTIFACT_KINDS] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Only this kind: tokenizer, dataset, run, ablation, index, adapter, base, plot or file. Null for all.",
    )

    @field_validator("kind", mode="before")
    @classmethod
    def _singular(cls, v):  # "tokenizers" -> "tokenizer"
        return v.rstrip("s") if isinstance(v, str) and v.rstrip("s") in ARTIFACT_KINDS else v


def _store(ctx: ToolContext):
    store = ctx.extras.get("store")
    if store is None:
        store = memory.open_store(ctx.workspace.db_path)
        ctx.extras["store"] = store
    return store


def _metrics(a) -> str:
    m = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(a.metrics.items())[:3]
    )
    return f" ({m})" if m else ""


def _matching_artifacts(ctx: ToolContext, query: str, limit: int = 5) -> list:
    """Artifacts whose id, kind or name shares a word with `query`; else the newest few."""
    q = {w.rstrip("s") for w in words_in(query) if len(w) > 2}
    arts = ctx.registry.list_artifacts(limit=50)
    hits = [a for a in arts if q & {w.rstrip("s") for w in words_in(f"{a.id} {a.kind} {a.name}")}]
    return (hits or arts)[:limit]


def make_tools(ctx: ToolContext) -> list[BaseTool]:
    @lab_tool("remember", RememberArgs)
    def remember(args: RememberArgs) -> str:
        """Save a fact about the user or their work in long-term memory (kept across conversations)."""
        if not args.fact.strip():
            raise ToolError("fact is empty; give the sentence to remember")
        key = memory.add_memory(_store(ctx), args.fact)
        return f"Remembered ({key}): {args.fact.strip()}"

    @lab_tool("recall", RecallArgs)
    def recall(args: RecallArgs) -> str:
        """Look up facts saved earlier with remember, and lab artifacts that match (what was built)."""
        hits = memory.search_memories(_store(ctx), args.query)
        lines = (
            ["Memories:", *(f"- {fact}" for _, fact, _ in hits)]
            if hits
            else ["Long-term memory: nothing remembered yet."]
        )
        arts = _matching_artifacts(ctx, args.query)
        if arts:
            lines += ["Lab artifacts:", *(f"- {a.id} {a.kind} '{a.name}'{_metrics(a)}" for a in arts)]
        return "\n".join(lines)

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
