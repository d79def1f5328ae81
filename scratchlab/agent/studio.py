"""Entry point for the LangGraph CLI / Studio (`langgraph.json` at the repo root points here).

`langgraph dev` imports `graph`, a factory that builds scratchlab's agent on the default workspace and
the model named by `$SCRATCHLAB_MODEL`; the LangGraph server supplies its own checkpointer and store.
"""

from __future__ import annotations

from scratchlab.agent.graph import build_graph


def graph(config=None):
    """Build the default scratchlab graph (LangGraph graph factory; `config` is unused)."""
    return build_graph()
