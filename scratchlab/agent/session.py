"""`LabSession`: one workspace, one chat model, the tools, and the graph with SQLite memory.

Used by the REPL, `scratchlab ask`, the agent evaluation and embedding apps:

    lab = LabSession(home="/tmp/lab", model="local:0.5b")
    r = lab.ask("train a 512-token BPE tokenizer on shakespeare")
    r["answer"], r["thread"], r["tool_calls"]
    lab.ask("encode 'To be or not to be' with it", thread_id=r["thread"])
    lab.ask("train a GPT for 2k steps", dry_run=True)     # the tool call(s) it would make, none run

A turn can be stopped from another thread: run it inside `scratchlab.lab.cancel.active(token)` and call
`token.cancel()` (the REPL does this on Ctrl-C). The model stops at its next token (`TurnWatch`) and a
tool waiting for a background job returns "left running in the background as job-N", so the thread
keeps a result for every tool call. A request longer than the model can read is refused before it
enters the thread (`InputTooLong`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.types import Command

from scratchlab.agent import memory
from scratchlab.agent.graph import MAX_MEMORIES, MAX_STEPS, build_graph, recursion_limit
from scratchlab.agent.prompts import fixed_system_prompt, lab_state_text
from scratchlab.agent.state import ARTIFACT_WINDOW, Record, from_registry
from scratchlab.lab import cancel
from scratchlab.lab.registry import Job, Registry
from scratchlab.lab.workspace import get_workspace
from scratchlab.tools import all_tools
from scratchlab.tools.base import ToolContext

CHATML_OVERHEAD_TOKENS = 16  # role markers around the system prompt and the request
INPUT_TOO_LONG = (
    "Your message is {n:,} tokens, but this model reads at most {limit:,} tokens per message (a {n_ctx:,}-token "
    "window, less {fixed:,} for the tool catalogue and lab state and {reserve:,} kept for the reply). It was "
    "rejected, not trimmed, and the conversation is unchanged. Shorten it, or save the text to a file and ask "
    "me to index it (then search it) or to read parts of it."
)


class InputTooLong(ValueError):
    """A request longer than the model's context window; nothing was sent or stored.

    Attributes:
        tokens: the request's length in tokens.
        limit: the most tokens a request may have with this model.
    """

    def __init__(self, tokens: int, limit: int, n_ctx: int, fixed: int, reserve: int):
        super().__init__(
            INPUT_TOO_LONG.format(n=tokens, limit=limit, n_ctx=n_ctx, fixed=fixed, reserve=reserve)
        )
        self.tokens, self.limit = tokens, limit


class TurnWatch(BaseCallbackHandler):
    """LangChain callbacks for one turn: stop the model once the turn is cancelled, time each tool call.

    `raise_error` makes `TurnCancelled` (from `scratchlab.lab.cancel.check`) propagate out of the model
    call, before it starts or at its next streamed token. `seconds` maps tool_call_id -> seconds.
    """

    raise_error = True

    def __init__(self) -> None:
        self.started: dict[uuid.UUID, float] = {}  # tool run id -> perf_counter at its start
        self.seconds: dict[str, float] = {}  # tool_call_id -> wall seconds of that call

    def on_chat_model_start(self, serialized, messages, **kwargs: Any) -> None:
        cancel.check()

    def on_llm_start(self, serialized, prompts, **kwargs: Any) -> None:
        cancel.check()

    def on_llm_new_token(self, token, **kwargs: Any) -> None:
        cancel.check()

    def on_tool_start(self, serialized, input_str, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        self.started[run_id] = time.perf_counter()

    def on_tool_end(self, output, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        t0 = self.started.pop(run_id, None)
        call_id = getattr(output, "tool_call_id", None)
        if t0 is not None and call_id:
            self.seconds[call_id] = time.perf_counter() - t0

    def on_tool_error(self, error, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        self.started.pop(run_id, None)


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
        self._fixed_tokens: int | None = None  # the fixed prompt's length in the model's tokens (cached)

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

    def set_model(self, model: Any) -> None:
        """Switch the chat model (a ready `BaseChatModel`); the graph is rebuilt on next use."""
        self._model, self._graph, self._fixed_tokens = model, None, None
        self.ctx.extras["chat_model"] = model

    def lab_records(self) -> list[Record]:
        """The registry's artifacts and active jobs as records (newest first)."""
        return from_registry(
            self.registry.list_artifacts(limit=ARTIFACT_WINDOW), self.registry.list_jobs(limit=5)
        )

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

    # ---- input limits -------------------------------------------------------------------------------
    def _token_counter(self) -> tuple[int, Callable[[str], int], int] | None:
        """(context window, token counter, tokens kept for the reply) of the chat model, if it has a
        known window (`n_ctx`): llama.cpp's own tokenizer for the local models, else `get_num_tokens`."""
        model = self.model
        n_ctx = getattr(model, "n_ctx", None)
        if not isinstance(n_ctx, int):
            return None
        from scratchlab.agent.local_chat import CONTEXT_RESERVE, ChatLocalLlama

        if isinstance(model, ChatLocalLlama):
            llm = model.llm
            return (
                n_ctx,
                lambda s: len(llm.tokenize(s.encode("utf-8"), add_bos=False, special=True)),
                CONTEXT_RESERVE,
            )
        return n_ctx, model.get_num_tokens, CONTEXT_RESERVE

    def check_input(self, text: str) -> None:
        """Refuse a request the model cannot read whole (with the system prompt and a reply).

        Raises:
            InputTooLong: the request is longer than the window allows; the message says how to proceed.
        """
        counter = self._token_counter()
        if counter is None:
            return
        n_ctx, count, reserve = counter
        if self._fixed_tokens is None:
            self._fixed_tokens = count(self._fixed_prompt)
        fixed = self._fixed_tokens + count(self.lab_state()) + CHATML_OVERHEAD_TOKENS
        limit = n_ctx - reserve - fixed
        n = count(text)
        if n > limit:
            raise InputTooLong(n, max(limit, 0), n_ctx, fixed, reserve)

    # ---- turns --------------------------------------------------------------------------------------
    def stream(
        self, text: str | None, thread_id: str, resume: Any = None, watch: TurnWatch | None = None
    ) -> Iterator[tuple[str, Any]]:
        """Run one turn, yielding events: ("token", str), ("tool_call", {"name", "args", "id"}),
        ("tool_result", ToolMessage), ("message", AIMessage), ("interrupt", payload).

        Args:
            text: the user's request (None to resume with `resume`, the answer to a confirmation).
            thread_id: the conversation thread.
            resume: the answer to a pending confirmation ("yes" / "no").
            watch: callbacks that time tool calls and stop the model on cancel (default: a new one).

        Raises:
            InputTooLong: `text` does not fit the model's window; nothing was written to the thread.
            scratchlab.lab.cancel.TurnCancelled: the turn's cancel token was cancelled (Ctrl-C).
        """
        self.ctx.thread_id = thread_id
        if text is not None:
            self.check_input(text)
            self.registry.touch_thread(thread_id, title=text)
            inp: Any = {"messages": [HumanMessage(text)]}
        else:
            inp = Command(resume=resume)
        config = {**self.config(thread_id), "callbacks": [watch or TurnWatch()]}
        try:
            for mode, data in self.graph.stream(inp, config, stream_mode=["messages", "updates"]):
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
                                yield "tool_call", {"name": tc["name"], "args": tc["args"], "id": tc["id"]}
                            if not m.tool_calls:
                                yield "message", m
                        elif isinstance(m, ToolMessage):
                            yield "tool_result", m
        finally:
            memory.prune_checkpoints(self.conn, thread_id, self.keep_checkpoints)

    def _artifact_ids(self, text: str) -> list[str]:
        """The registry artifact ids ("run-3", "tokenizer-1") named in a tool result, in order."""
        known = {a.id for a in self.registry.list_artifacts()}
        words = (w.strip(".,;:!?()[]'\"`") for w in text.split())
        return list(dict.fromkeys(w for w in words if w in known))

    def ask(self, text: str, thread_id: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """One turn, collected: {"answer", "thread", "tool_calls", "seconds", "interrupt"?}.

        Each tool call is {"name", "args", "result" (its result text; None if it did not run, e.g. it
        waits for a confirmation), "artifacts" (registry ids named in the result), "seconds" (its wall
        time)}. Raises `InputTooLong` (nothing stored) for a request the model cannot read whole.

        With `dry_run`, only the first model call is made and no tool runs: the tool calls it would
        make are returned and nothing is written to the thread. `decision_seconds` is the time until
        the action was chosen (a tool call with all its arguments, or the first token of a reply);
        `seconds` includes writing the whole reply.
        """
        thread_id = thread_id or memory.new_thread_id()
        t0 = time.perf_counter()
        if dry_run:
            self.check_input(text)
            msgs = [
                SystemMessage(
                    self._fixed_prompt + "\n" + self.lab_state(),
                    additional_kwargs={
                        "lab_records": self.lab_records(),
                        "memories": [f for _, f in memory.list_memories(self.store, limit=MAX_MEMORIES)],
                    },
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
        calls, answer, interrupt, watch = [], "", None, TurnWatch()
        by_id: dict[str, dict[str, Any]] = {}
        for kind, data in self.stream(text, thread_id, watch=watch):
            if kind == "tool_call":
                call = {"name": data["name"], "args": data["args"], "result": None, "artifacts": [],
                        "seconds": None, "_t0": time.perf_counter()}  # fmt: skip
                calls.append(call)
                by_id[data["id"]] = call
            elif kind == "tool_result" and data.tool_call_id in by_id:
                call = by_id[data.tool_call_id]
                call["result"] = str(data.content)
                call["artifacts"] = self._artifact_ids(call["result"])
                seconds = watch.seconds.get(data.tool_call_id, time.perf_counter() - call["_t0"])
                call["seconds"] = round(seconds, 3)
            elif kind == "message":
                answer = str(data.content)
            elif kind == "interrupt":
                interrupt = data
        for call in calls:
            call.pop("_t0", None)
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
