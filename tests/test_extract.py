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
