"""Names are identities: a taken name is refused for every artifact kind, never silently replaced.

Issue 16, problem 3: training tokenizer `tk` twice reused the id and overwrote the files a GPT was
built on; the tokenized-dataset cache was keyed on the tokenizer's path; six same-name trains at
once left three registry rows that disagreed with the files.
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading

import pytest

from scratchlab.lab.create import new_artifact_folder
from scratchlab.lab.registry import NameTaken, Registry
from scratchlab.lab.workspace import get_workspace

TEXT = "the quick brown fox jumps over the lazy dog. " * 40


def _train(tool_ctx, **kw) -> str:
    from scratchlab.tools.tokenizer import make_tools

    tools = {t.name: t for t in make_tools(tool_ctx)}
    return tools["train_tokenizer"].invoke(kw)


def test_tokenizer_name_is_refused_and_old_files_kept(tool_ctx, tmp_path):
    data = tmp_path / "d.txt"
    data.write_text(TEXT)
    first = _train(tool_ctx, dataset=str(data), vocab_size=300, name="tk")
    assert first.startswith("Trained tokenizer"), first
    model = tool_ctx.workspace.dir("tokenizers") / "tk" / "tokenizer.model"
    before = model.read_bytes()
    again = _train(tool_ctx, dataset=str(data), vocab_size=280, name="tk")
    assert again.startswith("Error: a tokenizer named 'tk' already exists (tokenizer-1)"), again
    assert model.read_bytes() == before
    assert [a.name for a in tool_ctx.registry.list_artifacts("tokenizer")] == ["tk"]


def test_default_names_pick_a_free_one(tool_ctx, tmp_path):
    from scratchlab.tools.rag import make_tools

    data = tmp_path / "d.txt"
    data.write_text(TEXT)
    assert "'bpe300-d'" in _train(tool_ctx, dataset=str(data), vocab_size=300)
    assert "'bpe300-d-2'" in _train(tool_ctx, dataset=str(data), vocab_size=300)  # no name given: a new one
    assert [a.name for a in tool_ctx.registry.list_artifacts("tokenizer")] == ["bpe300-d-2", "bpe300-d"]
    tools = {t.name: t for t in make_tools(tool_ctx)}
    for parent in ("x", "y"):
        (tmp_path / parent / "docs").mkdir(parents=True)
        (tmp_path / parent / "docs" / "a.md").write_text(f"{parent}: adapters are small.\n")
        assert "Error" not in tools["index_documents"].invoke({"path": str(tmp_path / parent / "docs")})
    assert sorted(a.name for a in tool_ctx.registry.list_artifacts("index")) == ["docs", "docs-2"]


def test_new_artifact_folder_never_overwrites_an_unregistered_folder(registry, tmp_path):
    folder = tmp_path / "tk"
    folder.mkdir()
    (folder / "old.txt").write_text("keep me")
    with (
        pytest.raises(NameTaken, match="its folder .* exists"),
        new_artifact_folder(registry, "tokenizer", "tk", folder),
    ):
        pytest.fail("the block must not run")
    assert (folder / "old.txt").read_text() == "keep me"


def test_failed_build_leaves_no_folder_and_no_row(registry, tmp_path):
    folder = tmp_path / "tk"
    with pytest.raises(RuntimeError, match="boom"), new_artifact_folder(registry, "tokenizer", "tk", folder):
        (folder / "half").write_text("x")
        raise RuntimeError("boom")
    assert not folder.exists() and registry.find_artifact("tk", "tokenizer") is None


def _create_in_process(home: str, folder: str, results) -> None:
    reg = Registry.from_workspace(get_workspace(home))
    try:
        with new_artifact_folder(reg, "tokenizer", "tk", folder):
            (get_workspace(home).root / "tokenizers" / "tk" / "owner").write_text(
                str(mp.current_process().pid)
            )
            art = reg.add_artifact("tokenizer", "tk", folder, config={"pid": mp.current_process().pid})
        results.put(("won", art.config["pid"]))
    except NameTaken:
        results.put(("lost", None))


def test_concurrent_creation_has_exactly_one_winner_across_processes(workspace):
    folder = workspace.dir("tokenizers") / "tk"
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_create_in_process, args=(str(workspace.root), str(folder), results))
        for _ in range(6)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    winners = [pid for what, pid in outcomes if what == "won"]
    assert len(winners) == 1 and len(outcomes) == 6
    reg = Registry.from_workspace(workspace)
    rows = reg.list_artifacts("tokenizer")
    assert len(rows) == 1 and rows[0].config["pid"] == winners[0]
    assert (folder / "owner").read_text() == str(winners[0])  # the row and the files agree


def _train_in_process(home: str, data: str, vocab_size: int, results) -> None:
    from scratchlab.tools.base import ToolContext

    ctx = ToolContext(workspace=get_workspace(home), registry=Registry.from_workspace(get_workspace(home)))
    results.put((vocab_size, _train(ctx, dataset=data, vocab_size=vocab_size, name="tk")))


def test_six_same_name_tokenizer_trains_at_once_leave_one_consistent_artifact(workspace, tmp_path):
    """The issue's probe: six `train tokenizer tk` at once left three rows that disagreed with the file."""
    from scratchlab.models.bpe import Tokenizer

    data = tmp_path / "d.txt"
    data.write_text(TEXT)
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_train_in_process, args=(str(workspace.root), str(data), 300 + i, results))
             for i in range(6)]  # fmt: skip
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    won = [v for v, out in outcomes.items() if out.startswith("Trained tokenizer")]
    lost = [
        out for out in outcomes.values() if out.startswith("Error: a tokenizer named 'tk' already exists")
    ]
    assert len(won) == 1 and len(lost) == 5, outcomes
    rows = Registry.from_workspace(workspace).list_artifacts("tokenizer")
    assert [(r.name, r.config["requested_vocab_size"]) for r in rows] == [("tk", won[0])]
    assert Tokenizer.load(rows[0].path).vocab_size == rows[0].config["vocab_size"]  # row and file agree


def test_index_name_of_other_sources_is_refused_same_sources_refresh(tool_ctx, tmp_path):
    from scratchlab.tools.rag import make_tools

    tools = {t.name: t for t in make_tools(tool_ctx)}
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "doc.md").write_text(f"Notes about {folder}: LoRA adds low-rank adapters.\n")
    assert "Error" not in tools["index_documents"].invoke({"path": str(tmp_path / "a"), "name": "notes"})
    other = tools["index_documents"].invoke({"path": str(tmp_path / "b"), "name": "notes"})
    assert other.startswith("Error: an index named 'notes' already exists (index-1, built from"), other
    again = tools["index_documents"].invoke({"path": str(tmp_path / "a"), "name": "notes"})
    assert "Error" not in again and "1 unchanged" in again
    assert [a.id for a in tool_ctx.registry.list_artifacts("index")] == ["index-1"]


def test_concurrent_add_artifact_has_exactly_one_winner_across_threads(registry):
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def add() -> None:
        barrier.wait()
        try:
            registry.add_artifact("run", "same", "")
            outcomes.append("won")
        except NameTaken:
            outcomes.append("lost")

    threads = [threading.Thread(target=add) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert len(registry.list_artifacts("run")) == 1


def test_old_database_with_duplicate_names_gets_the_unique_index(workspace):
    reg = Registry.from_workspace(workspace)
    reg.setup()
    conn = sqlite3.connect(workspace.db_path)
    conn.execute("DROP INDEX uq_sl_artifacts_kind_name")
    for pk in (1, 2):
        conn.execute(
            "INSERT INTO sl_artifacts (pk, id, kind, name, path, config, metrics, created_at, updated_at) "
            "VALUES (?, ?, 'tokenizer', 'tk', '', '{}', '{}', '2026-01-01', '2026-01-01')",
            (pk, f"tokenizer-{pk}"),
        )
    conn.commit()
    conn.close()
    reg = Registry.from_workspace(workspace)
    assert reg.get_artifact("tk", kind="tokenizer").id == "tokenizer-2"  # the newest keeps the name
    assert reg.get_artifact("tk~tokenizer-1", kind="tokenizer").id == "tokenizer-1"
    with pytest.raises(NameTaken):
        reg.add_artifact("tokenizer", "tk", "")


def test_dataset_cache_is_keyed_by_tokenizer_content(tmp_path):
    from scratchlab.models.bpe import train_tokenizer
    from scratchlab.training.data import dataset_key, ensure_dataset, load_tokenizer

    data = tmp_path / "d.txt"
    data.write_text(TEXT)
    tok_dir = tmp_path / "tk"
    train_tokenizer(TEXT, 300).save(tok_dir)
    first = ensure_dataset(str(data), str(tok_dir), tmp_path / "datasets")
    key = dataset_key(str(data), str(tok_dir))
    train_tokenizer(TEXT, 270).save(tok_dir)  # the same path, other content
    assert dataset_key(str(data), str(tok_dir)) != key
    second = ensure_dataset(str(data), str(tok_dir), tmp_path / "datasets")
    assert second.vocab_size == 270 != first.vocab_size
    assert int(second.load_split("train").max()) < load_tokenizer(str(tok_dir)).vocab_size


def test_gpt_train_under_a_taken_run_name_is_refused_before_any_work(workspace, registry):
    from typer.testing import CliRunner

    from scratchlab.cli.main import app

    registry.add_artifact("run", "shakes-4l", "")
    r = CliRunner().invoke(
        app, ["--home", str(workspace.root), "gpt", "train", "--name", "shakes-4l", "--max-iters", "5"]
    )
    assert r.exit_code == 2
    assert "a run named 'shakes-4l' already exists" in " ".join(r.output.split())
    assert registry.list_jobs() == [] and len(registry.list_artifacts("run")) == 1
