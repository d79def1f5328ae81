"""Explicit argument values in requests ("8 heads", "block size of 128") and independent steps."""

from __future__ import annotations

import pytest

from scratchlab.agent.extract import explicit_args
from scratchlab.agent.router import independent_steps, normalise_request, parallel_batch

GPT = {"properties": {k: {"type": "integer"} for k in ("n_layer", "n_head", "n_embd", "block_size", "max_iters")}
       | {"lr": {"type": "number"}, "dropout": {"anyOf": [{"type": "number"}, {"type": "null"}]}}}  # fmt: skip
SAMPLE = {"properties": {"max_new_tokens": {"type": "integer"}, "temperature": {"type": "number"},
                         "top_k": {"type": "integer"}, "top_p": {"type": "number"}}}  # fmt: skip
ABLATE = {"properties": {"switches": {"type": "array"}, "max_iters": {"type": "integer"}}}
TOKENIZER = {"properties": {"vocab_size": {"type": "integer"}}}
TOKENIZER_FULL = {"properties": {"vocab_size": {"type": "integer"}, "name": {"type": "string"},
                                 "special_tokens": {"type": "array"}, "pattern": {"type": "string"}}}  # fmt: skip


@pytest.mark.parametrize(
    "text, schema, expected",
    [
        ("kick off a GPT run with 8 heads, embedding size 256 and a block size of 128", GPT,
         {"n_head": 8, "n_embd": 256, "block_size": 128}),
        ("gpt L=2 H=2 d=64 it=500", GPT, {"n_layer": 2, "n_head": 2, "n_embd": 64, "max_iters": 500}),
        ("6L 6H 384d gpt, 5k iters, lr 6e-4", GPT,
         {"n_layer": 6, "n_head": 6, "n_embd": 384, "max_iters": 5000, "lr": 6e-4}),
        ("train a GPT with dropout 0.2 and 5 layers", GPT, {"n_layer": 5, "dropout": 0.2}),
        ("sample 200 toks temp 0.9 top-k 40", SAMPLE, {"max_new_tokens": 200, "temperature": 0.9, "top_k": 40}),
        ("ablate relu + no_layernorm, 300 its", ABLATE, {"switches": ["no_layernorm", "relu"], "max_iters": 300}),
        ("how do rope positions compare to the baseline in an ablation", ABLATE, {"switches": ["rope"]}),
        ("an ablation with a single attention head and an MLP ratio of 2", ABLATE,
         {"switches": ["n_head=1", "mlp_ratio=2"]}),
        ("bpe 1k vocab shakespeare", TOKENIZER, {"vocab_size": 1000}),
        ("train a 256-token tokenizer", TOKENIZER, {"vocab_size": 256}),
        ("train a GPT on shakespeare", GPT, {}),  # nothing stated: nothing set
        ("one run with 2 layers and one with 4 layers", GPT, {}),  # two values: ambiguous, left to the model
        ("set it to 2000 and go", GPT, {}),  # "it" without "=" is a pronoun, not iterations
        ("gpt 6L 6H 192d bs32 5k it", GPT | {"properties": GPT["properties"] | {"batch_size": {"type": "integer"}}},
         {"n_layer": 6, "n_head": 6, "n_embd": 192, "batch_size": 32, "max_iters": 5000}),
        ("compare rope and no positional embeddings, 800 steps", ABLATE, {"switches": ["rope", "no_pos_emb"], "max_iters": 800}),
        ("use rope instead of learned positions", ABLATE, {"switches": ["rope"]}),
        ("does dropping the layer norms hurt? and a 2-layer version?", ABLATE | {"properties": ABLATE["properties"] | {"n_layer": {"type": "integer"}}},
         {"switches": ["no_layernorm", "n_layer=2"]}),  # the variant's size, not the baseline's
        ("show my three most recent runs", {"properties": {"limit": {"type": "integer"}}}, {"limit": 3}),
        ("vocab 1536, add <|endoftext|> as a special token, and call it haiku-bpe", TOKENIZER_FULL,
         {"vocab_size": 1536, "special_tokens": ["<|endoftext|>"], "name": "haiku-bpe"}),
        ("bpe 3k on notes.txt, gpt2 pattern", TOKENIZER_FULL, {"vocab_size": 3000, "pattern": "gpt2"}),
        ("a tokenizer named after my cat", TOKENIZER_FULL, {}),  # "after" is not a name
        ("train it in the background", {"properties": {"wait": {"type": "boolean"}}}, {"wait": False}),
        ("a tokenizer without any regex pre-splitting, vocab 600", TOKENIZER_FULL, {"vocab_size": 600, "pattern": "none"}),
        ("an ablation removing layernorm and residual connections", ABLATE, {"switches": ["no_layernorm", "no_residual"]}),
        ("gpt 64 embd", GPT, {"n_embd": 64}),
    ],
)  # fmt: skip
def test_explicit_args(text, schema, expected):
    got = explicit_args(normalise_request(text), schema)
    assert {k: sorted(v) if isinstance(v, list) else v for k, v in got.items()} == {
        k: sorted(v) if isinstance(v, list) else v for k, v in expected.items()
    }
    assert all(isinstance(got[k], int) for k in got if schema["properties"][k].get("type") == "integer")


def test_only_the_tools_own_arguments_are_set():
    assert explicit_args("sample 200 tokens with 4 layers", SAMPLE) == {"max_new_tokens": 200}


@pytest.mark.parametrize(
    "text, steps",
    [
        ("train a 256-token tokenizer on shakespeare and also list my runs",
         ["train a 256-token tokenizer on shakespeare", "list my runs"]),
        ("list my runs and show my tokenizers", ["list my runs", "show my tokenizers"]),
        ("index ../shared/seeds as seeds and then search it for 'KV cache'", []),  # ordered, refers back
        ("train a tokenizer, then a GPT", []),  # "then": ordered
        ("train a tokenizer and encode 'hi' with it", []),  # "it" refers back
        ("train a GPT on shakespeare", []),  # one step
    ],
)  # fmt: skip
def test_independent_steps(text, steps):
    assert independent_steps(text) == steps


def test_parallel_batch_keeps_at_most_one_writer():
    calls = [
        ("train_tokenizer", {"vocab_size": 256}),
        ("list_runs", {}),
        ("train_gpt", {}),
        ("list_artifacts", {}),
    ]
    assert parallel_batch(calls) == calls[:2]
    assert parallel_batch([("list_runs", {}), ("list_runs", {})]) == [("list_runs", {})]  # no duplicate call


def test_glued_lora_shorthand():
    schema = {"properties": {"r": {"type": "integer"}, "lora_alpha": {"type": "number"}}}
    assert explicit_args("lora r16 alpha32 data/chat.jsonl", schema) == {"r": 16, "lora_alpha": 32.0}


@pytest.mark.parametrize(
    "text, path",
    [
        ("first index docs/, then search it for 'warmup'", "docs/"),
        ("index ~/notes/papers and name it papers", "~/notes/papers"),
        ("fine-tune on data/qa.jsonl for 10 steps", "data/qa.jsonl"),
        ("train a tokenizer on notes.txt.", "notes.txt"),
        ("plot the train/val loss", None),  # not a path
        ("compare a.txt and b.txt", None),  # two paths: which one is the model's call
        ("index https://example.com/docs", None),
    ],
)
def test_stated_path(text, path):
    from scratchlab.agent.extract import stated_path

    assert stated_path(text) == path


@pytest.mark.parametrize(
    "text, prompt",
    [
        (
            "ask the sql-helper adapter how to select the five most expensive products",
            "how to select the five most expensive products",
        ),
        ("let's hear what the model comes up with if I feed it 'In a land far away'", "In a land far away"),
        ("generate with the adapter: What is the capital of France?", "What is the capital of France?"),
        ("sample run-1 t=1.2 n=400 seed 7", None),
        ("compare 'a b' with 'c d'", None),  # two quoted texts: not one prompt
        ("sample 200 tokens from the last run", None),
    ],
)
def test_stated_prompt(text, prompt):
    from scratchlab.agent.extract import stated_prompt

    assert stated_prompt(text) == prompt


def test_sample_shorthand_t_and_n():
    schema = {
        "properties": {
            "max_new_tokens": {"type": "integer"},
            "temperature": {"type": "number"},
            "seed": {"type": "integer"},
        }
    }
    assert explicit_args("sample run-1 t=1.2 n=400 seed 7", schema) == {
        "temperature": 1.2,
        "max_new_tokens": 400,
        "seed": 7,
    }


def test_stated_values_fill_path_and_prompt_over_the_model():
    from scratchlab.agent.extract import stated_values

    index = {"properties": {"path": {"type": "string"}, "name": {"type": "string"}}}
    assert stated_values({"name": "docs"}, "first index docs/", index, {}) == {
        "name": "docs",
        "path": "docs/",
    }
    gen = {"properties": {"prompt": {"type": "string"}, "adapter": {"type": "string"}}}
    got = stated_values({"prompt": "SELECT * FROM t"}, "ask the sql adapter how to select rows", gen, {})
    assert got["prompt"] == "how to select rows"  # the question, not the model's answer to it
    sample = {"properties": {"prompt": {"type": "string"}, "run": {"type": "string"}}}
    assert "prompt" not in stated_values(
        {}, "sample from 'shakes-4l'", sample, {"run": ["shakes-4l"]}
    )  # a name
