"""Agent tools for the tokenizer, through the `tool_ctx` fixture (a fresh workspace per test)."""

from __future__ import annotations

import re

import pytest

from scratchlab.tools.tokenizer import make_tools

TEXT = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
        "must be in want of a wife. ") * 30  # fmt: skip


@pytest.fixture
def tools(tool_ctx):
    return {t.name: t for t in make_tools(tool_ctx)}


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "austen.txt"
    path.write_text(TEXT)
    return path


def test_tool_names_and_schemas(tools):
    assert set(tools) == {"train_tokenizer", "encode_text", "decode_tokens", "compare_tokenizers"}
    props = tools["train_tokenizer"].args_schema.model_json_schema()["properties"]
    assert all(p.get("description") for p in props.values())


def test_train_encode_decode(tools, tool_ctx, corpus):
    out = tools["train_tokenizer"].invoke(
        {"dataset": str(corpus), "vocab_size": "0.3k", "special_tokens": ["<|endoftext|>"]}
    )
    assert "tokenizer-1" in out and "bpe300-austen" in out and "vocab_size 300" in out
    art = tool_ctx.registry.get_artifact("last", kind="tokenizer")
    assert art.config["vocab_size"] == 300 and art.config["special"] == ["<|endoftext|>"]
    assert art.metrics["num_merges"] == 43 and art.metrics["compression_ratio"] > 1.5
    from scratchlab.models.bpe import Tokenizer

    tok = Tokenizer.load(art.path)
    enc = tools["encode_text"].invoke({"text": "a single man<|endoftext|>"})
    ids = [int(i) for i in re.search(r"ids: \[([^\]]*)\]", enc).group(1).split(", ")]
    assert ids == tok.encode("a single man<|endoftext|>", allowed_special="all")
    assert 299 in ids
    dec = tools["decode_tokens"].invoke({"ids": ids, "tokenizer": "bpe300-austen"})
    assert "'a single man<|endoftext|>'" in dec


def test_a_count_of_merges_sets_the_vocabulary(tools, corpus):
    out = tools["train_tokenizer"].invoke(
        {"dataset": str(corpus), "num_merges": 20, "special_tokens": ["<|x|>"]}
    )
    assert "vocab_size 277" in out and "20 merges" in out  # 256 bytes + 20 merges + 1 special token
    out = tools["train_tokenizer"].invoke({"dataset": str(corpus), "num_merges": 20, "vocab_size": 300})
    assert "vocab_size 300" in out  # a vocabulary the request states wins over a count of merges


def test_default_shakespeare_and_builtin_gpt4(tools):
    out = tools["train_tokenizer"].invoke({"vocab_size": 300, "name": "small"})
    assert "'small'" in out and "shakespeare" in out
    enc = tools["encode_text"].invoke({"text": "hello world", "tokenizer": "gpt4"})
    assert "cl100k_base" in enc and "[15339, 1917]" in enc


def test_compare(tools, corpus):
    tools["train_tokenizer"].invoke({"dataset": str(corpus), "vocab_size": 400})
    out = tools["compare_tokenizers"].invoke({})
    assert "cl100k_base" in out and "o200k_base" in out and "gpt2" in out
    assert "bytes/token" in out
    out = tools["compare_tokenizers"].invoke({"text": "short text for comparing"})
    assert "the given text" in out


@pytest.mark.parametrize(
    ("tool", "args", "match"),
    [
        ("train_tokenizer", {"vocab_size": 100}, "below 256"),
        ("train_tokenizer", {"dataset": "no/such/file.txt"}, "unknown dataset"),
        ("encode_text", {"text": "hi"}, "no tokenizer artifact"),
        ("decode_tokens", {"ids": [1, 10**9], "tokenizer": "gpt4"}, "invalid token id"),
        ("encode_text", {"text": "hi", "tokenizer": "nope"}, "train_tokenizer"),
    ],
)
def test_tool_errors_go_back_as_text(tools, tool, args, match):
    out = tools[tool].invoke(args)
    assert out.startswith("Error:") and match in out


def test_the_split_pattern_is_an_enum_in_the_schema(tools):
    """A value outside the enum never reaches the tool (the agent's grammar uses the same schema)."""
    schema = tools["train_tokenizer"].args_schema.model_json_schema()
    assert schema["properties"]["pattern"]["anyOf"][0]["enum"] == ["gpt4", "gpt2", "none"]
    out = tools["train_tokenizer"].invoke({"vocab_size": 300, "pattern": "GPT-2 style"})
    assert out.startswith("Error: pattern") and "'gpt4', 'gpt2' or 'none'" in out  # nothing was trained
