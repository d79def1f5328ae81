"""A scripted chat model for testing graphs without a real LLM (like langgraph's FakeToolCallingModel).

    model = ScriptedChatModel(responses=[
        AIMessage("", tool_calls=[{"name": "remember", "args": {"fact": "x"}, "id": "1"}]),
        AIMessage("Done."),
    ])
    graph = build_graph(model=model, tools=tools, checkpointer=InMemorySaver())

Each call returns the next response (the last one repeats when the script runs out); every message
list it was called with is kept in `calls` for assertions.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedChatModel(BaseChatModel):
    responses: list[AIMessage]
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[Any] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools, **kwargs):
        self.bound_tools = list(tools)
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        i = min(len(self.calls), len(self.responses) - 1)
        self.calls.append(list(messages))
        msg = self.responses[i].model_copy()
        return ChatResult(generations=[ChatGeneration(message=msg)])
