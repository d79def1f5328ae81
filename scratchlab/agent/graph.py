"""The scratchlab agent: a small LangGraph ReAct hub (model node <-> tool node).

    from scratchlab.agent import build_graph
    graph = build_graph()                                  # local model, all scratchlab tools
    graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t-1"}})

`build_graph` returns a compiled `StateGraph` whose state is `{"messages": [...]}` (LangGraph's
`add_messages` reducer), so it can be a node or subgraph of another app. The system prompt (fixed tool
catalogue + current lab state) is prepended on every model call and never stored in the thread.
A turn has a step limit with a soft landing (LangGraph `RemainingSteps`): the model is told to stop
and the user gets a short message instead of a `GraphRecursionError`. A declined confirmation (a tool
result "cancelled by the user: ...") ends the turn with `DECLINED_MESSAGE`: the model is not called
again, so it cannot retry the action the user refused.
Reference: langgraph's prebuilt ReAct agent (deprecated in v1 in favour of building the graph).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.managed import RemainingSteps
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolInvocationError
from typing_extensions import TypedDict

from scratchlab.agent.prompts import fixed_system_prompt
from scratchlab.lab.jobs import JobLeftRunning
from scratchlab.lab.memory import list_memories
from scratchlab.tools.base import CANCELLED_RESULT, LEFT_RUNNING_TEMPLATE, Declined

MAX_MEMORIES = 40  # the newest long-term memories a turn carries for routing

MAX_STEPS = 12
DECLINED_MESSAGE = "Cancelled: nothing was started. Tell me what to change (fewer steps, a smaller model) or ask for something else."
STEP_LIMIT_MESSAGE = "Sorry, I need more steps to finish this. Here is where I stopped; ask me to continue or split the request."


class LabState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    remaining_steps: RemainingSteps


def tool_error(e: Exception) -> str:
    """The `ToolNode` error handler: bad arguments go back to the model (langgraph's default), and so do
    a declined confirmation and a job wait the user left, for tools not made with `lab_tool`.

    Raises:
        Exception: `e` itself for every other error (a bug in a tool).
    """
    if isinstance(e, Declined):
        return str(e)
    if isinstance(e, JobLeftRunning):
        j = e.job
        return LEFT_RUNNING_TEMPLATE.format(job=j.id, status=j.status, step=j.step, total=j.total)
    if isinstance(e, ToolInvocationError):
        return e.message
    raise e


def recursion_limit(max_steps: int = MAX_STEPS) -> int:
    """LangGraph `recursion_limit` for `max_steps` model calls (each with a tool call after it)."""
    return 2 * max_steps + 1


def build_graph(
    model: BaseChatModel | None = None,
    tools: Sequence[BaseTool] | None = None,
    checkpointer: Any = None,
    store: Any = None,
    *,
    system_prompt: str | None = None,
    lab_state: Callable[[], str] | None = None,
    lab_records: Callable[[], list] | None = None,
    workspace: Any = None,
    name: str = "scratchlab",
    **tool_options: Any,
):
    """Build the ReAct hub.

    Args:
        model: any LangChain chat model supporting `bind_tools`; default: the local model.
        tools: tools to offer; default: `scratchlab.tools.all_tools(workspace, **tool_options)`.
        checkpointer: LangGraph checkpointer (threads); None lets a parent graph supply its own.
        store: LangGraph store (long-term memory), passed to `compile`.
        system_prompt: the fixed part of the system prompt; default: generated tool catalogue.
        lab_state: callable returning the current lab-state text appended to the system prompt.
        lab_records: callable returning the lab's records (`scratchlab.agent.state.Record`, newest
            first); they ride on the system message (`additional_kwargs["lab_records"]`) so the local
            model resolves references against records, not text. The long-term memories in `store`
            ride along too (`additional_kwargs["memories"]`).
        workspace: workspace for the default tools and model.
        name: the compiled graph's name.

    Returns:
        A `CompiledStateGraph` with state `{"messages": list}`. Invoke it with
        `{"recursion_limit": recursion_limit()}` for the documented step limit.
    """
    if tools is None:
        from scratchlab.tools import all_tools

        tools = all_tools(workspace, **tool_options)
    if model is None:
        from scratchlab.agent.llm import get_chat_model

        model = get_chat_model(workspace=workspace if not isinstance(workspace, str) else None)
    tools = list(tools)
    bound = model.bind_tools(tools) if tools else model
    fixed = (
        system_prompt
        if system_prompt is not None
        else fixed_system_prompt([convert_to_openai_tool(t) for t in tools])
    )

    def agent(state: LabState, config) -> dict:
        text = fixed + ("\n" + lab_state() if lab_state else "")
        extra = {"lab_records": lab_records()} if lab_records else {}
        if (
            store is not None
        ):  # what the user asked to keep: a question about it is a recall (`state.remembered`)
            extra["memories"] = [fact for _, fact in list_memories(store, limit=MAX_MEMORIES)]
        response = bound.invoke([SystemMessage(text, additional_kwargs=extra), *state["messages"]], config)
        if getattr(response, "tool_calls", None) and state["remaining_steps"] < 3:
            return {"messages": [AIMessage(content=STEP_LIMIT_MESSAGE, id=response.id)]}
        return {"messages": [response]}

    def route(state: LabState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    def after_tools(state: LabState) -> str:
        for m in reversed(state["messages"]):  # the results of the last batch of tool calls
            if not isinstance(m, ToolMessage):
                break
            if str(m.content).startswith(CANCELLED_RESULT):
                return "declined"
        return "agent"

    def declined(state: LabState) -> dict:
        return {"messages": [AIMessage(content=DECLINED_MESSAGE)]}

    g = StateGraph(LabState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(tools, handle_tool_errors=tool_error))
    g.add_node("declined", declined)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_conditional_edges("tools", after_tools, ["agent", "declined"])
    g.add_edge("declined", END)
    return g.compile(checkpointer=checkpointer, store=store, name=name)
