"""scratchlab's real graph and tools with a rule-based chat model, for the LangGraph Agent Server test.

`tests/test_langgraph_server.py` writes a `langgraph.json` that points here and starts `langgraph dev`.
The model is a fake (like langgraph's FakeToolCallingModel): it calls `train_tokenizer` for a request
that mentions a tokenizer, `train_gpt` with a run far over the confirmation threshold for one that
mentions a GPT, and after a tool result answers with that result. It decides from the conversation, not
from a call counter, because the server builds the graph again for every run (a resume is a new run).
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from scratchlab.agent.graph import build_graph

LONG_GPT = {"n_layer": 4, "n_embd": 128, "n_head": 4, "block_size": 64, "max_iters": 100_000_000}


class RuleChatModel(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "rules"

    def bind_tools(self, tools: Any, **kwargs: Any) -> RuleChatModel:
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            msg = AIMessage(f"Tool result: {last.content}")
        elif isinstance(last, HumanMessage) and "tokenizer" in str(last.content).lower():
            call = {
                "name": "train_tokenizer",
                "args": {"vocab_size": 300, "dataset": "shakespeare"},
                "id": "call-tok",
            }
            msg = AIMessage("", tool_calls=[call])
        elif isinstance(last, HumanMessage) and "gpt" in str(last.content).lower():
            msg = AIMessage("", tool_calls=[{"name": "train_gpt", "args": LONG_GPT, "id": "call-gpt"}])
        else:
            msg = AIMessage("Hello from the rule model.")
        return ChatResult(generations=[ChatGeneration(message=msg)])


async def graph(config=None):
    """Graph factory (the server supplies the checkpointer and store); built off the event loop."""
    return await asyncio.to_thread(build_graph, model=RuleChatModel(), system_prompt="")
