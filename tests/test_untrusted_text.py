"""Untrusted text is printed as text: no rich markup, control characters escaped, in every listing.

Issue 16, problem 4: a run named `ablation [/no-pos]`, or asking "what does [/INST] mean?", made
`gpt list`, `artifacts`, `threads` and the REPL's `/artifacts` die with a MarkupError for the whole
workspace, and ESC sequences in names were printed raw.
"""

from __future__ import annotations

import io
import types

import pytest
from rich.console import Console
from typer.testing import CliRunner

from scratchlab.cli import common
from scratchlab.cli.main import app

# (hostile text, how it must appear)
HOSTILE = [
    ("ablation [/no-pos]", "ablation [/no-pos]"),
    ("[bold]x[/bold] y", "[bold]x[/bold] y"),
    ("what does [/INST] mean?", "what does [/INST] mean?"),
    ("[link=https://evil.example]click[/link]", "[link=https://evil.example]click[/link]"),
    ("dead :skull: code", "dead :skull: code"),
    ("red \x1b[31mtext\x1b[0m", "red \\x1b[31mtext\\x1b[0m"),
    ("clear \x1b[2J\x1b[H screen", "clear \\x1b[2J\\x1b[H screen"),
    ("two\nlines\rback", "two\\nlines\\rback"),
    ("bell\x07 del\x7f csi\x9b", "bell\\x07 del\\x7f csi\\x9b"),
    ("rtl \u202etxt.exe", "rtl \\u202etxt.exe"),
]


def _seed_artifact(kind: str, config: dict | None = None):
    def seed(ws, reg, text):
        reg.add_artifact(kind, text, f"/p/{text}", config=config or {})

    return seed


def _seed_thread(ws, reg, text):
    reg.touch_thread("t-1", title=text)


def _seed_memory(ws, reg, text):
    from scratchlab.agent import memory

    _, store, _ = memory.open_memory(ws.db_path)
    memory.add_memory(store, text)


def _seed_job(ws, reg, text):
    job = reg.create_job("gpt")
    reg.update_job(job.id, status="failed", error=text)


LISTINGS = {
    "artifacts": (["artifacts"], _seed_artifact("run")),
    "gpt list": (["gpt", "list"], _seed_artifact("run", {"n_layer": 1, "dataset": "d"})),
    "tokenizer list": (["tokenizer", "list"], _seed_artifact("tokenizer", {"vocab_size": 300})),
    "rag list": (["rag", "list"], _seed_artifact("index")),
    "lora list": (["lora", "list"], _seed_artifact("adapter", {"status": "failed"})),
    "threads": (["threads"], _seed_thread),
    "memory": (["memory"], _seed_memory),
    "jobs list": (["jobs", "list"], _seed_job),
}


@pytest.fixture
def wide(monkeypatch):
    """A console wide enough that no cell wraps (the assertion looks for the whole name)."""
    monkeypatch.setattr(common.console, "width", 400)
    monkeypatch.setattr(common.err_console, "width", 400)


@pytest.mark.parametrize(("hostile", "shown"), HOSTILE, ids=[repr(h)[1:20] for h, _ in HOSTILE])
@pytest.mark.parametrize("listing", list(LISTINGS))
def test_cli_listings_print_hostile_names_as_text(workspace, registry, wide, listing, hostile, shown):
    argv, seed = LISTINGS[listing]
    seed(workspace, registry, hostile)
    result = CliRunner().invoke(app, ["--home", str(workspace.root), *argv])
    assert result.exit_code == 0, result.output
    assert shown in result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output


@pytest.mark.parametrize(("hostile", "shown"), HOSTILE, ids=[repr(h)[1:20] for h, _ in HOSTILE])
def test_repl_listings_print_hostile_names_as_text(workspace, registry, hostile, shown):
    from scratchlab.agent import memory
    from scratchlab.agent.repl import Repl

    _, store, _ = memory.open_memory(workspace.db_path)
    for seed in (_seed_artifact("run"), _seed_thread, _seed_job):
        seed(workspace, registry, hostile)
    memory.add_memory(store, hostile)
    repl = Repl.__new__(Repl)  # the listing commands need only a console and the lab's registry/store
    out = io.StringIO()
    repl.console = Console(file=out, width=400)
    repl.lab = types.SimpleNamespace(registry=registry, store=store)
    repl.thread = "t-1"
    for cmd in ("/artifacts", "/threads", "/memory", "/jobs"):
        out.seek(0)
        out.truncate()
        assert repl.command(cmd) is True
        assert shown in out.getvalue(), cmd
        assert "\x1b" not in out.getvalue()


def test_escape_controls_keeps_ordinary_text():
    text = "naïve café — 東京 🙂 tab-free"
    assert common.escape_controls(text) == text
    assert common.escape_controls("a\nb", keep_newlines=True) == "a\nb"
    assert common.escape_controls("a\tb\x00") == "a\\tb\\x00"


def test_sandbox_run_lists_files_named_by_the_code_as_text(workspace, wide):
    from scratchlab.sandbox.policy import probe

    if probe() is not None:
        pytest.skip("bubblewrap unusable here")
    code = "open('[bold]x[link=y] \\x1b[31mred', 'w').write('hi')"  # no "/" in a file name
    r = CliRunner().invoke(app, ["--home", str(workspace.root), "sandbox", "run", "-c", code])
    assert r.exit_code == 0, r.output
    assert "[bold]x[link=y] \\x1b[31mred" in r.output and "\x1b" not in r.output


def test_rag_search_prints_hostile_file_names_and_text(workspace, wide, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "[bold]notes [INST].md").write_text(
        "QLoRA fine-tunes a [bold]quantized[/bold] model with adapters.\n"
    )
    runner = CliRunner()
    r = runner.invoke(app, ["--home", str(workspace.root), "rag", "index", str(docs), "--name", "hostile"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["--home", str(workspace.root), "rag", "search", "what is QLoRA", "--name", "hostile"]
    )
    assert r.exit_code == 0, r.output
    assert "[bold]notes [INST].md" in r.output and "[bold]quantized[/bold]" in r.output
