"""Routing helpers: shorthand, grounding, nullable schemas, grammars, prompts."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from scratchlab.agent import router
from scratchlab.agent.prompts import fixed_system_prompt, signature
from scratchlab.tools.base import Count, parse_count


@pytest.mark.parametrize(
    "raw, expected",
    [("2k", 2000), ("1.5k", 1500), ("1,000", 1000), ("2e3", 2000), ("1M", 1_000_000), ("300 steps", 300), (7, 7),
     (2000.0, 2000), ("lots", "lots")],
)  # fmt: skip
def test_parse_count(raw, expected):
    assert parse_count(raw) == expected


def test_count_in_schema():
    class A(BaseModel):
        n: Count

    assert A(n="2k").n == 2000
    with pytest.raises(ValueError):
        A(n="many")


def test_numbers_in_expands_shorthand():
    assert router.numbers_in("train for 2k steps, lr 3e-4, 1,024 tokens, 6 heads") >= {
        2000.0,
        0.0003,
        1024.0,
        6.0,
    }


def test_ground_args_drops_unsupported_values():
    text = "train a 4-layer GPT on shakespeare for 2k steps"
    args = {
        "dataset": "shakespeare",
        "n_layer": 4,
        "max_iters": 2000,
        "n_head": 8,
        "name": "wikipedia",
        "lr": None,
    }
    assert router.ground_args(args, text) == {"dataset": "shakespeare", "n_layer": 4, "max_iters": 2000}
    # references, free text the model writes, and word-stem matches survive
    args = {
        "tokenizer": "last",
        "code": "print(2**10)",
        "switches": ["no_layernorm", "no_residual"],
        "name": "last",
    }
    params = {"properties": {"tokenizer": {"type": "string", "default": "last"}, "name": {"type": "string"}}}
    kept = router.ground_args(args, "ablate layer norm and residuals", params)
    assert kept == {k: v for k, v in args.items() if k != "name"}  # "last" is only a reference value


def test_flags_need_support():
    assert router.ground_args({"wait": False, "session": True}, "train a gpt") == {}
    assert router.ground_args({"wait": False}, "train a gpt in the background") == {"wait": False}
    assert router.ground_args({"session": True}, "run this in my session") == {"session": True}


def test_unwrap_json_answer():
    assert router.unwrap_json_answer('{"message": "Hello!"}') == "Hello!"
    assert router.unwrap_json_answer("Hello {there}") == "Hello {there}"
    assert router.unwrap_json_answer('{"a": "x", "b": "y"}') == '{"a": "x", "b": "y"}'


def test_missing_required_becomes_clarify_question():
    params = {
        "properties": {"data": {"type": "string", "description": "JSONL file with examples. More."}},
        "required": ["data"],
    }
    assert router.missing_required({}, params) == ["data"]
    q = router.clarify_question("finetune_lora", ["data"], params)
    assert q.endswith("?") and "data (JSONL file with examples)" in q


def test_nullable_schema_and_grammar_parse():
    class Args(BaseModel):
        text: str
        n: int | None = 3
        k: int = 5

    schema = Args.model_json_schema()
    ns = router.nullable_schema(schema)
    assert ns["required"] == ["text"]
    assert router.nullable_schema(schema, all_required=True)["required"] == ["text", "n", "k"]
    assert {"type": "null"} in ns["properties"]["k"]["anyOf"]
    gbnf = router.args_grammar(schema)
    assert "\\x00-\\x1F" in gbnf  # control characters are excluded from strings
    from llama_cpp import LlamaGrammar

    LlamaGrammar.from_string(gbnf, verbose=False)
    LlamaGrammar.from_string(router.action_grammar(["train_gpt", "answer", "clarify"]), verbose=False)


def test_render_chatml_roundtrip_of_protocol():
    msgs = [
        SystemMessage("sys"),
        HumanMessage("hi"),
        AIMessage("", tool_calls=[{"name": "recall", "args": {"query": "x"}, "id": "1"}]),
        ToolMessage("nothing", tool_call_id="1", name="recall"),
        AIMessage("Hello!", additional_kwargs={"action": "answer"}),
    ]
    text = router.render_chatml(msgs)
    assert text.count("<|im_start|>") == 5
    assert '{"action": "recall", "args": {"query": "x"}}' in text
    assert '<tool_response name="recall">' in text and '{"action": "answer"}\nHello!' in text
    bad = AIMessage("Hi", additional_kwargs={"action": "answeranswer"})
    assert router.render_assistant(bad) == '{"action": "answer"}\nHi'
    context, calls = router.turn_context(msgs[1:4])
    assert "hi" in context and "nothing" in context and calls == [("recall", {"query": "x"})]


def test_catalogue_lists_every_tool(tool_ctx):
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from scratchlab.tools import core

    tools = [convert_to_openai_tool(t) for t in core.make_tools(tool_ctx)]
    prompt = fixed_system_prompt(tools)
    for name in ("remember", "recall", "list_artifacts"):
        assert f"- {name}(" in prompt
    sig = {"properties": {"a": {"type": "integer", "default": 2}, "b": {"type": "string"}}, "required": ["b"]}
    assert signature("f", sig) == "f(a?: int, b: str)"
    assert signature("f", sig, defaults=True) == "f(a?: int = 2, b: str)"


@pytest.mark.parametrize(
    "request_text, multi",
    [("train a 512-token tokenizer on shakespeare, then a tiny GPT with it", True),
     ("index ../shared/seeds and search it for QLoRA", True),
     ("train a BPE tokenizer with 512 tokens on shakespeare", False),
     ("encode 'To be or not to be' with it", False),
     ("what does the guide say about QLoRA and LoRA?", False)],
)  # fmt: skip
def test_wants_more_steps(request_text, multi):
    assert router.wants_more_steps(request_text) is multi


def test_should_answer_now_after_one_step():
    h = HumanMessage("train a BPE tokenizer with 300 tokens")
    call = AIMessage("", tool_calls=[{"name": "train_tokenizer", "args": {}, "id": "1"}])
    ok = ToolMessage("trained tokenizer-1", tool_call_id="1", name="train_tokenizer")
    err = ToolMessage("Error: bad", tool_call_id="1", name="train_tokenizer")
    assert router.should_answer_now([h, call, ok])
    assert not router.should_answer_now([h, call, err])
    assert not router.should_answer_now([HumanMessage("train a tokenizer, then a GPT"), call, ok])
    assert not router.should_answer_now([h])
    # a multi-step request is done once every step has a successful result: no extra call after it
    multi = HumanMessage("train a tokenizer, then list my runs")
    call2 = AIMessage("", tool_calls=[{"name": "list_runs", "args": {}, "id": "2"}])
    ok2 = ToolMessage("no runs", tool_call_id="2", name="list_runs")
    assert router.should_answer_now([multi, call, ok, call2, ok2])


def test_is_looping():
    from scratchlab.agent.local_chat import is_looping

    assert is_looping("I'm unable to edit your text. " * 6)
    assert not is_looping(
        "Perplexity is the exponential of the mean cross-entropy loss on held-out text. " + "x" * 30
    )


@pytest.mark.parametrize(
    "raw, expected",
    [("gpt 4L 6H 2k steps", "gpt 4 layers 6 heads 2000 steps"), ("sample 500 toks temp 0.7", "sample 500 tokens temperature 0.7"),
     ("max_iters=5k", "max_iters=5000"), ("a 1.5k vocab", "a 1500 vocab"), ("GPT-4 and 3D", "GPT-4 and 3D")],
)  # fmt: skip
def test_normalise_request(raw, expected):
    assert router.normalise_request(raw) == expected


def test_grounding_sees_shorthand_numbers():
    assert router.numbers_in("top_p .9 seed 42, 4L") >= {0.9, 42.0, 4.0}
    msgs = [HumanMessage("gpt 4L 6H 2k steps shakespeare")]
    context, _ = router.turn_context(msgs)
    args = {"n_layer": 4, "n_head": 6, "max_iters": 2000, "dataset": "shakespeare"}
    assert router.ground_args(args, context) == args


def test_must_continue_until_every_step_ran():
    h = HumanMessage("train a 300-token tokenizer on shakespeare, then encode 'hello world' with it")
    c1 = AIMessage("", tool_calls=[{"name": "train_tokenizer", "args": {}, "id": "1"}])
    r1 = ToolMessage("trained tokenizer-1", tool_call_id="1", name="train_tokenizer")
    c2 = AIMessage("", tool_calls=[{"name": "encode_text", "args": {"text": "hello world"}, "id": "2"}])
    r2 = ToolMessage("2 tokens", tool_call_id="2", name="encode_text")
    assert router.expected_steps(h.content) == 2
    assert router.must_continue([h, c1, r1])
    assert not router.must_continue([h, c1, r1, c2, r2])
    assert not router.must_continue([HumanMessage("train a tokenizer"), c1, r1])


def test_lab_state_names_and_fill_from_request():
    from types import SimpleNamespace as S

    from scratchlab.agent.prompts import lab_state_text

    arts = [S(kind="adapter", name="chat-r8", id="adapter-2"), S(kind="adapter", name="qa-r4", id="adapter-1"),
            S(kind="run", name="shakes-6l", id="run-2"), S(kind="run", name="shakes-4l", id="run-1")]  # fmt: skip
    names = router.lab_state_names("You are ...\n" + lab_state_text(arts))
    assert names == {"adapter": ["chat-r8", "qa-r4"], "run": ["shakes-6l", "shakes-4l"]}
    adapter = {"properties": {"prompt": {"type": "string"}, "adapter": {"type": "string", "default": "last"}}}
    fill = router.fill_from_request
    assert fill({"prompt": "hi"}, "ask the qa adapter: hi", adapter, names)["adapter"] == "qa-r4"
    assert "adapter" not in fill({"prompt": "hi"}, "ask the adapter: hi", adapter, names)  # nothing named
    run = {"properties": {"run": {"type": "string", "default": "last"}}}
    assert fill({"run": "last"}, "sample from the last run", run, names) == {
        "run": "last"
    }  # "shakes" is shared
    assert fill({}, "sample from shakes-4l", run, names) == {"run": "shakes-4l"}
    kind = {
        "properties": {"kind": {"anyOf": [{"type": "string", "enum": ["run", "adapter"]}, {"type": "null"}]}}
    }
    assert fill({}, "show my adapters", kind, names) == {"kind": "adapter"}
    assert fill({}, "show my adapters and runs", kind, names) == {}  # two kinds named: leave it


def test_prune_saved_prompt_states(tmp_path):
    import os

    from scratchlab.agent.local_chat import MAX_STATE_FILES, _prune_states

    paths = []
    for i in range(6):
        p = tmp_path / f"prefix-model-{i}.npz"
        p.write_bytes(b"x")
        os.utime(p, (1000 + i, 1000 + i))
        paths.append(p)
    (tmp_path / "prefix-other-0.npz").write_bytes(b"x")  # another model's state is not touched
    _prune_states(tmp_path, "prefix-model-", keep=paths[0])  # the one just written may be oldest by mtime
    left = sorted(p.name for p in tmp_path.glob("prefix-model-*.npz"))
    assert len(left) == MAX_STATE_FILES and "prefix-model-0.npz" in left and "prefix-model-5.npz" in left
    assert (tmp_path / "prefix-other-0.npz").exists()


def test_partial_reference_names_are_completed():
    names = {"tokenizer": ["essays-4k", "shakes512"], "run": ["shakes-4l", "shakes-6l"]}
    tok = {"properties": {"ids": {"type": "array"}, "tokenizer": {"type": "string", "default": "last"}}}
    fill = router.fill_from_request
    assert (
        fill({"tokenizer": "essays"}, "decode 1 2 with the essays tokenizer", tok, names)["tokenizer"]
        == "essays-4k"
    )
    assert fill({"tokenizer": "shakes512"}, "x", tok, names)["tokenizer"] == "shakes512"  # already exact
    run = {"properties": {"run": {"type": "string", "default": "last"}}}
    assert fill({"run": "shakes"}, "sample from shakes", run, names)["run"] == "shakes"  # two fit: left alone


def test_fill_from_request_spelled_out_builtin_and_oldest():
    tok = {"properties": {"tokenizer": {"type": "string", "default": "last"}, "text": {"type": "string"}}}
    # the model garbled a name that the request spells out
    assert (
        router.fill_from_request({"tokenizer": "gpt4o200k_base"}, "tokens in o200k_base?", tok, {})[
            "tokenizer"
        ]
        == "o200k_base"
    )
    # a partial name still completes when the request names two tokenizers
    names = {"tokenizer": ["bard3k", "notes1k"]}
    assert (
        router.fill_from_request({"tokenizer": "bard"}, "compare bard with cl100k_base", tok, names)[
            "tokenizer"
        ]
        == "bard3k"
    )
    run = {"properties": {"run": {"type": "string", "default": "last"}}}
    runs = {"run": ["shakes-6l", "shakes-4l"]}  # newest first
    assert router.fill_from_request({}, "sample from the older run", run, runs) == {"run": "shakes-4l"}
    assert router.fill_from_request({}, "sample from the last run", run, runs) == {}


def test_invented_names_are_dropped():
    params = {"properties": {"name": {"type": "string"}, "vocab_size": {"type": "integer"}}}
    got = router.ground_args(
        {"name": "shakespeare_300_tok", "vocab_size": 300}, "train a 300-token tokenizer", params
    )
    assert got == {
        "vocab_size": 300
    }  # the tool picks a unique name; an invented one can clash with an old one
    got = router.ground_args({"name": "tok300"}, "train a 300-token tokenizer named tok300", params)
    assert got == {"name": "tok300"}


def test_the_running_job_resolves_to_the_one_running_job():
    from scratchlab.agent.router import fill_from_request, lab_state_names

    props = {"properties": {"job_id": {"type": "string"}}, "required": ["job_id"]}
    one = lab_state_names("x\nLab state:\n- runs (newest first): a\n- jobs: job-4 gpt running step 3/100")
    assert one["job"] == ["job-4"]
    assert fill_from_request({}, "cancel the running job", props, one) == {"job_id": "job-4"}
    assert fill_from_request({}, "cancel a job", props, one) == {}  # no reference to a job
    two = lab_state_names("Lab state:\n- jobs: job-4 gpt running step 3/100; job-5 gpt queued step 0/10")
    assert fill_from_request({}, "cancel the running job", props, two) == {}  # which one?


def test_artifacts_resolve_from_what_the_request_says_about_them():
    from types import SimpleNamespace as S

    from scratchlab.agent.prompts import lab_state_text

    arts = [S(kind="run", name="wide-8l", id="run-2", config={"n_layer": 8, "n_embd": 512, "dataset": "shakespeare"}),
            S(kind="run", name="tiny-2l", id="run-1", config={"n_layer": 2, "n_embd": 64, "dataset": "shakespeare"}),
            S(kind="tokenizer", name="bpe4k-py", id="tokenizer-2", config={"vocab_size": 4096, "dataset": "data/python_src"}),
            S(kind="tokenizer", name="bpe512", id="tokenizer-1", config={"vocab_size": 512, "dataset": "shakespeare"})]  # fmt: skip
    system = "You are ...\n" + lab_state_text(arts)
    assert "wide-8l (run-2; 8 layers, 512 wide, shakespeare)" in system
    details = router.lab_state_details(system)
    assert router.lab_state_names(system) == {
        "run": ["wide-8l", "tiny-2l"],
        "tokenizer": ["bpe4k-py", "bpe512"],
    }
    resolve = router.resolve_by_description
    assert resolve("sample from the bigger of my two models", details["run"]) == "wide-8l"
    assert resolve("resume the smaller one", details["run"]) == "tiny-2l"
    assert resolve("the 2-layer run crashed", details["run"]) == "tiny-2l"
    assert resolve("sample from my shakespeare model", details["run"]) is None  # both are on shakespeare
    assert resolve("how does the python tokenizer split this", details["tokenizer"]) == "bpe4k-py"
    run = {"properties": {"run": {"type": "string", "default": "last"}}}
    names = router.lab_state_names(system)
    assert router.fill_from_request({}, "resume the 2-layer run", run, names, details) == {"run": "tiny-2l"}
    tok = {"properties": {"text": {"type": "string"}, "tokenizer": {"type": "string", "default": "last"}}}
    got = router.fill_from_request(
        {"tokenizer": "python_src"}, "how does the python tokenizer split x", tok, names, details
    )
    assert got["tokenizer"] == "bpe4k-py"  # the model wrote the description, not the name


def test_a_described_artifact_beats_the_models_unnamed_pick():
    from types import SimpleNamespace as S

    from scratchlab.agent.prompts import lab_state_text

    arts = [S(kind="tokenizer", name="wiki-tok-2", id="tokenizer-2", config={"vocab_size": 1024, "dataset": "data/wiki.txt"}),
            S(kind="tokenizer", name="wiki-tok-1", id="tokenizer-1", config={"vocab_size": 8192, "dataset": "data/wiki.txt"}),
            S(kind="run", name="base-c", id="run-3", config={"dropout": 0.1}),
            S(kind="run", name="base-b", id="run-2", config={"dropout": 0.25}),
            S(kind="run", name="base-a", id="run-1", config={"dropout": 0.0})]  # fmt: skip
    system = "...\n" + lab_state_text(arts)
    names, details = router.lab_state_names(system), router.lab_state_details(system)
    tok = {"properties": {"tokenizer": {"type": "string", "default": "last"}}}
    fill = router.fill_from_request
    assert fill(
        {"tokenizer": "wiki-tok-2"}, "compare my bigger-vocab tokenizer with gpt-4's", tok, names, details
    ) == {"tokenizer": "wiki-tok-1"}
    assert fill({"tokenizer": "wiki-tok-2"}, "compare wiki-tok-2 with gpt-4's", tok, names, details) == {
        "tokenizer": "wiki-tok-2"  # named outright: kept
    }
    run = {"properties": {"run": {"type": "string", "default": "last"}}}
    assert fill({}, "resume the run where I used 0.25 dropout for 4000 steps", run, names, details) == {
        "run": "base-b"
    }
    assert fill({}, "resume it for 250 more steps", run, names, details) == {}  # a count, not a description
