"""Entry point for the LangGraph Agent Server and Studio (`langgraph.json` at the repo root points here).

    langgraph dev --host 127.0.0.1 --port 2024 --no-browser      # from the repo root, with the venv active

`graph` is an async graph factory: the first run builds scratchlab's agent on the default workspace
(`$SCRATCHLAB_HOME`) and the model named by `$SCRATCHLAB_MODEL` (so the server loads the model once and
keeps it), off the event loop; later runs reuse it. The server supplies its own checkpointer and store
(threads, runs, interrupts); the lab's artifacts, jobs, metrics and the agent's long-term memory stay in
the workspace's `lab.db` (README, "LangGraph Agent Server").
Confirmations are LangGraph interrupts: resume a run with `command={"resume": "yes"}` (or "no").
"""

from __future__ import annotations

import asyncio
import threading

from scratchlab.agent.graph import build_graph

_built: dict[str, object] = {}
_lock = threading.Lock()


def _build_once():
    with _lock:
        if "graph" not in _built:
            _built["graph"] = build_graph()
        return _built["graph"]


async def graph(config=None):
    """The scratchlab graph for the server (LangGraph graph factory; `config` is unused)."""
    return await asyncio.to_thread(_build_once)
