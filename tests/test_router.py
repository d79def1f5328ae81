"""Routing helpers: shorthand, grounding, nullable schemas, grammars, prompts."""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field

from scratchlab.agent import bank, router
from scratchlab.agent.grounding import ground_reply
from scratchlab.agent.prompts import fixed_system_prompt, tool_catalogue
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


def test_a_number_that_is_part_of_a_name_is_no_value():
    # "gpt-1" once let the grammar write lr 1 for "fine-tune gpt-1 with lora on the demo set, 20 steps"
    assert router.numbers_in("fine-tune gpt-1 with lora on the demo set, 20 steps") == {20.0}
    assert router.numbers_in("stop job-12 and sample qwen2.5-coder-0.5b, a 2-layer run") == {2.0}
    lora = {
        "properties": {
            "lr": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "max_iters": {"type": "integer"},
        }
    }
    props = router.grounded_schema(lora, "fine-tune gpt-1, 20 steps")["properties"]
    assert props["max_iters"] == {"enum": [20]} and 1 not in props["lr"]["enum"]
    # "smollm2-135m" once let the model write max_iters 135000000; a range "2-4" is still two numbers
    assert router.numbers_in("sweep lora on smollm2-135m over rank, 8 trials") == {8.0}
    assert router.numbers_in("n_layer 2-4, lr 3e-4") == {2.0, 4.0, 0.0003}
    assert [v for v, _ in bank.number_contexts("sweep lora on smollm2-135m, 8 trials, lr3e-4")] == [
        8.0,
        0.0003,
    ]


def test_a_background_run_is_asked_for_also_with_a_typo():
    assert router.says_no_wait("run it in the backround.") and router.says_no_wait("backgroud please")
    assert not router.says_no_wait("run it backwards") and not router.says_no_wait("wait for it")
    assert router.says_no_wait("lora demo r16, 40 steps, bg") and not router.says_no_wait(
        "the bgm file"
    )  # shorthand
    assert router.says_no_wait("sweep-4: resume, +20 min, no wait")  # a phrase of its own, after the first
    assert not router.says_no_wait("no wait, make it 3 layers; keep the rest")  # a correction opens with it
    # a negation before the verb, in any form: "without waiting", "not waiting"
    assert router.says_no_wait("start a 2-layer model for 250 steps without waiting for it, then its status")
    assert router.says_no_wait("kick it off, i am not waiting")
    assert router.says_no_wait("a 2-layer run named heron, 400 iterations, don't block on it")
    assert not router.says_no_wait("train it on the block of text I gave you")
    assert not router.says_no_wait("oh no wait, make it 3 layers")  # the opening phrase corrects


def test_numbers_in_expands_shorthand():
    assert router.numbers_in("train for 2k steps, lr 3e-4, 1,024 tokens, 6 heads") >= {
        2000.0,
        0.0003,
        1024.0,
        6.0,
    }
    assert router.numbers_in("sample T=1.2 k=40") == {1.2, 40.0}  # that k is top-k, not a thousand


def test_a_setting_spec_keeps_only_values_the_request_gives():
    params = {"properties": {"search": {"type": "array", "items": {"type": "string"}}}}
    text = "a little search over dropout, lr and n_layer 2 or 4"
    args = {"search": ["dropout=0.05,0.1,0.15", "n_layer=2,4", "lr=1e-4..1e-2"]}
    assert router.ground_args(args, text, params) == {"search": ["dropout", "n_layer=2,4", "lr"]}
    listed = {"search": ["n_embd=64,128"]}  # not the number 64128
    assert router.ground_args(listed, "sweep n_embd=64,128 x lr", params) == listed
    stated = {"search": ["dropout=0.1..0.3"]}
    assert router.ground_args(stated, "sweep dropout from 0.1 to 0.3", params) == stated


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


def test_grounded_schema_admits_only_what_grounding_keeps():
    class Args(BaseModel):
        dataset: str
        n_layer: int | None = Field(None, ge=1, le=64)
        lr: float | None = None
        seed: int | None = None
        sizes: list[int] | None = None
        compile: bool = False
        wait: bool = True
        name: str | None = None
        pattern: Literal["gpt2", "gpt4", "llama3"] | None = None
        switches: list[Literal["no_bias", "no_dropout", "relu"]] | None = None

    schema = Args.model_json_schema()
    text = "train 3 layers at lr 3e-4 and 0.5 dropout on data/x.txt in the background, call it tiny-gpt."
    props = router.grounded_schema(schema, text)["properties"]
    assert props["n_layer"] == {"enum": [3]}  # 0.0003 and 0.5 are no integers; the bound keeps 3
    assert props["lr"] == {"enum": [0.0003, 0.5, 3]}
    assert props["sizes"]["items"] == {"enum": [3]}
    assert props["wait"] == {"enum": [False]} and "compile" not in props  # flags the request names
    assert props["dataset"] == schema["properties"]["dataset"]  # required: left to the question back
    assert props["pattern"]["enum"] == ["gpt2", "gpt4"]  # share "gpt" with "tiny-gpt", as grounding counts
    assert props["switches"]["items"] == {"enum": ["no_dropout"]}  # "dropout" is said, bias and relu are not
    said = router.grounded_schema(schema, "a llama3 split pattern and no bias")["properties"]
    assert said["pattern"] == {"enum": ["llama3"]} and said["switches"]["items"] == {"enum": ["no_bias"]}
    for value in ("gpt2", "llama3"):  # what the grammar admits, grounding keeps, and the other way round
        kept = router.ground_args({"pattern": value}, text, schema)
        assert (value in props["pattern"]["enum"]) == (kept.get("pattern") == value)
    bare = router.grounded_schema(schema, "fit a small model")["properties"]
    assert set(bare) == {"dataset", "name"}  # no number, flag or enum value named: nothing to invent
    capped = router.nullable_schema(schema)["properties"]["name"]["anyOf"][0]
    assert capped["maxLength"] == router.MAX_NAME_CHARS  # an optional name is capped like a required one
    gbnf = router.args_grammar(schema, text)
    assert '"0.0003" | "3e-4"' in gbnf  # the spelling the request uses is admitted too
    from llama_cpp import LlamaGrammar

    LlamaGrammar.from_string(gbnf, verbose=False)
    # what the grammar admits, grounding keeps
    assert router.ground_args({"n_layer": 3, "lr": 0.0003, "wait": False, "name": "tiny-gpt"}, text, schema) == {
        "n_layer": 3, "lr": 0.0003, "wait": False, "name": "tiny-gpt"}  # fmt: skip


def test_number_spellings():
    assert router.number_spellings("lr 3e-4, 1e3 steps, 2k tokens, 0.5 and 7") == {
        "0.0003": "3e-4",
        "1000": "1e3",
    }


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
        assert f"- {name}: " in prompt
    # every argument with its type, enum values and the schema's own description
    assert "query: str - What to look up in long-term memory (a few keywords)." in prompt
    assert 'kind?: "tokenizer"|"dataset"|"run"' in prompt


def test_catalogue_is_generated_from_the_schema_and_the_bank():
    schema = {"name": "f", "description": "Do f. More text.", "parameters": {
        "properties": {"a": {"type": "integer", "default": 2, "description": "How many, e.g. 3 or 4. Extra."},
                       "mode": {"enum": ["x", "y"], "type": "string", "description": "'x' (fast) or 'y' (exact)."}},
        "required": ["mode"]}}  # fmt: skip
    text = tool_catalogue([{"type": "function", "function": schema}], {"f": [("do f fast", {"mode": "x"})]})
    assert text.splitlines() == [
        "- f: Do f.",
        "    args: a?: int - How many, e.g. 3 or 4.; mode: \"x\"|\"y\" - 'x' (fast) or 'y' (exact).",
        '    e.g. "do f fast" -> {"mode": "x"}',
    ]


@pytest.mark.parametrize(
    "request_text, multi",
    [("train a 512-token tokenizer on shakespeare, then a tiny GPT with it", True),
     ("index ../shared/seeds and afterwards search it for QLoRA", True),
     ("no wait, make it 3 layers; keep the rest", False),
     ("train a BPE tokenizer with 512 tokens on shakespeare", False),
     ("encode 'To be or not to be' with it", False),
     ("what does the guide say about QLoRA and LoRA?", False),
     ("ok then the same but 1500 steps, and wait for it to finish", False),
     ("alright, then train it again and finally sample from it", True)],
)  # fmt: skip
def test_wants_more_steps(request_text, multi):
    assert router.wants_more_steps(request_text) is multi


def test_a_reply_falls_back_to_the_result_not_the_request():
    h = HumanMessage("according to the books, how much memory does it need?")
    call = AIMessage("", tool_calls=[{"name": "search_documents", "args": {}, "id": "1"}])
    ok = ToolMessage(
        "5 passage(s) from index 'books'\n[1] a.txt:1-2", tool_call_id="1", name="search_documents"
    )
    assert router.result_headline([h, call, ok]) == "5 passage(s) from index 'books'"
    assert router.result_headline([ok, h]) is None  # a new request: no result of its own yet
    sources = [router.turn_context([h, call, ok])[0]]
    assert ground_reply("It needs 1.5TB.", sources, router.result_headline([h, call, ok])).startswith(
        "5 passage"
    )


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
    from scratchlab.agent.llama_runtime import is_looping

    assert is_looping("I'm unable to edit your text. " * 6)
    assert not is_looping(
        "Perplexity is the exponential of the mean cross-entropy loss on held-out text. " + "x" * 30
    )


@pytest.mark.parametrize(
    "raw, expected",
    [("gpt 4L 6H 2k steps", "gpt 4L 6H 2000 steps"), ("max_iters=5k", "max_iters=5000"), ("a 1.5k vocab", "a 1500 vocab"),
     ("GPT-4 and 3D", "GPT-4 and 3D"), ("sample T=1.2 k=40", "sample T=1.2 k=40"), ("top 1.2 k 40", "top 1.2 k 40"),
     # durations in minutes, the unit the time arguments take
     ("an extra quarter of an hour.", "an extra 15 minutes."), ("sweep for 2 hours", "sweep for 120 minutes"),
     ("half an hour more", "30 minutes more"), ("an hour and a half, grid", "90 minutes, grid"),
     ("the hour is late", "the hour is late"), ("2L 2H 64d", "2L 2H 64d"),
     # numbers said in words, but a lone small one (it points and counts) and quoted text
     ("LoRA it for eighty steps", "LoRA it for 80 steps"), ("fifteen minutes max", "15 minutes max"),
     ("one hundred and fifty steps, twenty-five heads", "150 steps, 25 heads"), ("a thousand steps", "1000 steps"),
     ("train one like that on the two files", "train one like that on the two files"),
     ("two hours", "120 minutes"), ("encode 'twenty thousand leagues'", "encode 'twenty thousand leagues'")],
)  # fmt: skip
def test_normalise_request(raw, expected):
    assert router.normalise_request(raw) == expected


def test_grounding_sees_shorthand_numbers():
    assert router.numbers_in("top_p .9 seed 42, 4L") >= {0.9, 42.0, 4.0}
    msgs = [HumanMessage("gpt 4 layers 6 heads 2k steps shakespeare")]
    context, _ = router.turn_context(msgs)
    args = {"n_layer": 4, "n_head": 6, "max_iters": 2000, "dataset": "shakespeare"}
    assert router.ground_args(args, context) == args


def test_must_continue_until_every_step_ran():
    h = HumanMessage("train a 300-token tokenizer on shakespeare, then encode 'hello world' with it")
    c1 = AIMessage("", tool_calls=[{"name": "train_tokenizer", "args": {}, "id": "1"}])
    r1 = ToolMessage("trained tokenizer-1", tool_call_id="1", name="train_tokenizer")
    c2 = AIMessage("", tool_calls=[{"name": "encode_text", "args": {"text": "hello world"}, "id": "2"}])
    r2 = ToolMessage("2 tokens", tool_call_id="2", name="encode_text")
    assert len(router.split_steps(h.content)) == 2
    assert router.must_continue([h, c1, r1])
    assert not router.must_continue([h, c1, r1, c2, r2])
    assert not router.must_continue([HumanMessage("train a tokenizer"), c1, r1])
    # "X, and if C, Y": Y is its own step, and the model decides on it with X's result in view
    said = "check how sweep-18 went, and if it has finished, resume it with 5 more minutes"
    assert router.split_steps(said) == [
        "check how sweep-18 went",
        "if it has finished, resume it with 5 more minutes",
    ]
    assert router.current_clause([HumanMessage(said)]) == "check how sweep-18 went"
    assert not router.must_continue([HumanMessage(said), c1, r1])
    assert not router.should_answer_now([HumanMessage(said), c1, r1])
    assert router.split_steps("tell me if it beats gpt-2") == ["tell me if it beats gpt-2"]  # no "and if"
    # "X and Y it if C": the same, with the condition after the step it guards
    guarded = "look at job-7 and resume it if it crashed"
    assert router.split_steps(guarded) == ["look at job-7", "resume it if it crashed"]
    assert not router.must_continue([HumanMessage(guarded), c1, r1])  # the model decides on the resume
    assert router.split_steps("a GPT with 2 layers and 4 heads if you can") == [
        "a GPT with 2 layers and 4 heads if you can"
    ]  # no pronoun before the "if": one step
    # a "then" that ends its clause is a particle, no step
    assert router.split_steps("ok use the small file then, 3 layers") == [
        "ok use the small file then, 3 layers"
    ]
    assert router.split_steps("so how big is it then?") == ["so how big is it then?"]
    assert router.split_steps("train it, then sample from it") == ["train it", "sample from it"]


def test_prune_saved_prompt_states(tmp_path):
    import os

    from scratchlab.agent.llama_runtime import MAX_STATE_FILES
    from scratchlab.agent.llama_runtime import prune_states as _prune_states

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


def test_an_invented_file_is_dropped_whatever_words_it_shares_with_the_request():
    params = {"properties": {"data": {"type": "string"}, "base": {"type": "string", "default": "last"}}}
    said = "do a LoRA fine-tune on my last run"
    assert router.ground_args({"data": "last.jsonl", "base": "last"}, said, params) == {"base": "last"}
    said = "fine-tune my last run on data/qa.jsonl"
    assert router.ground_args({"data": "data/qa.jsonl"}, said, params) == {"data": "data/qa.jsonl"}
    assert router.ground_args({"data": "qa.jsonl"}, "fine-tune on the qa set", params) == {}
    assert not router.names_file("qwen2.5-coder") and not router.names_file("0.5b")


def test_a_kept_fact_holds_what_the_user_said():
    tools = ["remember", "recall"]
    said = "remember that my go-to sampling temperature is 0.7"
    assert router.faithful_fact("0.7", said, tools) == said  # the model's fact lost what 0.7 is
    assert router.faithful_fact("User's go-to sampling temperature is 0.7", said, tools).startswith("User's")
    # the word that says what a number is stays with it: "96 with 3 attention heads" lost "width"
    wide = "please remember: my go-to model width is 96 with 3 attention heads"
    assert router.faithful_fact("96 with 3 attention heads", wide, tools) == wide
    moved = "64 with 2 attention heads is my go-to model width and number of heads."
    assert router.faithful_fact(moved, "remember: my go-to model width is 64 with 2 attention heads", tools) == (
        "remember: my go-to model width is 64 with 2 attention heads")  # fmt: skip
    assert router.faithful_fact("go-to model width is 96 with 3 attention heads", wide, tools).startswith(
        "go-to"
    )


def test_a_fact_the_model_wrote_from_nothing_the_user_said_is_invented():
    tools = ["remember", "recall"]
    assert router.invented_args(
        {"fact": "I remember this for you."}, "Please remember this for me.", tools
    ) == ["fact"]
    said = "please remember: I like my samples at 0.6"
    assert router.invented_args({"fact": "User prefers temperature 0.6"}, said, tools) == []
    # words that say when say nothing to keep: "next time" is in the request and the fact alike
    fact = "for next time, I will remember to train a tokenizer on the Shakespeare dataset."
    assert router.invented_args({"fact": fact}, "remember that for next time", tools) == ["fact"]
    said = "my batch size is always 32\nremember that"  # what "that" points at was said before
    assert router.invented_args({"fact": "batch size 32"}, said, tools) == []
    assert (
        router.invented_args({"code": "print(1)"}, "run some code", tools) == []
    )  # code is written, not said


def test_values_that_point_without_naming_and_requests_with_nothing_to_look_for():
    params = {"properties": {"text": {}, "dataset": {"default": "shakespeare"}, "code": {}}}
    assert router.vague_args({"text": "some text", "dataset": "my data", "code": "x"}, params) == [
        "text",
        "dataset",
    ]
    assert router.vague_args({"text": "this"}, params) == ["text"]
    assert router.vague_args({"text": "hello world", "dataset": "shakespeare"}, params) == []
    assert (
        router.vague_args({"dataset": "~/corpus"}, params) == []
    )  # a path names something, whatever its words
    assert router.vague_args({"dataset": "notes.txt"}, params) == []
    assert router.vague_args({"dataset": "the corpus"}, params) == ["dataset"]
    assert router.vague_args({"dataset": "notes"}, params) == [
        "dataset"
    ]  # "search my notes" with no such record
    assert (
        router.vague_args({"dataset": "notes"}, params, {"notes", "index-2"}) == []
    )  # an index called notes
    # the verbs that ask for the tool name no topic: "look something up in my documents please"
    search = {"properties": {"query": {}}}
    said = "look something up in my documents please"
    assert router.vague_args({"query": said}, search, verbs={"look", "search"}) == ["query"]
    assert router.vague_args({"query": "look up rope in my documents"}, search, verbs={"look"}) == []
    # the nouns of what the tool reads name no topic: the query "my index" looks for nothing
    assert router.vague_args({"query": "my index"}, search, nouns={"index", "notes"}) == ["query"]
    assert router.vague_args({"query": "my index"}, search) == []
    assert router.vague_args({"query": "dropout in my notes"}, search, nouns={"index", "notes"}) == []
    tools = ["search_documents", "recall"]
    assert router.content_words("search the documents", tools) == set()
    assert router.content_words("what was the batch size I told you I prefer?", tools) >= {"batch", "size"}


def test_no_wait_the_interjection_is_not_a_background_run():
    assert router.ground_args({"wait": False, "n_layer": 3}, "no wait, make it 3 layers; keep the rest") == {
        "n_layer": 3
    }
    assert router.ground_args({"wait": False}, "train it in the background") == {"wait": False}


def test_a_background_request_sets_wait_false_even_when_the_model_left_it_out():
    params = {"properties": {"wait": {"type": "boolean", "default": True}, "n_layer": {"type": "integer"}}}
    got = router.ground_args({"n_layer": 2}, "train a 2-layer gpt in the background", params)
    assert got == {"n_layer": 2, "wait": False}
    assert router.ground_args({"n_layer": 2}, "train a 2-layer gpt", params) == {"n_layer": 2}
    assert router.ground_args({}, "no wait, make it 2 layers", params) == {}
    assert router.ground_args({}, "search my notes in the background", {"properties": {"query": {}}}) == {}


def test_clause_context_holds_the_clause_and_this_turns_results():
    msgs = [HumanMessage("old request with 7"), ToolMessage("old result 9", tool_call_id="0"),
            HumanMessage("train a tokenizer with 400 tokens, then a gpt for 150 steps"),
            AIMessage("", tool_calls=[{"name": "train_tokenizer", "args": {}, "id": "1"}]),
            ToolMessage("tokenizer bpe400 done", tool_call_id="1")]  # fmt: skip
    assert router.clause_context(msgs, "a gpt for 150 steps", ["n_layer"]) == "a gpt for 150 steps"
    assert router.numbers_in(router.clause_context(msgs[:3], "train a tokenizer with 400 tokens")) == {400.0}


def test_a_tool_results_numbers_ground_only_the_arguments_it_names():
    result = ("Trained tokenizer tokenizer-1 'shakespeare': vocab_size 300, 44 merges, pattern gpt4, "
              "compression 1.40 bytes/token on shakespeare, 0.8s.")  # fmt: skip
    msgs = [HumanMessage("train a tokenizer with 300 tokens, then a 1-layer GPT with it for 100 steps"),
            AIMessage("", tool_calls=[{"name": "train_tokenizer", "args": {}, "id": "1"}]),
            ToolMessage(result, tool_call_id="1")]  # fmt: skip
    gpt = ["dataset", "tokenizer", "n_layer", "n_embd", "max_iters", "lr"]
    ctx = router.clause_context(msgs, "a 1-layer GPT with it for 100 steps", gpt)
    assert router.numbers_in(ctx) == {1.0, 100.0}  # not 300 (a vocab size) nor 0.8 (seconds)
    sweep = [*msgs[:2], ToolMessage("sweep done: best trial 3, lr=3e-4, val loss 1.52", tool_call_id="1")]
    ctx = router.clause_context(sweep, "train it with the best lr", gpt)
    assert router.numbers_in(ctx) == {0.0003}


def test_a_refusal_reaches_its_verb_across_need_to():
    from scratchlab.agent.extract import stated_flag
    from scratchlab.agent.router import says_no_wait

    text = "resume sweep-4 with 15 extra minutes, no need to wait around"
    assert says_no_wait(text) and not stated_flag("wait", text)
    assert says_no_wait("you don't have to wait for it") and not stated_flag("wait", "don't have to wait")
    assert stated_flag("wait", "I need to wait for it") and not says_no_wait("i need to wait for it")
    assert not says_no_wait("no wait, make it 3 layers")  # a correction, not a background run


def test_a_flag_is_said_by_the_words_its_description_gives_true():
    from scratchlab.agent.extract import stated_flag
    from scratchlab.tools.sandbox import RunPythonArgs

    described = RunPythonArgs.model_json_schema()["properties"]["session"]["description"]
    assert stated_flag("session", "fire up a persistent python interpreter for me", described)
    assert stated_flag("session", "keep a persistent interpreter going", described)
    assert not stated_flag("session", "no persistent interpreter, just run it once", described)
    assert not stated_flag("session", "print the interpreter version", described)
