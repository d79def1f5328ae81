"""ChatLocalLlama's routing logic with a scripted completion function (no llama.cpp): parallel calls
for independent steps, explicit values overriding the model's, and ids that the user never named."""

from __future__ import annotations

import re

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from scratchlab.agent import router
from scratchlab.agent.graph import build_graph, recursion_limit
from scratchlab.agent.local_chat import ChatLocalLlama

CALLS: list[str] = []


@tool
def train_tokenizer(dataset: str, vocab_size: int = 512) -> str:
    """Train a BPE tokenizer on a dataset."""
    CALLS.append("train_tokenizer")
    return f"trained tokenizer bpe{vocab_size}"


@tool
def list_runs(limit: int = 10) -> str:
    """List recent GPT training runs."""
    CALLS.append("list_runs")
    return "no runs yet"


@tool
def cancel_job(job_id: str) -> str:
    """Cancel a running background job by id."""
    return f"cancelled {job_id}"


class ScriptedLocal(ChatLocalLlama):
    """Routing decisions from a lookup on the last user text instead of a model."""

    actions: dict[str, str] = {}
    args: dict[str, str] = {}

    def _fit(self, messages):
        return router.render_chatml(messages) + f"{router.IM_START}assistant\n"

    def warm_start(self, system_prefix):
        pass

    def _answer_stream(self, prompt, max_tokens=None):
        return iter(["Done."])

    def _complete(self, prompt, *, grammar, max_tokens=64):
        user = re.findall(r"<\|im_start\|>user\n(?!<tool_response)(.*?)<\|im_end\|>", prompt, re.S)[-1]
        if prompt.endswith(
            router.ACTION_PREFIX
        ):  # a tool the request names, not called yet, the grammar allows
            done = prompt.rsplit(user, 1)[1]
            todo = [a for key, a in self.actions.items() if key in user and f'"action": "{a}"' not in done]
            return next((a for a in todo if f'"{a}"' in grammar), "answer")
        action = re.search(r'"action": "(\w+)", "args": $', prompt)[1]
        return self.args.get(action, "{}")


def make_graph(**kw):
    model = ScriptedLocal(model_path="unused.gguf", **kw)
    return build_graph(model=model, tools=[train_tokenizer, list_runs, cancel_job], checkpointer=InMemorySaver(),
                       system_prompt="sys")  # fmt: skip


def ask(graph, text):
    cfg = {"configurable": {"thread_id": "t"}, "recursion_limit": recursion_limit(6)}
    return graph.invoke({"messages": [HumanMessage(text)]}, cfg)["messages"]


def test_independent_steps_become_parallel_calls():
    CALLS.clear()
    g = make_graph(actions={"tokenizer": "train_tokenizer", "runs": "list_runs"},
                   args={"train_tokenizer": '{"dataset": "shakespeare", "vocab_size": 512}'})  # fmt: skip
    msgs = ask(g, "train a 256-token tokenizer on shakespeare and also list my runs")
    first = msgs[1]
    assert isinstance(first, AIMessage)
    assert [tc["name"] for tc in first.tool_calls] == ["train_tokenizer", "list_runs"]  # one turn, two calls
    assert (
        first.tool_calls[0]["args"]["vocab_size"] == 256
    )  # stated in the request: overrides the model's 512
    assert sorted(CALLS) == ["list_runs", "train_tokenizer"]  # each ran once
    assert [type(m) for m in msgs[2:4]] == [ToolMessage, ToolMessage]
    assert msgs[-1].content == "Done." and not msgs[-1].tool_calls


def test_dependent_steps_stay_sequential():
    g = make_graph(actions={"tokenizer": "train_tokenizer", "runs": "list_runs"},
                   args={"train_tokenizer": '{"dataset": "shakespeare"}'})  # fmt: skip
    msgs = ask(g, "train a tokenizer on shakespeare, then list my runs")
    calls = [tc["name"] for m in msgs if isinstance(m, AIMessage) for tc in m.tool_calls]
    assert calls == ["train_tokenizer", "list_runs"]
    assert all(len(m.tool_calls) <= 1 for m in msgs if isinstance(m, AIMessage))


def test_an_id_the_user_did_not_name_becomes_a_question():
    g = make_graph(actions={"stop": "cancel_job"}, args={"cancel_job": '{"job_id": "job-3"}'})
    msgs = ask(g, "stop the job")
    assert not msgs[-1].tool_calls and "job_id" in msgs[-1].content
    msgs = ask(g, "stop job-3")
    assert msgs[-2].content == "cancelled job-3"


@tool
def run_python(code: str) -> str:
    """Run Python code in an isolated sandbox and get its output."""
    CALLS.append(code)
    return "ok"


class ScriptedCoder(ScriptedLocal):
    """Also writes code: the fenced completion is scripted (it loops, as greedy small models do)."""

    code: str = ""
    code_prompts: list[str] = []

    def _stream_text(self, prompt, kwargs):
        self.code_prompts.append(prompt)
        assert kwargs["stop"][0] == "```"
        return iter([self.code])


def test_code_is_written_in_a_fence_and_a_loop_is_cut():
    CALLS.clear()
    loop = "import os\nimport sys\n" * 30
    model = ScriptedCoder(model_path="unused.gguf", actions={"python": "run_python"},
                          code="n = 1000003\nprint(n % 7)\n" + loop)  # fmt: skip
    g = build_graph(model=model, tools=[run_python], checkpointer=InMemorySaver(), system_prompt="sys")
    ask(g, "use python to check whether 1000003 is divisible by 7")
    code = CALLS[-1]
    assert model.code_prompts[-1].endswith(
        "```python\n# use python to check whether 1000003 is divisible by 7\n"
    )
    assert code.startswith("# use python to check") and "print(n % 7)" in code
    assert code.count("import os") < 3  # the repeated tail is cut, not run


def test_code_about_the_labs_runs_names_the_lab_data():
    CALLS.clear()
    model = ScriptedCoder(model_path="unused.gguf", actions={"plot": "run_python"}, code="print(1)")
    g = build_graph(model=model, tools=[run_python], checkpointer=InMemorySaver(), system_prompt="sys")
    ask(g, "plot the loss of my last two runs")
    assert "from lab import runs, curve, plot_runs" in CALLS[-1] and CALLS[-1].endswith("print(1)")


@tool
def sample_gpt(run: str = "last", max_new_tokens: int = 100) -> str:
    """Generate text from a trained GPT run."""
    CALLS.append("sample_gpt")
    return "ROMEO: ..."


def test_one_tool_left_that_needs_nothing_is_called_not_asked_about():
    CALLS.clear()
    model = ScriptedLocal(model_path="unused.gguf")  # would answer: it names no action
    g = build_graph(
        model=model, tools=[sample_gpt, list_runs], checkpointer=InMemorySaver(), system_prompt="sys"
    )
    ask(g, "write me some fake shakespeare with the model I trained")  # policy: sample_gpt or a question
    assert CALLS == ["sample_gpt"]
