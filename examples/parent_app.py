"""A parent LangGraph app that routes lab requests to scratchlab's agent, embedded as a subgraph node.

    python examples/parent_app.py --fake "what have I built so far?" "hello there"
    python examples/parent_app.py --model local:0.5b --home /tmp/lab "train a 300-token tokenizer on shakespeare"
    python examples/parent_app.py --fake --db /tmp/parent.db --thread t-1 "list my artifacts"   # resumable

The parent owns the state and the checkpointer (a SQLite file with `--db`, else in memory).
`scratchlab.agent.build_graph` is compiled without a checkpointer, so as a node it runs inside the
parent's checkpoints: its messages land in the parent's `messages` channel, the thread resumes after a
restart, and a confirmation interrupt raised by a scratchlab tool ("this run takes ~5 min, go?") pauses
the whole parent app until it is resumed with `Command(resume="yes")`.

Messages that are not about the lab go to the parent's own node (`front_desk`), which here only
answers politely; in a real app it would be the app's own assistant.
`--fake` swaps the local LLM for a tiny rule-based chat model (it lists artifacts, then reports the
result), so the wiring can be tried in a second without loading any weights.
Reference: LangGraph "use subgraphs" (shared state keys, checkpointer propagation).
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command
from typing_extensions import TypedDict

LAB_PATTERN = re.compile(
    r"\b(tokeni[sz]\w*|bpe|vocab\w*|gpt|train\w*|sample|ablat\w*|index\w*|search\w*|lora|fine-?tun\w*|adapter|"
    r"encode|decode|jobs?|runs?|artifacts?|built|remember|recall|plot|python|loss|dataset|shakespeare)\b",
    re.IGNORECASE,
)
FRONT_DESK_REPLY = "I'm the parent app. Ask me about tokenizers, GPT training, documents or fine-tuning and I'll pass it to scratchlab."
LAB_NODE, DESK_NODE = "scratchlab", "front_desk"


class AppState(TypedDict):
    """The parent's state. `messages` is shared with scratchlab's graph (same key, same reducer)."""

    messages: Annotated[list[AnyMessage], add_messages]


def is_lab_request(text: str) -> bool:
    """True when a message mentions lab work (a keyword test; a real app might use its own classifier)."""
    return bool(LAB_PATTERN.search(text))


def route(state: AppState) -> str:
    last = state["messages"][-1]
    text = last.content if isinstance(last.content, str) else str(last.content)
    return LAB_NODE if is_lab_request(text) else DESK_NODE


def front_desk(state: AppState) -> dict[str, Any]:
    return {"messages": [AIMessage(FRONT_DESK_REPLY)]}


def build_app(lab_graph: Any, checkpointer: Any = None):
    """The parent graph: START -> (scratchlab | front_desk) -> END, compiled with the parent's checkpointer.

    Args:
        lab_graph: `scratchlab.agent.build_graph(...)` compiled without a checkpointer.
        checkpointer: the parent's LangGraph checkpointer (None: in memory).
    """
    g = StateGraph(AppState)
    g.add_node(LAB_NODE, lab_graph)
    g.add_node(DESK_NODE, front_desk)
    g.add_conditional_edges(START, route, [LAB_NODE, DESK_NODE])
    g.add_edge(LAB_NODE, END)
    g.add_edge(DESK_NODE, END)
    return g.compile(checkpointer=checkpointer if checkpointer is not None else InMemorySaver())


class FakeLabModel(BaseChatModel):
    """A rule-based stand-in for the LLM: a new request -> `list_artifacts`; a tool result -> a short answer."""

    @property
    def _llm_type(self) -> str:
        return "fake-lab"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FakeLabModel:
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            msg = AIMessage(f"scratchlab says: {str(last.content)[:200]}")
        else:
            msg = AIMessage(
                "", tool_calls=[{"name": "list_artifacts", "args": {}, "id": f"call-{uuid.uuid4().hex[:8]}"}]
            )
        return ChatResult(generations=[ChatGeneration(message=msg)])


def make_lab_graph(home: str, model_spec: str | None, fake: bool, auto_confirm: bool):
    """scratchlab's agent for workspace `home`, without a checkpointer (the parent supplies one)."""
    from scratchlab.agent import build_graph
    from scratchlab.agent.prompts import lab_state_text
    from scratchlab.agent.state import from_registry
    from scratchlab.lab.registry import Registry
    from scratchlab.lab.workspace import get_workspace

    ws = get_workspace(home).ensure()
    registry = Registry.from_workspace(ws)
    registry.setup()

    def records():
        return from_registry(registry.list_artifacts(limit=30), registry.list_jobs(limit=5))

    if fake:
        model = FakeLabModel()
    else:
        from scratchlab.agent.llm import get_chat_model

        model = get_chat_model(model_spec, workspace=ws)
    return build_graph(
        model=model,
        workspace=ws,
        auto_confirm=auto_confirm,
        lab_state=lambda: lab_state_text(records()),
        lab_records=records,
    )


def chat(app: Any, text: str, thread_id: str, yes: bool = False) -> str:
    """Send one message; answer confirmation interrupts (from `input()`, or "yes" with `yes`)."""
    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": 40}
    out = app.invoke({"messages": [HumanMessage(text)]}, config)
    while out.get("__interrupt__"):
        payload = out["__interrupt__"][0].value
        answer = "yes" if yes else input(f"scratchlab asks to confirm {payload}: [yes/no] ")
        out = app.invoke(Command(resume=answer), config)
    return str(out["messages"][-1].content)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="A parent LangGraph app embedding scratchlab as a subgraph.")
    p.add_argument("messages", nargs="+", help="messages to send, in order, on one thread")
    p.add_argument("--fake", action="store_true", help="use a rule-based fake chat model (no weights loaded)")
    p.add_argument("--model", default=None, help="scratchlab model spec (local, local:0.5b, local:1.5b, ...)")
    p.add_argument("--home", default=None, help="scratchlab workspace (default: a temporary folder)")
    p.add_argument("--db", default=None, help="the parent's own SQLite checkpoint file (default: in memory)")
    p.add_argument("--thread", default=None, help="thread id to use or resume (default: a new one)")
    p.add_argument(
        "--yes", action="store_true", help="approve scratchlab's confirmation requests automatically"
    )
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="parent-app-") as tmp:
        checkpointer = None
        if args.db:
            from langgraph.checkpoint.sqlite import SqliteSaver

            checkpointer = SqliteSaver(sqlite3.connect(args.db, check_same_thread=False))
        lab = make_lab_graph(args.home or f"{tmp}/lab", args.model, args.fake, auto_confirm=args.yes)
        app = build_app(lab, checkpointer)
        thread = args.thread or f"parent-{uuid.uuid4().hex[:8]}"
        for text in args.messages:
            print(
                f"you> {text}\n[{route({'messages': [HumanMessage(text)]})}]> {chat(app, text, thread, args.yes)}"
            )
        print(
            f"(thread {thread}: {len(app.get_state({'configurable': {'thread_id': thread}}).values['messages'])} messages kept by the parent)"
        )


if __name__ == "__main__":
    main()
