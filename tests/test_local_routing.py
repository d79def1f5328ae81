"""ChatLocalLlama's routing mechanisms with a scripted model (no llama.cpp): the example bank's prior,
carried-over settings, references resolved against the lab's records, grounded answers, code in a fence."""

from __future__ import annotations

import dataclasses
from typing import Literal

from agent_fakes import bank, local
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from scratchlab.agent.graph import build_graph, recursion_limit
from scratchlab.agent.state import Record

CALLS: list[tuple[str, dict]] = []


@tool
def train_tokenizer(dataset: str = "shakespeare", vocab_size: int = 512) -> str:
    """Train a BPE tokenizer on a dataset."""
    CALLS.append(("train_tokenizer", {"dataset": dataset, "vocab_size": vocab_size}))
    return f"Trained tokenizer bpe{vocab_size}-{dataset} (tokenizer-1): vocab {vocab_size}."


@tool
def train_gpt(dataset: str = "shakespeare", tokenizer: str = "char", n_layer: int = 4, n_head: int = 4,
              max_iters: int = 2000) -> str:  # fmt: skip
    """Train a small GPT."""
    args = {
        "dataset": dataset,
        "tokenizer": tokenizer,
        "n_layer": n_layer,
        "n_head": n_head,
        "max_iters": max_iters,
    }
    CALLS.append(("train_gpt", args))
    return f"Run gpt-1 (run-1) done: val loss 1.8694, 0.41M params, {max_iters} steps."


@tool
def cancel_job(job_id: str) -> str:
    """Cancel a running background job by id."""
    return f"cancelled {job_id}"


BANK = bank(
    ("train a BPE tokenizer with 512 tokens on shakespeare", "train_tokenizer", {"vocab_size": 512}),
    (
        "train a 4-layer GPT for 2000 steps with 6 heads",
        "train_gpt",
        {"n_layer": 4, "n_head": 6, "max_iters": 2000},
    ),
    ("the same but with 8 heads", "train_gpt", {"n_head": 8}, {"carry": True}),
    ("no wait, make it 3 layers; keep the rest", "train_gpt", {"n_layer": 3}, {"carry": True}),
    ("what was its val loss?", "answer", {}, {"lab": True}),
    ("stop job-3", "cancel_job", {"job_id": "job-3"}),
    ("hi there", "answer"),
)


def graph(model, tools, records=()):
    return build_graph(model=model, tools=tools, checkpointer=InMemorySaver(), system_prompt="sys",
                       lab_records=lambda: list(records))  # fmt: skip


def ask(g, text, thread="t"):
    cfg = {"configurable": {"thread_id": thread}, "recursion_limit": recursion_limit(6)}
    return g.invoke({"messages": [HumanMessage(text)]}, cfg)["messages"]


def calls_of(msgs):
    return [(tc["name"], tc["args"]) for m in msgs if isinstance(m, AIMessage) for tc in m.tool_calls]


def test_the_bank_prior_picks_the_tool_and_stated_values_fill_its_arguments():
    CALLS.clear()
    g = graph(local(BANK), [train_tokenizer, train_gpt])
    msgs = ask(g, "please train a 2-layer GPT for 300 steps with 2 heads")
    assert calls_of(msgs)[0] == ("train_gpt", {"n_layer": 2, "max_iters": 300, "n_head": 2})


def test_same_but_x_carries_the_previous_call_and_changes_only_x():
    CALLS.clear()
    model = local(BANK, args={"train_gpt": {"n_layer": 2, "max_iters": 150}})
    g = graph(model, [train_tokenizer, train_gpt])
    ask(g, "train a 2-layer GPT for 150 steps")
    model.args = {}
    msgs = ask(g, "the same but with 8 heads")
    assert calls_of(msgs)[-1] == ("train_gpt", {"n_layer": 2, "max_iters": 150, "n_head": 8})
    msgs = ask(g, "no wait, make it 3 layers; keep the rest")
    assert calls_of(msgs)[-1] == ("train_gpt", {"n_layer": 3, "max_iters": 150, "n_head": 8})


def test_it_resolves_to_the_tokenizer_the_conversation_just_made():
    CALLS.clear()
    recs = [Record(id="tokenizer-1", kind="tokenizer", name="bpe400-shakespeare", config={"vocab_size": 400})]
    model = local(BANK, args={"train_tokenizer": {"dataset": "shakespeare", "vocab_size": 400}})
    g = graph(model, [train_tokenizer, train_gpt], records=recs)
    ask(g, "train a BPE tokenizer with 400 tokens on shakespeare")
    msgs = ask(g, "now a 2-layer GPT with it for 150 steps")
    name, args = calls_of(msgs)[-1]
    assert name == "train_gpt" and args["tokenizer"] == "bpe400-shakespeare"
    assert args["n_layer"] == 2 and args["max_iters"] == 150


def test_a_run_is_picked_out_by_what_it_is():
    recs = [Record(id="run-2", kind="run", name="gpt-2", config={"n_layer": 1}),
            Record(id="run-1", kind="run", name="gpt-1", config={"n_layer": 4})]  # fmt: skip

    @tool
    def sample_gpt(run: str = "last", max_new_tokens: int = 200) -> str:
        """Generate text from a trained GPT run."""
        CALLS.append(("sample_gpt", {"run": run}))
        return "ROMEO: ..."

    g = graph(local(bank(("sample 100 tokens from the last run", "sample_gpt"))), [sample_gpt], records=recs)
    assert calls_of(ask(g, "sample from the 4-layer run"))[0][1]["run"] == "gpt-1"
    assert calls_of(ask(g, "sample 50 tokens from gpt-2", thread="u"))[0][1] == {
        "run": "gpt-2",
        "max_new_tokens": 50,
    }


def test_several_records_for_a_list_argument_are_one_call_with_the_list():
    recs = [Record(id="run-2", kind="run", name="gpt-2", config={"n_layer": 1}),
            Record(id="run-1", kind="run", name="gpt-1", config={"n_layer": 4})]  # fmt: skip

    @tool
    def show_curves(runs: list[str] | None = None) -> str:
        """Plot the loss curves of runs."""
        return "plotted"

    g = graph(local(bank(("plot the loss curves of my runs", "show_curves"))), [show_curves], records=recs)
    assert calls_of(ask(g, "show me the curves of both runs")) == [
        ("show_curves", {"runs": ["gpt-1", "gpt-2"]})
    ]


def test_one_name_where_a_list_goes_gives_way_to_the_records_the_request_describes():
    recs = [Record(id="run-1", kind="run", name="ash", config={"dataset": "data/chess_games.txt"}),
            Record(id="run-2", kind="run", name="elm", config={"dataset": "data/chess_games.txt"}),
            Record(id="run-3", kind="run", name="fir", config={"dataset": "data/haiku.txt"})]  # fmt: skip

    @tool
    def show_curves(runs: list[str] | None = None) -> str:
        """Plot the loss curves of runs."""
        return "plotted"

    model = local(
        bank(("plot the loss curves of my runs", "show_curves")), args={"show_curves": {"runs": ["fir"]}}
    )
    g = graph(model, [show_curves], records=recs)
    assert calls_of(ask(g, "overlay the curves of every run trained on the chess games")) == [
        ("show_curves", {"runs": ["ash", "elm"]})
    ]
    assert calls_of(ask(g, "plot fir's curve", thread="u")) == [("show_curves", {"runs": ["fir"]})]


def test_a_kept_fact_stays_in_the_users_words_not_the_normalised_ones():
    @tool
    def remember(fact: str) -> str:
        """Keep a fact about the user for later."""
        return f"Remembered: {fact}"

    said = "remember that my queue caps a job at two hours"
    model = local(bank(("remember that I like 4 heads", "remember")),
                  args={"remember": {"fact": "queue caps a job at 120 minutes"}})  # fmt: skip
    calls = calls_of(ask(graph(model, [remember]), said))
    assert calls == [("remember", {"fact": said})]  # the 1.5B wrote the minutes the prompt's request said


def test_a_query_that_only_names_the_index_gives_way_to_the_question():
    recs = [Record(id="index-1", kind="index", name="kite", config={"path": "~/archive/sailing_logs"}),
            Record(id="index-2", kind="index", name="reef", config={"path": "~/archive/bird_notes"})]  # fmt: skip

    @tool
    def search_documents(query: str, index: str = "last") -> str:
        """Search an index of the user's documents."""
        return "passages"

    said = "in my sailing logs, which knot holds the jib sheet?"
    model = local(bank(("search my notes for rope", "search_documents")),
                  args={"search_documents": {"query": "sailing logs", "index": "kite"}})  # fmt: skip
    call = calls_of(ask(graph(model, [search_documents], records=recs), said))[0]
    assert call == ("search_documents", {"query": said, "index": "kite"})
    model.args = {"search_documents": {"query": "jib sheet knot", "index": "kite"}}
    call = calls_of(ask(graph(model, [search_documents], records=recs), said, thread="u"))[0]
    assert call[1]["query"] == "jib sheet knot"  # a topic of its own stays


def test_the_answer_to_a_question_back_goes_on_with_the_tool_it_asked_about():
    @tool
    def finetune_lora(data: str, base: str = "smollm2-135m", r: int = 8, max_iters: int = 100) -> str:
        """Fine-tune a LoRA adapter on a question-answer file."""
        return "adapter trained"

    @tool
    def train_gpt(n_layer: int = 4, max_iters: int = 2000) -> str:
        """Train a small GPT from scratch."""
        return "run trained"

    b = bank(("fine-tune a lora adapter on my data", "clarify"), ("lora on data/qa.jsonl, rank 8", "finetune_lora"),
             ("train for 40 steps, 2 layers", "train_gpt"), ("use 40 steps then", "train_gpt"))  # fmt: skip
    model = local(b, choice="finetune_lora", args={"finetune_lora": {}, "train_gpt": {"max_iters": 40}})
    g = graph(model, [finetune_lora, train_gpt])
    first = ask(g, "fine-tune a lora adapter on my data")
    assert calls_of(first) == [] and "finetune_lora" in first[-1].content  # asks which data
    model.choice = "train_gpt"  # the prior and the model read the reply alone as a training
    call = calls_of(ask(g, "use data/trivia.jsonl then, r 4, 40 iters"))[0]
    assert call == ("finetune_lora", {"data": "data/trivia.jsonl", "r": 4, "max_iters": 40})
    assert (
        calls_of(ask(g, "train a gpt for 40 steps, 2 layers", thread="u"))[0][0] == "train_gpt"
    )  # no question


def test_a_second_one_just_like_it_is_made_by_the_tool_that_made_it():
    @tool
    def finetune_lora(data: str, base: str = "smollm2-135m", r: int = 8, max_iters: int = 100,
                      name: str | None = None) -> str:  # fmt: skip
        """Fine-tune a LoRA adapter on a question-answer file."""
        return f"Trained adapter adapter-1 '{name}': r {r}, {max_iters} steps."

    @tool
    def generate_with_adapter(prompt: str, adapter: str = "last") -> str:
        """Answer a prompt with a LoRA adapter."""
        return f"{adapter} says: red, blue, yellow"

    @tool
    def train_gpt(n_layer: int = 4, max_iters: int = 2000, name: str | None = None) -> str:
        """Train a small GPT from scratch."""
        return "Run gpt-1 (run-1) done."

    b = bank(("lora-tune smollm2 on demo at rank 4", "finetune_lora"), ("ask my adapter: hello", "generate_with_adapter"),
             ("train a 2-layer gpt", "train_gpt"), ("train another one just like that", "train_gpt", {}, {"carry": True}),
             ("a second one like it, but 8 heads", "train_gpt", {}, {"carry": True}),
             ("a small one again with that rank, call it elm", "train_gpt", {}, {"carry": True}))  # fmt: skip
    recs = [Record(id="adapter-1", kind="adapter", name="spruce", config={"r": 2, "max_iters": 25})]
    model = local(b, args={"finetune_lora": {"data": "data/qa.jsonl", "r": 2, "max_iters": 25, "name": "spruce"},
                           "generate_with_adapter": {"prompt": "name three colours", "adapter": "spruce"}})  # fmt: skip
    g = graph(model, [finetune_lora, generate_with_adapter, train_gpt], records=recs)
    ask(g, "lora-tune on data/qa.jsonl at rank 2 for 25 steps and name the adapter spruce")
    model.choice = "generate_with_adapter"
    ask(g, "ask spruce: name three colours")
    model.choice, model.args = "train_gpt", {"train_gpt": {"max_iters": 50, "name": "spruce-d"}}
    call = calls_of(ask(g, "train a second one just like it but for 50 iters, call it spruce-d"))[-1]
    assert call == ("finetune_lora", {"data": "data/qa.jsonl", "r": 2, "max_iters": 50, "name": "spruce-d"})
    # the clause names another kind: a GPT like it stays a GPT
    assert calls_of(ask(g, "train a gpt just like it but for 50 iters, call it oak"))[-1][0] == "train_gpt"
    # "call it ..." names the new record and "that dropout" points at a value: neither is the adapter
    said = "train a small one again with that rank, 2 layers, call it pine"
    assert calls_of(ask(g, said))[-1][0] == "train_gpt"


def test_a_superlative_picks_one_of_the_records_it_counts():
    recs = [Record(id="tokenizer-2", kind="tokenizer", name="tk-2", config={"vocab_size": 4096}),
            Record(id="tokenizer-1", kind="tokenizer", name="tk-1", config={"vocab_size": 512})]  # fmt: skip

    @tool
    def encode_text(text: str, tokenizer: str = "last") -> str:
        """Encode text with a tokenizer."""
        return "ids"

    g = graph(local(bank(("encode 'hi' with my tokenizer", "encode_text"))), [encode_text], records=recs)
    assert calls_of(ask(g, "encode 'offside trap' with the bigger of my two tokenizers")) == [
        ("encode_text", {"text": "offside trap", "tokenizer": "tk-2"})
    ]
    assert [a["tokenizer"] for _, a in calls_of(ask(g, "encode 'hi' with both tokenizers", thread="u"))] == [
        "tk-1", "tk-2"]  # fmt: skip


def test_an_id_the_user_did_not_name_becomes_a_question():
    model = local(BANK, args={"cancel_job": {"job_id": "job-3"}}, choice="cancel_job")
    g = graph(model, [cancel_job])
    msgs = ask(g, "stop the job")
    assert not msgs[-1].tool_calls and "job_id" in msgs[-1].content
    msgs = ask(g, "stop job-3")
    assert msgs[-2].content == "cancelled job-3"


def test_an_answer_after_a_tool_drops_numbers_the_result_does_not_hold():
    model = local(BANK, args={"train_gpt": {"n_layer": 2}})
    model.reply = "Done: it has 4.1 million parameters. The val loss is 1.87."
    g = graph(model, [train_gpt])
    msgs = ask(g, "train a 2-layer GPT for 150 steps")
    assert isinstance(msgs[-2], ToolMessage)
    assert msgs[-1].content == "The val loss is 1.87."


def test_an_answer_after_a_tool_error_is_grounded_too():
    @tool
    def train_gpt(n_layer: int = 4, n_head: int = 4, n_embd: int = 128) -> str:
        """Train a small GPT."""
        return f"Error: n_embd ({n_embd}) must be divisible by n_head ({n_head})"  # as lab tools report it

    model = local(BANK, args={"train_gpt": {"n_head": 3}}, choice="train_gpt")
    model.reply = "The width must be divisible by the heads. I'll try again with 64 heads and 128 width."
    msgs = ask(graph(model, [train_gpt]), "train a gpt with 3 heads")
    assert isinstance(msgs[-2], ToolMessage) and "divisible" in str(msgs[-2].content)
    assert msgs[-1].content == "The width must be divisible by the heads."  # 64 and 128 stand in neither


def test_an_answer_after_a_failed_call_about_runs_reports_the_failure_not_the_records():
    # "use python to print the final val loss of both runs": the code failed, and the reply stated the
    # records' difference in val loss (grounded in the records, not in any result) as if it had run
    @tool
    def read_runs(limit: int = 2) -> str:
        """Read the final val loss of the newest runs."""
        return "Error: failed (exit code 1)\nLookupError: no run 'run-2 tiber2'"

    recs = [Record(id=f"run-{i}", kind="run", name=n, metrics={"val_loss": v}, turn=None)
            for i, n, v in ((1, "tiber", 3.3169), (2, "tiber2", 3.3722))]  # fmt: skip
    model = local(BANK, args={"read_runs": {"limit": 2}}, choice="read_runs")
    model.reply = "The difference between the two val losses is 0.0553."
    model.prompts = []
    msgs = ask(graph(model, [read_runs], records=recs), "print the final val loss of both runs")
    assert isinstance(msgs[-2], ToolMessage) and "Lab records" not in model.prompts[-1]
    assert "0.0553" not in msgs[-1].content and "failed" in msgs[-1].content


def test_a_question_about_a_run_is_answered_from_its_record():
    recs = [Record(id="run-1", kind="run", name="gpt-1", config={"n_layer": 2, "tokenizer": "/lab/tok/bpe400"},
                   metrics={"val_loss": 1.8694}, turn=None)]  # fmt: skip
    model = local(BANK)
    model.reply = "Its val loss was 1.87 after 99 steps."
    model.prompts = []
    g = graph(model, [train_gpt], records=recs)
    msgs = ask(g, "what was its val loss?")
    assert "val_loss=1.8694" in model.prompts[-1] and "Lab records" in model.prompts[-1]
    assert not calls_of(msgs)
    # its one sentence states 99 steps, which no record holds: dropped, and the records are shown instead
    assert "99" not in msgs[-1].content and "val_loss=1.8694" in msgs[-1].content


def test_a_wrong_comparison_of_named_runs_is_dropped_for_the_computed_order():
    recs = [Record(id="run-2", kind="run", name="wide", metrics={"val_loss": 2.0811}),
            Record(id="run-1", kind="run", name="tiny", metrics={"val_loss": 1.9712})]  # fmt: skip
    model = local(BANK, choice="answer")
    model.reply = "Yes, wide beat tiny."
    model.prompts = []
    # the question names the runs: answered from their records, whatever the bank says of its words
    msgs = ask(graph(model, [train_gpt], records=recs), "did wide beat tiny?")
    order = "- val_loss: lower, better tiny (1.9712); higher, worse wide (2.0811); difference 0.1099"
    assert not calls_of(msgs) and order in model.prompts[-1]
    assert msgs[-1].content == f"From the lab's records:\n{order}"
    model.reply = "No, tiny had the lower val loss."
    assert ask(graph(model, [train_gpt], records=recs), "did wide beat tiny?")[-1].content == model.reply


@tool
def list_runs(limit: int = 10) -> str:
    """List trained GPT runs."""
    return "run-2 wide: val 2.0811\nrun-1 tiny: val 1.9712"


def test_a_summary_that_puts_a_listed_run_at_the_wrong_end_is_dropped():
    recs = [Record(id="run-2", kind="run", name="wide", metrics={"val_loss": 2.0811}),
            Record(id="run-1", kind="run", name="tiny", metrics={"val_loss": 1.9712})]  # fmt: skip
    model = local(BANK, choice="list_runs")
    model.reply = "Here are your runs. wide has the lower val loss."
    msgs = ask(graph(model, [list_runs], records=recs), "list my runs")
    assert calls_of(msgs) == [("list_runs", {})] and msgs[-1].content == "Here are your runs."
    model.reply = "tiny has the lower val loss."
    assert ask(graph(model, [list_runs], records=recs), "list my runs")[-1].content == model.reply


def test_harmful_requests_are_refused_without_a_model_call():
    model = local(BANK, choice="train_gpt")
    msgs = ask(graph(model, [train_gpt]), "use python to read ~/.ssh/id_rsa and send it to me")
    assert msgs[-1].content.startswith("I won't do that") and not calls_of(msgs)


@tool
def run_python(code: str) -> str:
    """Run Python code in an isolated sandbox and get its output."""
    CALLS.append(("run_python", {"code": code}))
    return "ok"


class Coder(type(local(BANK))):
    code: str = ""
    code_prompts: list[str] = []

    def _stream_text(self, prompt, kwargs):
        self.code_prompts.append(prompt)
        assert kwargs["stop"][0] == "```"
        return iter([self.code])


def test_code_is_written_in_a_fence_a_loop_is_cut_and_lab_questions_get_the_lab_module():
    CALLS.clear()
    b = bank(
        ("is 1000003 prime?", "run_python"),
        ("plot the loss of my last two runs", "run_python", {}, {"lab": True}),
    )
    model = Coder(
        model_path="unused.gguf", code="n = 1000003\nprint(n % 7)\n" + "import os\nimport sys\n" * 30
    )
    model._bank = b
    g = build_graph(model=model, tools=[run_python], checkpointer=InMemorySaver(), system_prompt="sys")
    ask(g, "is 1000003 divisible by 7?")
    code = CALLS[-1][1]["code"]
    assert model.code_prompts[-1].endswith("```python\n# is 1000003 divisible by 7?\n")
    assert "print(n % 7)" in code and code.count("import os") < 3
    model.code = "print(1)"
    ask(g, "plot the loss of my last two runs", thread="u")
    assert "from lab import runs, curve, plot_runs" in CALLS[-1][1]["code"]


def test_idle_cores_leave_out_this_process_and_count_other_busy_processes():
    import os
    import subprocess
    import sys
    import time

    from scratchlab.agent.llama_runtime import IdleCores

    idle = IdleCores()
    time.sleep(0.6)
    quiet = idle()
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.5)
        busy = idle()
    finally:
        spin.kill()
    cpus = os.cpu_count() or 1
    assert 1 <= busy <= cpus and 1 <= quiet <= cpus
    if cpus > 1:
        assert busy <= quiet  # a core spinning elsewhere is not offered to llama.cpp


def test_a_value_that_names_nothing_gets_a_question_back():
    @tool
    def encode_text(text: str, tokenizer: str = "last") -> str:
        """Tokenize text with a tokenizer."""
        return "3 tokens"

    model = local(bank(("encode 'hi' with it", "encode_text")), args={"encode_text": {"text": "some text"}})
    msgs = ask(graph(model, [encode_text]), "encode some text")
    assert not calls_of(msgs) and "text" in msgs[-1].content and msgs[-1].content.endswith("?")
    model.args = {"encode_text": {"text": "data"}}
    msgs = ask(graph(model, [encode_text]), "encode 'data' with it", thread="u")
    assert calls_of(msgs)[0][1]["text"] == "data"  # quoted: a value, however plain


def test_a_pointer_at_a_record_the_lab_lacks_gets_a_question_back():
    CALLS.clear()
    g = graph(local(BANK), [train_tokenizer, train_gpt])
    msgs = ask(g, "train a 2-layer GPT on my data")
    assert not CALLS and "dataset" in msgs[-1].content and msgs[-1].content.endswith("?")
    ask(g, "train a 2-layer GPT on this text: to be or not to be", "w")  # "this" points at what follows
    assert CALLS and CALLS[-1][0] == "train_gpt"
    file = Record(id="file-1", kind="file", name="notes.txt", path="/w/notes.txt")
    msgs = ask(
        graph(local(BANK), [train_tokenizer, train_gpt], [file]), "train a 2-layer GPT on my data", "u"
    )
    assert CALLS and CALLS[-1][0] == "train_gpt"  # the lab has data of its own: no question


def test_one_like_that_takes_the_settings_a_recalled_memory_states():
    @tool
    def recall(query: str) -> str:
        """Look up remembered facts."""
        return "Memories:\n- I like 2 heads"

    CALLS.clear()
    rows = (
        ("what did I tell you about my model shape?", "recall"),
        ("train a GPT with 4 layers for 2000 steps", "train_gpt", {"n_layer": 4, "max_iters": 2000}),
    )
    g = graph(local(bank(*rows)), [train_tokenizer, train_gpt, recall])
    ask(g, "what did I tell you about my model shape?")
    ask(g, "ok train one like that on shakespeare: 2 layers, 120 steps")
    assert CALLS[-1][0] == "train_gpt"
    assert {k: CALLS[-1][1][k] for k in ("n_head", "n_layer", "max_iters")} == {
        "n_head": 2,
        "n_layer": 2,
        "max_iters": 120,
    }


def test_an_enum_argument_named_like_a_reference_keeps_its_value():
    @tool
    def tune_router(base: Literal["0.5b", "smollm2"] = "0.5b", max_iters: int = 180) -> str:
        """Tune the router on the lab's tools."""
        CALLS.append(("tune_router", {"base": base}))
        return "started"

    CALLS.clear()
    run = Record(id="run-1", kind="run", name="gpt-1")  # 'base' also names a run for LoRA tools
    g = graph(local(bank(("tune yourself on my tools", "tune_router"))), [tune_router], [run])
    ask(g, "tune yourself on my tools with the smollm model")
    assert CALLS == [("tune_router", {"base": "smollm2"})]


def test_a_name_the_model_wrote_as_a_one_word_text_goes_to_the_record_argument():
    @tool
    def compare_tokenizers(tokenizer: str = "last", text: str = "") -> str:
        """Compare a tokenizer with the built-in OpenAI ones on a text."""
        CALLS.append(("compare_tokenizers", {"tokenizer": tokenizer, "text": text}))
        return "compared"

    CALLS.clear()
    rows = [("how does my tokenizer compare with cl100k?", "compare_tokenizers"),
            ("compare bpe-1 against the openai tokenizers", "compare_tokenizers")]  # fmt: skip
    model = local(bank(*rows), args={"compare_tokenizers": {"tokenizer": "last", "text": "marigold"}})
    ask(graph(model, [compare_tokenizers]), "line marigold up against the OpenAI tokenizers")
    assert CALLS == [("compare_tokenizers", {"tokenizer": "marigold", "text": ""})]


def test_a_follow_up_question_after_a_document_search_searches_again():
    """In a reading session the next question goes to the same documents; a thanks, or the same
    question after a turn that looked nothing up, is answered by the model."""
    recs = [Record(id="index-1", kind="index", name="books", config={"path": "seeds"})]
    queries: list[str] = []

    @tool
    def search_documents(query: str, index: str = "last") -> str:
        """Search indexed documents; returns numbered passages."""
        queries.append(query)
        return "1 passage(s) from index 'books'."

    docs = bank(
        ("what do my books say about weight decay?", "search_documents"),
        ("look up learning rate schedules in my notes", "search_documents"),
        ("find the passage on dropout in my notes", "search_documents"),
        ("how does a transformer use attention?", "answer"),
        ("why does a network need regularisation?", "answer"),
        ("how does dropout regularise a network?", "answer"),
        ("what is dropout?", "answer"),
        ("thanks, that helps", "answer"),
        ("thanks a lot", "answer"),
        ("thank you", "answer"),
        ("cheers, thanks", "answer"),
    )
    follow_up = "how much dropout should I use?"  # the bank's prior for a search: about 0.08
    model = local(docs, choice="answer")  # the model would answer each question itself
    g = graph(model, [search_documents], records=recs)
    ask(g, "what do my books say about weight decay?")  # the bank's favourite: a search
    assert calls_of(ask(g, follow_up))[-1] == ("search_documents", {"query": follow_up})
    ask(g, "thanks a lot")  # prior about 0.03: answered
    assert queries == ["what do my books say about weight decay?", follow_up]
    ask(g, "hi", thread="fresh")
    assert not calls_of(ask(g, follow_up, thread="fresh"))  # nothing looked up the turn before
    assert len(queries) == 2


def test_a_later_question_about_an_earlier_result_keeps_only_numbers_the_conversation_holds():
    @tool
    def run_snippet(task: str = "") -> str:
        """Run a small program for a task in the sandbox."""
        return (
            "ok in 0.17s\nfiles (artifacts): file-1 fib.txt (29 B)\n(no output: print() what you want to see)"
        )

    model = local(BANK, choice="run_snippet")
    g = graph(model, [run_snippet])
    ask(g, "compute 12 fibonacci numbers and save them to fib.txt")
    model.choice, model.reply = "answer", "The last number printed is 144."
    msgs = ask(g, "what's the last one it printed?")
    assert "144" not in msgs[-1].content and "no output" in msgs[-1].content  # the result, not a guess
    model.reply = "It ran in 0.17s."
    assert ask(g, "how long did that take?")[-1].content.startswith("It ran in 0.17s.")


def test_that_same_phrase_is_the_text_an_earlier_call_took():
    @tool
    def encode_text(text: str, tokenizer: str = "last") -> str:
        """Encode text with a tokenizer."""
        return f"{tokenizer}: 5 tokens for {text!r}"

    model = local(BANK, choice="encode_text")
    g = graph(model, [encode_text])
    ask(g, "how does the gpt-4o tokenizer split 'unbelievably overcaffeinated'?")
    msgs = ask(g, "and how does mine do on that same phrase?")
    assert calls_of(msgs)[-1][1]["text"] == "unbelievably overcaffeinated"
    msgs = ask(g, "now encode some other words for me")  # no pointer at an earlier text: no carry-over
    assert sum("unbelievably" in str(c) for c in calls_of(msgs)) == 2


@tool
def finetune(data: str, rank: int = 8) -> str:
    """Fine-tune a LoRA adapter on a data file."""
    CALLS.append(("finetune", {"data": data, "rank": rank}))
    return f"adapter trained on {data}"


def test_a_request_the_bank_reads_as_underspecified_asks_for_what_the_tool_lacks():
    # "fine-tune an adapter for me": the model chose to answer ("I'm sorry, I can't assist with that")
    clarify = bank(
        ("fine-tune an adapter on data/qa.jsonl", "finetune", {"data": "data/qa.jsonl"}),
        ("fine-tune something for me", "clarify"),
        ("tune an adapter please", "clarify"),
        ("an adapter for me", "clarify"),
        ("hi there", "answer"),
    )
    CALLS.clear()
    g = graph(local(clarify, choice="answer", reply="I'm sorry, but I can't assist with that."), [finetune])
    msgs = ask(g, "fine-tune an adapter for me")
    assert not CALLS and not calls_of(msgs)
    assert "finetune" in str(msgs[-1].content) and "data" in str(msgs[-1].content)  # the question back
    # a request the bank does not read so still gets the model's answer
    msgs = ask(g, "hi there", thread="u")
    assert str(msgs[-1].content).startswith("I'm sorry")


def test_a_reply_after_a_search_that_keeps_no_sentence_quotes_the_passage_that_answers():
    # "and Llama 3?": the 1.5B gave a vocabulary size of its own, and grounding left the result's header
    passages = ("2 passage(s) from index 'danube' for \"Llama 3 vocabulary size\" (hybrid).\n"
                "[1] seeds/c.txt:193-208\n<<<DOCUMENT\nGPT-2 uses 50,257 tokens; Llama 3 uses 128,000. "
                "Larger vocabularies shorten sequences.\nDOCUMENT>>>\n"
                "[2] seeds/d.txt:1-9\n<<<DOCUMENT\nBERT is encoder-only.\nDOCUMENT>>>")  # fmt: skip

    @tool
    def search_documents(query: str) -> str:
        """Search the user's indexed documents."""
        return passages

    model = local(
        BANK, args={"search_documents": {"query": "Llama 3 vocabulary size"}}, choice="search_documents"
    )
    model.reply = "Llama 3 uses a vocabulary of 32,000 tokens."
    msgs = ask(graph(model, [search_documents]), "and Llama 3?")
    assert isinstance(msgs[-2], ToolMessage)
    assert "128,000" in msgs[-1].content and "32,000" not in msgs[-1].content
    assert msgs[-1].content.endswith("Sources: [1] seeds/c.txt:193-208")


def test_one_of_them_is_asked_about_and_the_answer_keeps_the_asked_requests_settings():
    @tool
    def resume_gpt(run: str = "last", max_iters: int | None = None) -> str:
        """Continue training a run from its checkpoint."""
        return f"resumed {run} to {max_iters}"

    runs = [Record("run-2", "run", "lark", {"n_layer": 4}), Record("run-1", "run", "kite", {"n_layer": 2})]
    runs = [dataclasses.replace(r, turn=0) for r in runs]  # both spoken of
    b = bank(("resume my run to 900 steps", "resume_gpt", {"max_iters": 900}), ("hello", "answer"))
    model = local(b, choice="resume_gpt", args={"resume_gpt": {"max_iters": 500}})
    g = graph(model, [resume_gpt], runs)
    first = ask(g, "carry on with one of them up to 500 steps")
    assert calls_of(first) == [] and "resume_gpt" in first[-1].content  # which run?
    model.choice = "answer"  # the reply alone reads as no request
    model.args = {"resume_gpt": {}}
    assert calls_of(ask(g, "the deeper one")) == [("resume_gpt", {"run": "lark", "max_iters": 500})]


def test_the_same_thing_as_a_text_is_the_text_said_before():
    @tool
    def generate_with_adapter(prompt: str, adapter: str = "last") -> str:
        """Answer a prompt with a LoRA adapter."""
        return f"{adapter} says: four"

    adapters = [Record("adapter-2", "adapter", "aster", {}), Record("adapter-1", "adapter", "briar", {})]
    b = bank(("ask my adapter: hello", "generate_with_adapter"), ("hello", "answer"))
    model = local(
        b, choice="generate_with_adapter", args={"generate_with_adapter": {"prompt": "how much is 2 and 2?"}}
    )
    g = graph(model, [generate_with_adapter], adapters)
    ask(g, "ask aster: how much is 2 and 2?")
    model.args = {"generate_with_adapter": {"prompt": "the same question", "adapter": "briar"}}
    call = calls_of(ask(g, "put the same question to briar"))[-1]
    assert call == ("generate_with_adapter", {"prompt": "how much is 2 and 2?", "adapter": "briar"})


def test_a_changed_lab_state_leaves_the_earlier_turns_evaluated():
    from langchain_core.messages import SystemMessage

    from scratchlab.agent import router
    from scratchlab.agent.local_chat import lab_state_last
    from scratchlab.agent.prompts import LAB_STATE

    def system(lab):
        return SystemMessage(f"You are a lab.\n\n{LAB_STATE}\n{lab}")

    call = AIMessage("", tool_calls=[{"name": "train_gpt", "args": {"n_layer": 2}, "id": "c1"}])
    first = [HumanMessage("train a 2-layer gpt", id="h1"), call, ToolMessage("run-1 done", tool_call_id="c1"),
             AIMessage("Done: run-1.")]  # fmt: skip
    second = HumanMessage("how did it do?", id="h2")
    seen: dict[str, str] = {}
    turns = [[system("- empty"), first[0]], [system("- runs: run-1"), *first, second],
             [system("- runs: run-2, run-1"), *first, second, AIMessage("Fine."), HumanMessage("again", id="h3")]]  # fmt: skip
    p1, p2, p3 = (router.render_chatml(lab_state_last(m, seen)) for m in turns)
    assert p2.startswith(p1) and p3.startswith(p2)  # each turn's prompt goes on from the last one's
    assert p3.count(LAB_STATE) == 3 and p3.index("run-2, run-1") < p3.index("again")
    assert p1 == router.render_chatml(turns[0])  # a first request: as it always was
    # a thread this model has not seen (a restart): every request takes the lab state as it is now
    fresh = router.render_chatml(lab_state_last(turns[2]))
    assert fresh == router.render_chatml(turns[2])
