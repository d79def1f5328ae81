"""Fakes for the REPL and job tests: a sleeping background job, a rule-based chat model that streams
slowly, a `slow_train` tool that asks first and waits for its job, and a REPL driver for tmux.

    python tests/lab_fakes.py repl HOME [THREAD]        # the REPL on the fake model (tests/test_repl_tmux.py)
    python tests/lab_fakes.py ask HOME [ARGS...]        # `scratchlab ask` on the fake model
    python -m lab_fakes --config C --job-id J --home H  # the sleeping job (started by scratchlab.lab.jobs)

The fake model answers by rules on the latest message:
    "train slow N"        -> slow_train(steps=N)                    (no confirmation)
    "train big"           -> slow_train(steps=50, estimated_seconds=600)  (asks first)
    "tell me a long story"-> 300 words, one every 0.2 s
    after a tool result   -> "done: <the result>"
    anything else         -> "ok: <the request>"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import BaseModel, Field

HERE = Path(__file__).resolve().parent
STEP_S = 0.2  # seconds per step of the sleeping job
WORD_S = 0.2  # seconds per streamed word of the fake model


# ---- the sleeping job (child process) ----------------------------------------------------------------
def sleep_work(config: dict[str, Any], reporter) -> dict[str, Any]:
    steps = int(config["steps"])
    for i in range(steps):
        if reporter.stop_requested:
            return {"status": "cancelled", "step": i}
        time.sleep(float(config.get("step_s", STEP_S)))
        reporter.update(i + 1, steps, f"step {i + 1}", loss=3.0 - i / steps)
    return {"status": "done", "step": steps}


def job_main(argv: list[str]) -> int:
    from scratchlab.lab.job_child import run_job_main

    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--job-id", required=True)
    p.add_argument("--home", required=True)
    a = p.parse_args(argv)
    return run_job_main(a.job_id, a.home, sleep_work, json.loads(Path(a.config).read_text()))


# ---- the tool ----------------------------------------------------------------------------------------
class SlowTrainArgs(BaseModel):
    steps: int = Field(100, description="Steps of the sleeping job.")
    estimated_seconds: float = Field(0.0, description="What the estimate says (600 asks first).")


def make_slow_train(ctx):
    from scratchlab.lab.jobs import start_job, wait_for_job
    from scratchlab.tools.base import lab_tool

    @lab_tool("slow_train", SlowTrainArgs)
    def slow_train(args: SlowTrainArgs) -> str:
        """Run the sleeping job and wait for it."""
        ctx.confirm("slow_train", {"config": {"steps": args.steps, "step_s": STEP_S},
                                   "estimated_seconds": args.estimated_seconds},
                    estimate_s=args.estimated_seconds, defaults={"steps": 100, "step_s": STEP_S})  # fmt: skip
        job = start_job(ctx.workspace, ctx.registry, "fake", "lab_fakes", {"steps": args.steps, "step_s": STEP_S},
                        total=args.steps)  # fmt: skip
        job = wait_for_job(ctx.registry, job.id, on_progress=ctx.on_progress)
        return f"{job.id} {job.status} after {job.step} steps"

    return slow_train


# ---- the model ---------------------------------------------------------------------------------------
class RuleModel(BaseChatModel):
    """Answers by the rules in the module docstring; streams text one word every `word_s` seconds."""

    word_s: float = WORD_S
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "rules"

    def bind_tools(self, tools, **kwargs):
        return self

    def _decide(self, messages) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(f"done: {last.content}")
        text = str(last.content) if isinstance(last, HumanMessage) else ""
        words = text.split()
        if text.startswith("train slow") and len(words) == 3:
            return self._call("slow_train", {"steps": int(words[2])})
        if text == "train big":
            return self._call("slow_train", {"steps": 50, "estimated_seconds": 600})
        if text == "tell me a long story":
            return AIMessage(" ".join(f"word{i}" for i in range(300)))
        return AIMessage(f"ok: {text}")

    @staticmethod
    def _call(name, args) -> AIMessage:
        return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:8]}"}])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.calls += 1
        return ChatResult(generations=[ChatGeneration(message=self._decide(messages))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        self.calls += 1
        msg = self._decide(messages)
        if msg.tool_calls:
            tc = msg.tool_calls[0]
            chunk = {"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc["id"], "index": 0}
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[chunk]))
            return
        for i, word in enumerate(str(msg.content).split(" ")):
            if i:
                time.sleep(self.word_s)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=("" if i == 0 else " ") + word))
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


# ---- the REPL driver ---------------------------------------------------------------------------------
def child_env() -> None:
    """Let the job's child process import this module and scratchlab."""
    paths = [str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)


def fake_session_class(lab_home: str):
    """A `LabSession` on `lab_home` with the fake model and the `slow_train` tool, whatever the face asks for."""
    from scratchlab.agent import session

    class FakeLab(session.LabSession):
        def __init__(self, home=None, model=None, **kwargs):
            kwargs.pop("tools", None)
            super().__init__(home=lab_home, model=RuleModel(), tools=[], **kwargs)
            self.tools = [make_slow_train(self.ctx)]

    return FakeLab


def repl_main(argv: list[str]) -> None:
    from scratchlab.agent import repl, session

    home, thread = argv[0], (argv[1] if len(argv) > 1 else None)
    child_env()
    session.LabSession = fake_session_class(home)  # the REPL builds its session from this name
    repl.Repl(model="fake rules", thread_id=thread).run()


def ask_main(argv: list[str]) -> None:
    """`scratchlab --home HOME ask ...` on the fake session."""
    from scratchlab.agent import session
    from scratchlab.cli.main import app

    child_env()
    session.LabSession = fake_session_class(argv[0])
    app(["--home", argv[0], "ask", *argv[1:]])


if __name__ == "__main__":
    if sys.argv[1:2] == ["repl"]:
        repl_main(sys.argv[2:])
    elif sys.argv[1:2] == ["ask"]:
        ask_main(sys.argv[2:])
    else:
        sys.exit(job_main(sys.argv[1:]))
