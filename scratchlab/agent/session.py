"""`LabSession`: one workspace, one chat model, the tools, and the graph with SQLite memory.

Used by the REPL, `scratchlab ask`, the agent evaluation and embedding apps:

    lab = LabSession(home="/tmp/lab", model="local:0.5b")
    r = lab.ask("train a 512-token BPE tokenizer on shakespeare")
    r["answer"], r["thread"], r["tool_calls"]
    lab.ask("encode 'To be or not to be' with it", thread_id=r["thread"])
    lab.ask("train a GPT for 2k steps", dry_run=True)     # the tool call(s) it would make, none run
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.types import Command

from scratchlab.agent import memory
from scratchlab.agent.graph import MAX_STEPS, build_graph, recursion_limit
from scratchlab.agent.prompts import fixed_system_prompt, lab_state_text
from scratchlab.agent.state import Record, from_registry
from scratchlab.lab.registry import Job, Registry
from scratchlab.lab.workspace import get_workspace
from scratchlab.tools import all_tools
from scratchlab.tools.base import ToolContext


class LabSession:
    """A conversation-capable lab: workspace + registry + tools + model + graph + memory.

    Args:
        home: workspace folder (None: `$SCRATCHLAB_HOME` or the platform default).
        model: a model spec (see `scratchlab.agent.llm`) or a ready `BaseChatModel`.
        auto_confirm: run long actions without asking (tests, `ask --yes`).
        on_progress: called with a `Job` while a tool waits for a background job.
        max_steps: model calls per turn before the soft landing.
        keep_checkpoints: checkpoints kept per thread (older ones pruned after each turn).
    """

    def __init__(
        self,
        home: Any = None,
        model: Any = None,
        *,
        auto_confirm: bool = False,
        on_progress: Callable[[Job], None] | None = None,
        max_steps: int = MAX_STEPS,
        keep_checkpoints: int = memory.KEEP_CHECKPOINTS,
        tools: list | None = None,
    ):
        self.workspace = get_workspace(home)
        self.registry = Registry.from_workspace(self.workspace)
        self.registry.setup()
        self.checkpointer, self.store, self.conn = memory.open_memory(self.workspace.db_path)
        self.ctx = ToolContext(
            workspace=self.workspace, registry=self.registry, auto_confirm=auto_confirm,
            on_progress=on_progress, extras={"store": self.store},
        )  # fmt: skip
        self.tools = tools if tools is not None else all_tools(ctx=self.ctx)
        self.model_spec = model if isinstance(model, str) or model is None else type(model).__name__
        self._model = None if isinstance(model, str) or model is None else model
        self._model_arg = model if isinstance(model, str) else None
        self.max_steps = max_steps
        self.keep_checkpoints = keep_checkpoints
        self._graph = None
        self._fixed_prompt = fixed_system_prompt([convert_to_openai_tool(t) for t in self.tools])

    # ---- lazily built pieces ----------------------------------------------------------------------
    @property
    def model(self):
        if self._model is None:
            from scratchlab.agent.llm import get_chat_model

            self._model = get_chat_model(self._model_arg, workspace=self.workspace)
            self.ctx.extras["chat_model"] = self._model
        return self._model

    @property
    def graph(self):
        if self._graph is None:
            self._graph = build_graph(
                self.model, self.tools, self.checkpointer, self.store,
                system_prompt=self._fixed_prompt, lab_state=self.lab_state, lab_records=self.lab_records,
            )  # fmt: skip
        return self._graph

    def lab_records(self) -> list[Record]:
        """The registry's artifacts and active jobs as records (newest first)."""
        return from_registry(self.registry.list_artifacts(limit=30), self.registry.list_jobs(limit=5))

    def lab_state(self) -> str:
        return lab_state_text(self.lab_records())

    def config(self, thread_id: str) -> dict:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": recursion_limit(self.max_steps)}

    def history(self, thread_id: str) -> list:
        snap = self.graph.get_state(self.config(thread_id))
        return list(snap.values.get("messages", [])) if snap and snap.values else []

    def pending_interrupt(self, thread_id: str) -> dict | None:
        snap = self.graph.get_state(self.config(thread_id))
        for task in getattr(snap, "tasks", ()) or ():
            for intr in getattr(task, "interrupts", ()) or ():
                return intr.value
        return None

    # ---- turns --------------------------------------------------------------------------------------
    def stream(self, text: str | None, thread_id: str, resume: Any = None) -> Iterator[tuple[str, Any]]:
        """Run one turn, yielding events: ("token", str), ("tool_call", dict), ("tool_result", ToolMessage),
        ("message", AIMessage), ("interrupt", payload). Pass `resume` to answer a confirmation."""
        self.ctx.thread_id = thread_id
        if text is not None:
            self.registry.touch_thread(thread_id, title=text)
            inp: Any = {"messages": [HumanMessage(text)]}
        else:
            inp = Command(resume=resume)
        try:
            for mode, data in self.graph.stream(
                inp, self.config(thread_id), stream_mode=["messages", "updates"]
            ):
                if mode == "messages":
                    chunk, meta = data
                    if (
                        isinstance(chunk, AIMessageChunk)
                        and chunk.content
                        and meta.get("langgraph_node") == "agent"
                    ):
                        yield "token", chunk.content
                    continue
                if "__interrupt__" in data:
                    for intr in data["__interrupt__"]:
                        yield "interrupt", intr.value
                    continue
                for update in data.values():
                    for m in (update or {}).get("messages", []) if isinstance(update, dict) else []:
                        if isinstance(m, AIMessage):
                            for tc in m.tool_calls:
                                yield "tool_call", {"name": tc["name"], "args": tc["args"]}
                            if not m.tool_calls:
                                yield "message", m
                        elif isinstance(m, ToolMessage):
                            yield "tool_result", m
        finally:
            memory.prune_checkpoints(self.conn, thread_id, self.keep_checkpoints)

    def ask(self, text: str, thread_id: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """One turn, collected: {"answer", "thread", "tool_calls": [{"name","args"}], "seconds", "interrupt"?}.

        With `dry_run`, only the first model call is made and no tool runs: the tool calls it would
        make are returned and nothing is written to the thread. `decision_seconds` is the time until
        the action was chosen (a tool call with all its arguments, or the first token of a reply);
        `seconds` includes writing the whole reply.
        """
        thread_id = thread_id or memory.new_thread_id()
        t0 = time.perf_counter()
        if dry_run:
            msgs = [
                SystemMessage(
                    self._fixed_prompt + "\n" + self.lab_state(),
                    additional_kwargs={"lab_records": self.lab_records()},
                ),
                *self.history(thread_id),
                HumanMessage(text),
            ]
            bound = self.model.bind_tools(self.tools)
            out, decided = None, None
            for chunk in bound.stream(msgs):  # the first chunk comes once the action is chosen
                if decided is None:
                    decided = time.perf_counter() - t0
                out = chunk if out is None else out + chunk
            if out is None:
                out = bound.invoke(msgs)
            calls = [{"name": tc["name"], "args": tc["args"]} for tc in out.tool_calls]
            seconds = time.perf_counter() - t0
            return {
                "answer": "" if calls else str(out.content),
                "thread": thread_id,
                "tool_calls": calls,
                "action": "tool" if calls else out.additional_kwargs.get("action", "answer"),
                "seconds": seconds,
                "decision_seconds": decided if decided is not None else seconds,
                "dry_run": True,
            }
        calls, answer, interrupt = [], "", None
        for kind, data in self.stream(text, thread_id):
            if kind == "tool_call":
                calls.append(data)
            elif kind == "message":
                answer = str(data.content)
            elif kind == "interrupt":
                interrupt = data
        result = {
            "answer": answer,
            "thread": thread_id,
            "tool_calls": calls,
            "seconds": time.perf_counter() - t0,
        }
        if interrupt is not None:
            result["interrupt"] = interrupt
        return result

    def close(self) -> None:
        self.conn.close()
        self.store.conn.close()
