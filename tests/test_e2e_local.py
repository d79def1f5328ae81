"""End to end with real local GGUF models: `scratchlab ask` and the REPL driven through tmux."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from tmux_pane import Pane

pytestmark = [pytest.mark.model, pytest.mark.slow]


def scratchlab(home, *args, timeout=600):
    env = {**os.environ, "SCRATCHLAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "scratchlab", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory, local_models):
    folder = tmp_path_factory.mktemp("e2e-home")  # one workspace: the model is warmed once
    local_models(folder)
    return folder


def test_ask_json_answers_without_tools(home):
    r = scratchlab(home, "--model", "local:0.5b", "ask", "hi", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"answer", "thread", "tool_calls"}
    assert out["thread"].startswith("t-") and out["tool_calls"] == [] and out["answer"]


def test_ask_dry_run_routes_a_command(home):
    r = scratchlab(home, "--model", "local:0.5b", "ask", "--dry-run", "--json",
                   "train a BPE tokenizer with 300 tokens on shakespeare")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tool_calls"][0]["name"] == "train_tokenizer"
    assert out["tool_calls"][0]["args"].get("vocab_size") == 300
    assert not (home / "tokenizers").exists() or not any((home / "tokenizers").iterdir())  # nothing ran


def test_unknown_model_is_a_clear_error(tmp_path):
    r = scratchlab(tmp_path, "--model", "local:7b", "ask", "hi")
    assert r.returncode == 2 and "unknown model" in r.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_repl_smoke_in_tmux(tmp_path):
    # The pane outlives the REPL (echo + sleep), so its last screen can still be read after /quit.
    pane = Pane(f"SCRATCHLAB_HOME={tmp_path} {sys.executable} -m scratchlab --model local:smollm2; echo exit=$?; "
                "sleep 300", width=160, height=50)  # fmt: skip
    try:
        pane.wait_for("you>", timeout=180)
        pane.type("/tools")
        pane.wait_for("train_tokenizer", timeout=180)
        pane.type("hello there")
        pane.wait_for("you>", count=3, timeout=180)
        pane.type("/quit")
        pane.wait_for("exit=", timeout=180)
        assert "bye" in pane.screen() and "exit=0" in pane.screen(), pane.screen()
    finally:
        pane.close()
