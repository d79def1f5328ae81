"""The scratchlab agent: `build_graph` (LangGraph ReAct hub), chat models, memory, the REPL.

Public API:
    build_graph(model=None, tools=None, checkpointer=None, store=None, **options) -> CompiledStateGraph
    get_chat_model(spec=None) -> BaseChatModel
    LabSession(home=None, model=None).ask(text, thread_id=None, dry_run=False) -> dict
"""

from scratchlab.agent.graph import build_graph


def __getattr__(name):
    if name == "get_chat_model":
        from scratchlab.agent.llm import get_chat_model

        return get_chat_model
    if name == "LabSession":
        from scratchlab.agent.session import LabSession

        return LabSession
    raise AttributeError(name)


__all__ = ["LabSession", "build_graph", "get_chat_model"]
