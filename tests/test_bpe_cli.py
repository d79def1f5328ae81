"""`scratchlab tokenizer ...` commands, run through typer's CliRunner on the sub-app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scratchlab.cli import common
from scratchlab.cli.tokenizer import app

TEXT = "She sells sea shells by the sea shore; the shells she sells are sea shells for sure.\n" * 40


@pytest.fixture
def run(workspace, tmp_path):
    common.set_home(str(workspace.root))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    yield invoke
    common.set_home(None)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "shells.txt"
    path.write_text(TEXT)
    return path


def test_train_json_then_use(run, corpus):
    res = run("train", "--input", str(corpus), "--vocab-size", "280", "--name", "shells",
              "--special", "<|endoftext|>", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["name"] == "shells" and out["vocab_size"] == 280 and out["num_merges"] == 23
    assert out["compression_ratio"] > 1.5 and out["seconds"] >= 0
    from scratchlab.models.bpe import Tokenizer

    tok = Tokenizer.load(out["path"])
    res = run("encode", "--name", "shells", "--json", "she sells<|endoftext|>")
    assert res.exit_code == 0, res.output
    enc = json.loads(res.stdout)
    assert enc["ids"] == tok.encode("she sells<|endoftext|>", allowed_special="all") and enc["ids"][-1] == 279
    res = run("decode", "--name", "shells", *map(str, enc["ids"]))
    assert res.exit_code == 0 and res.stdout.strip() == "she sells<|endoftext|>"
    res = run("inspect", "--name", "shells", "--merges", "3", "--token", "270", "--json")
    info = json.loads(res.stdout)
    assert [m["id"] for m in info["first_merges"]] == [256, 257, 258] and info["token"]["id"] == 270
    res = run("list")
    assert res.exit_code == 0 and "shells" in res.stdout


def test_train_progress_bar_and_compare(run, corpus):
    res = run("train", "--input", str(corpus), "--vocab-size", "270", "--pattern", "gpt2")
    assert res.exit_code == 0, res.output
    assert "bpe270-shells" in res.stdout and "merges/s" in res.stdout
    res = run("compare", "--name", "last", "--input", str(corpus), "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    names = [r["name"] for r in rep["rows"]]
    assert names[0].startswith("bpe270-shells") and "cl100k_base" in names and "gpt2" in names
    assert rep["sample"]["splits"]["cl100k_base"]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("train", "--input", "nope/missing.txt"), "unknown dataset"),
        (("train", "--vocab-size", "100"), "too small"),
        (("encode", "--name", "ghost", "hi"), "no tokenizer artifact"),
        (("decode", "--name", "cl100k_base", "999999999"), "invalid token id"),
    ],
)
def test_cli_errors_exit_2(run, args, match):
    res = run(*args)
    assert res.exit_code == 2
    assert match in " ".join(res.output.split())
