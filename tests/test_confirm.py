"""Confirmations: "no" means no, through the graph (`LabSession` + the real `train_gpt` tool) and inside a
parent graph. Issue 16 item 1: a declined "Proceed? [y/N]" started the job anyway, because the tool
re-runs on resume and its re-measured estimate fell under the threshold, so the answer was never read.

Hermetic: a scripted chat model; the estimate and the job launch are replaced by recorders (no torch run).
"""

from __future__ import annotations

from typing import Annotated

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command
from typing_extensions import TypedDict

from scratchlab.agent import build_graph
from scratchlab.agent.graph import DECLINED_MESSAGE
from scratchlab.agent.render import confirm_rows, confirm_summary
from scratchlab.agent.session import LabSession
from scratchlab.agent.testing import ScriptedChatModel
from scratchlab.tools import gpt as gpt_tools
from scratchlab.tools import gpt_runs
from scratchlab.tools.base import CANCELLED_RESULT, ToolContext

NO = ["n", "no", "N", "", "  ", "nope", "maybe", "yes please", "stop", {"answer": "no"}, False, 0]
YES = ["y", "yes", "YES", " ok ", True, {"answer": "yes"}]


def call(name, args, cid="c1"):
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": cid}])


@pytest.fixture
def fake_training(monkeypatch):
    """Estimates fall from 615 s (first, cold) to 60 s (the re-run on resume, warm); launches are recorded."""
    estimates = iter([615.0, 60.0, 60.0, 60.0])
    launched = []

    def estimate(ctx, cfg):
        return {"estimated_seconds": next(estimates), "seconds_per_step": 0.01, "params": 800_000,
                "vocab_size": 65, "data_dir": str(ctx.workspace.root / "datasets" / "x")}  # fmt: skip

    def launch(ctx, prep):
        art = ctx.registry.add_artifact(
            "run", prep.name, ctx.workspace.root / "runs" / "r", config=prep.config
        )
        job = ctx.registry.create_job("gpt", config=prep.config, total=prep.config["max_iters"])
        launched.append(job.id)
        return job, art

    monkeypatch.setattr(gpt_runs, "estimate_run", estimate)
    monkeypatch.setattr(gpt_tools, "launch_training", launch)
    return launched


def session(workspace, responses):
    model = ScriptedChatModel(responses=responses)
    return LabSession(home=workspace.root, model=model, auto_confirm=False), model


TRAIN = call("train_gpt", {"n_layer": 2, "max_iters": 3000, "tokenizer": "char", "wait": False})


@pytest.mark.parametrize("answer", NO, ids=repr)
def test_any_answer_but_yes_cancels_and_starts_no_job(workspace, fake_training, answer):
    lab, model = session(workspace, [TRAIN, AIMessage("the model should not be asked again")])
    thread = "t-decline"
    events = list(lab.stream("train a 2-layer GPT for 3000 steps", thread))
    [payload] = [d for k, d in events if k == "interrupt"]
    assert payload["action"] == "train_gpt" and payload["estimated_seconds"] == 615
    events = list(lab.stream(None, thread, resume=answer))
    results = [d.content for k, d in events if k == "tool_result"]
    assert len(results) == 1 and results[0].startswith(CANCELLED_RESULT), results
    assert fake_training == [] and lab.registry.list_jobs() == []
    # the turn ends without another model call (it could retry what the user refused)
    assert len(model.calls) == 1
    msgs = lab.history(thread)
    assert [type(m).__name__ for m in msgs] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert msgs[-1].content == DECLINED_MESSAGE and lab.pending_interrupt(thread) is None


@pytest.mark.parametrize("answer", YES, ids=repr)
def test_yes_starts_the_job_once(workspace, fake_training, answer):
    lab, model = session(workspace, [TRAIN, AIMessage("started")])
    list(lab.stream("train a 2-layer GPT for 3000 steps", "t-yes"))
    events = list(lab.stream(None, "t-yes", resume=answer))
    results = [d.content for k, d in events if k == "tool_result"]
    assert len(fake_training) == 1 and results[0].startswith(f"started {fake_training[0]}")
    assert lab.history("t-yes")[-1].content == "started"


def test_confirm_payload_shows_the_request_the_changes_and_the_estimate(workspace, fake_training):
    lab, _ = session(workspace, [TRAIN])
    [payload] = [d for k, d in lab.stream("train a 2-layer GPT for 3000 steps", "t-p") if k == "interrupt"]
    assert payload["asked"] == {"n_layer": 2, "max_iters": 3000, "wait": False}  # vs the tool's defaults
    assert payload["changed"] == {
        "n_layer": {"default": 4, "value": 2},
        "max_iters": {"default": 2000, "value": 3000},
    }
    assert payload["estimated_seconds"] == 615 and len(payload["config"]) > 20
    # `scratchlab ask` shows it in one line, the REPL as a panel; neither lists the whole config
    line = confirm_summary(payload)
    assert line == (
        "train_gpt(n_layer=2, max_iters=3000, wait=false); n_layer=2 (default 4), max_iters=3000 (default 2000); "
        "estimated 10m15s"
    )
    rows = dict(confirm_rows(payload, "train a 2-layer GPT"))
    assert list(rows) == ["you asked", "tool call", "differs from defaults", "estimate"]


def test_a_short_run_needs_no_confirmation(workspace, monkeypatch):
    monkeypatch.setattr(gpt_runs, "estimate_run", lambda ctx, cfg: {"estimated_seconds": 30.0, "params": 1})
    launched = []
    monkeypatch.setattr(gpt_tools, "launch_training", lambda ctx, prep: launched.append(1) or (_ for _ in ()).throw(
        LookupError("launched")))  # fmt: skip
    lab, _ = session(workspace, [TRAIN, AIMessage("ok")])
    kinds = [k for k, _ in lab.stream("train", "t-s")]
    assert "interrupt" not in kinds and launched == [1]


def test_confirmation_outside_a_graph_is_a_clear_error(workspace):
    from scratchlab.tools.base import ToolError

    ctx = ToolContext.create(workspace, auto_confirm=False)
    with pytest.raises(ToolError, match="--yes"):
        ctx.confirm("train_gpt", {}, estimate_s=600)
    assert ctx.confirm("train_gpt", {}, estimate_s=5) is True  # under the threshold: nobody is asked


# ---- inside a parent graph (the parent's checkpointer, `Command(resume=...)` sent to the parent) ----
class ParentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def parent(lab_graph):
    g = StateGraph(ParentState)
    g.add_node("lab", lab_graph)
    g.add_edge(START, "lab")
    g.add_edge("lab", END)
    return g.compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize("answer, started", [("no", False), ("", False), ("yes", True)])
def test_decline_inside_a_parent_graph(workspace, fake_training, answer, started):
    from scratchlab.tools import all_tools

    ctx = ToolContext.create(workspace, auto_confirm=False)
    ctx.registry.setup()
    model = ScriptedChatModel(responses=[TRAIN, AIMessage("started it")])
    app = parent(build_graph(model=model, tools=all_tools(ctx=ctx)))
    cfg = {"configurable": {"thread_id": "p-1"}}
    out = app.invoke({"messages": [HumanMessage("train a 2-layer GPT for 3000 steps")]}, cfg)
    assert out["__interrupt__"][0].value["estimated_seconds"] == 615
    out = app.invoke(Command(resume=answer), cfg)
    [result] = [m.content for m in out["messages"] if isinstance(m, ToolMessage)]
    assert bool(fake_training) is started and len(ctx.registry.list_jobs()) == int(started)
    if started:
        assert out["messages"][-1].content == "started it"
    else:
        assert result.startswith(CANCELLED_RESULT) and out["messages"][-1].content == DECLINED_MESSAGE
        assert len(model.calls) == 1
