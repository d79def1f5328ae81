"""The ReAct hub with a scripted model: tool call -> result -> answer, errors, step limit, resume."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from scratchlab.agent import memory
from scratchlab.agent.graph import STEP_LIMIT_MESSAGE, build_graph, recursion_limit
from scratchlab.agent.session import LabSession
from scratchlab.agent.testing import ScriptedChatModel
from scratchlab.tools import core


def call(name, args, id="c1"):
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": id}])


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def run(graph, text, thread="t"):
    return graph.invoke(
        {"messages": [HumanMessage(text)]},
        {"configurable": {"thread_id": thread}, "recursion_limit": recursion_limit(6)},
    )


def test_tool_call_then_answer(workspace):
    from langgraph.checkpoint.memory import InMemorySaver

    model = ScriptedChatModel(responses=[call("add", {"a": 2, "b": 40}), AIMessage("It is 42.")])
    g = build_graph(model=model, tools=[add], checkpointer=InMemorySaver(), system_prompt="sys")
    out = run(g, "what is 2+40?")
    msgs = out["messages"]
    assert isinstance(msgs[2], ToolMessage) and msgs[2].content == "42"
    assert msgs[-1].content == "It is 42."
    # the model saw the tool result on its second call, and the system prompt was not stored
    assert any(isinstance(m, ToolMessage) for m in model.calls[1])
    assert model.calls[0][0].content == "sys" and not any(m.type == "system" for m in msgs)


def test_unknown_tool_goes_back_as_message(workspace):
    model = ScriptedChatModel(responses=[call("nope", {}), AIMessage("Sorry.")])
    g = build_graph(model=model, tools=[add], system_prompt="s")
    msgs = g.invoke({"messages": [HumanMessage("x")]})["messages"]
    err = [m for m in msgs if isinstance(m, ToolMessage)][0]
    assert "nope" in err.content and "add" in err.content  # says which tools exist
    assert msgs[-1].content == "Sorry."


def test_bad_arguments_go_back_as_message(workspace):
    model = ScriptedChatModel(responses=[call("add", {"a": "two"}), AIMessage("fixed")])
    g = build_graph(model=model, tools=[add], system_prompt="s")
    msgs = g.invoke({"messages": [HumanMessage("x")]})["messages"]
    err = [m for m in msgs if isinstance(m, ToolMessage)][0]
    assert err.status == "error" and "b" in err.content
    assert msgs[-1].content == "fixed"


def test_tool_user_error_is_a_message_and_bug_raises(tool_ctx):
    import pytest

    tools = {t.name: t for t in core.make_tools(tool_ctx)}
    out = tools["remember"].invoke({"fact": "   "})
    assert out.startswith("Error:")

    @tool
    def buggy(x: int) -> str:
        """A tool with a bug."""
        raise TypeError("our bug")

    g = build_graph(
        model=ScriptedChatModel(responses=[call("buggy", {"x": 1})]), tools=[buggy], system_prompt="s"
    )
    with pytest.raises(TypeError):
        g.invoke({"messages": [HumanMessage("x")]})


def test_step_limit_soft_landing(workspace):
    model = ScriptedChatModel(responses=[call("add", {"a": 1, "b": 1})])  # loops forever
    g = build_graph(model=model, tools=[add], system_prompt="s")
    out = g.invoke({"messages": [HumanMessage("loop")]}, {"recursion_limit": recursion_limit(4)})
    assert out["messages"][-1].content == STEP_LIMIT_MESSAGE
    assert 2 <= len(model.calls) <= 5


def test_thread_resumes_after_reopening_sqlite(workspace):
    script = [call("remember", {"fact": "The tokenizer is bpe512."}), AIMessage("Noted.")]
    lab = LabSession(home=workspace.root, model=ScriptedChatModel(responses=script))
    r = lab.ask("remember my tokenizer is bpe512")
    [tc] = r["tool_calls"]
    assert {k: tc[k] for k in ("name", "args")} == {
        "name": "remember",
        "args": {"fact": "The tokenizer is bpe512."},
    }
    assert tc["result"].startswith("Remembered") and tc["artifacts"] == [] and tc["seconds"] >= 0
    assert r["answer"] == "Noted."
    lab.close()

    model2 = ScriptedChatModel(responses=[AIMessage("bpe512")])
    lab2 = LabSession(home=workspace.root, model=model2)
    r2 = lab2.ask("which tokenizer?", thread_id=r["thread"])
    seen = model2.calls[0]
    assert any("bpe512" in str(m.content) for m in seen if isinstance(m, HumanMessage | ToolMessage))
    assert r2["answer"] == "bpe512"
    assert [t for t, *_ in lab2.registry.list_threads()] == [r["thread"]]
    assert memory.list_memories(lab2.store)[0][1] == "The tokenizer is bpe512."
    assert seen[0].additional_kwargs["memories"] == ["The tokenizer is bpe512."]  # kept memories ride along
    lab2.close()


def test_dry_run_runs_no_tool(workspace):
    model = ScriptedChatModel(responses=[call("remember", {"fact": "x"})])
    lab = LabSession(home=workspace.root, model=model)
    r = lab.ask("remember x", dry_run=True)
    assert r["tool_calls"] == [{"name": "remember", "args": {"fact": "x"}}]
    assert memory.list_memories(lab.store) == []
    assert lab.history(r["thread"]) == []


def test_checkpoints_are_pruned(workspace):
    lab = LabSession(
        home=workspace.root, model=ScriptedChatModel(responses=[AIMessage("ok")]), keep_checkpoints=3
    )
    for i in range(4):
        lab.ask(f"hello {i}", thread_id="t-prune")
    n = lab.conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = 't-prune'").fetchone()[0]
    assert n == 3
    assert len([m for m in lab.history("t-prune") if isinstance(m, HumanMessage)]) == 4  # nothing lost


def test_lab_state_lists_artifacts(workspace, registry):
    registry.add_artifact("tokenizer", "bpe512-shakespeare", "/x")
    lab = LabSession(home=workspace.root, model=ScriptedChatModel(responses=[AIMessage("ok")]))
    assert "bpe512-shakespeare" in lab.lab_state()
    lab.ask("hi")
    assert "bpe512-shakespeare" in lab.model.calls[0][0].content


def test_confirmation_interrupt_and_resume(workspace, registry):
    from langchain_core.tools import StructuredTool
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command
    from pydantic import BaseModel

    from scratchlab.tools.base import ToolContext

    ctx = ToolContext(workspace=workspace, registry=registry)  # confirmations on
    ran = []

    class Args(BaseModel):
        steps: int

    def long_job(steps: int) -> str:
        if not ctx.confirm("long_job", {"estimated_seconds": steps}):
            return "Cancelled: the user declined."
        ran.append(steps)
        return f"done {steps}"

    tool_ = StructuredTool.from_function(
        long_job, name="long_job", description="A long job.", args_schema=Args
    )
    for answer, expect_ran in (("yes", [5000]), ("no", [])):
        ran.clear()
        model = ScriptedChatModel(responses=[call("long_job", {"steps": 5000}), AIMessage("ok")])
        g = build_graph(model=model, tools=[tool_], checkpointer=InMemorySaver(), system_prompt="s")
        cfg = {"configurable": {"thread_id": f"t-{answer}"}}
        out = g.invoke({"messages": [HumanMessage("run it")]}, cfg)
        intr = out["__interrupt__"][0].value
        assert intr["action"] == "long_job" and intr["estimated_seconds"] == 5000 and ran == []
        out = g.invoke(Command(resume=answer), cfg)
        result = [m for m in out["messages"] if isinstance(m, ToolMessage)][-1].content
        assert ran == expect_ran
        # a plain tool (not lab_tool) that asks: "no" still becomes a result, and the turn ends there
        assert result == (
            "done 5000"
            if answer == "yes"
            else "cancelled by the user: long_job was not started (nothing ran)."
        )
        assert len(model.calls) == (2 if answer == "yes" else 1)


def test_recall_finds_memories_and_artifacts(tool_ctx, registry):
    tools = {t.name: t for t in core.make_tools(tool_ctx)}
    registry.add_artifact("tokenizer", "bpe512", "/p", metrics={"vocab_size": 512})
    registry.add_artifact("run", "gpt-small", "/r")
    out = tools["recall"].invoke({"query": "which tokenizer did we make"})
    assert "nothing remembered" in out and "'bpe512'" in out and "gpt-small" not in out
    tools["remember"].invoke({"fact": "The user prefers 6-layer models."})
    out = tools["recall"].invoke({"query": "layer preference"})
    assert "6-layer" in out
