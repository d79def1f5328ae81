"""Workspace, atomic writes, registry, datasets, weights assembly."""

from __future__ import annotations

import hashlib
import os
import re
import types

import pytest

from scratchlab import datasets
from scratchlab.lab.atomic import atomic_dir, atomic_files, atomic_path, atomic_write_json, atomic_write_text
from scratchlab.lab.registry import ArtifactNotFound, LabDatabaseError, NameTaken, Registry
from scratchlab.lab.workspace import get_workspace
from scratchlab.models import weights


def test_workspace_from_env_and_arg(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHLAB_HOME", str(tmp_path / "env"))
    assert get_workspace().root == (tmp_path / "env").resolve()
    ws = get_workspace(tmp_path / "arg")
    assert ws.root == (tmp_path / "arg").resolve()
    assert ws.dir("runs").is_dir() and ws.db_path.name == "lab.db"
    with pytest.raises(ValueError, match="unknown workspace folder"):
        ws.dir("secrets")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind
    atomic_write_json(p, {"b": 1, "a": 2})
    assert p.read_text().startswith('{\n  "a": 2')
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask  # usual permissions, not mkstemp's 0600


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.bin").write_bytes(b"half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary copy
    with atomic_dir(out) as tmp:
        (tmp / "a.bin").write_bytes(b"1")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("2")
    assert sorted(p.name for p in out.rglob("*")) == ["a.bin", "b.txt", "sub"]
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask  # usual permissions, not mkdtemp's 0700
    with pytest.raises(OSError), atomic_dir(out) as tmp:  # a full folder is never replaced
        (tmp / "c").write_text("3")
    assert (out / "a.bin").read_bytes() == b"1" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_atomic_files_replace_each_file_and_keep_the_others(tmp_path):
    (tmp_path / "keep.pt").write_text("state")
    (tmp_path / "w.bin").write_text("old")
    with atomic_files(tmp_path) as tmp:
        (tmp / "w.bin").write_text("new")
        (tmp / "cfg.json").write_text("{}")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "keep.pt": "state",
        "w.bin": "new",
        "cfg.json": "{}",
    }
    with pytest.raises(RuntimeError), atomic_files(tmp_path) as tmp:
        (tmp / "w.bin").write_text("torn")
        raise RuntimeError("crash")
    assert (tmp_path / "w.bin").read_text() == "new" and len(list(tmp_path.iterdir())) == 3


def test_registry_artifacts(registry):
    a = registry.add_artifact("tokenizer", "bpe512", "/p", config={"vocab_size": 512}, metrics={"ratio": 3.1})
    assert a.id.startswith("tokenizer-")
    b = registry.add_artifact("tokenizer", "bpe1k", "/q")
    assert registry.get_artifact("last", kind="tokenizer").name == "bpe1k"
    assert registry.get_artifact("bpe512").config == {"vocab_size": 512}
    assert registry.get_artifact(b.id).name == "bpe1k"
    assert registry.get_artifact(f"bpe1k ({b.id})").id == b.id  # the "name (id)" form results show
    assert registry.get_artifact(f"bpe1k ({b.id}) on shakespeare").id == b.id  # copied with what follows it
    with pytest.raises(NameTaken, match=rf"tokenizer named 'bpe512' already exists \({a.id}\)"):
        registry.add_artifact("tokenizer", "bpe512", "/p2")  # names are identities: never replaced
    assert registry.get_artifact("bpe512").path == "/p"
    assert registry.add_artifact("run", "bpe512", "/r").kind == "run"  # names are unique per kind
    registry.update_artifact("bpe512", metrics={"x": 1.0})
    assert registry.get_artifact("bpe512").metrics == {"x": 1.0}
    with pytest.raises(ArtifactNotFound, match="bpe1k"):
        registry.get_artifact("nope", kind="tokenizer")
    registry.remove_artifact("bpe1k")
    assert [x.name for x in registry.list_artifacts("tokenizer")] == ["bpe512"]


def test_registry_jobs_and_metrics(registry):
    job = registry.create_job("gpt", {"max_iters": 10}, total=10)
    assert job.status == "queued" and job.id.startswith("job-")
    job = registry.update_job(job.id, status="running", step=3, message="step 3")
    assert job.started_at is not None and job.step == 3
    with pytest.raises(ValueError, match="invalid job status"):
        registry.update_job(job.id, status="exploded")
    registry.update_job(job.id, status="done")
    assert registry.get_job(job.id).ended_at is not None
    registry.log_metrics("run-1", 0, train_loss=4.0, val_loss=4.1)
    registry.log_metrics("run-1", 10, train_loss=2.0)
    assert registry.metrics("run-1", "train_loss") == [(0, "train_loss", 4.0), (10, "train_loss", 2.0)]


def test_corrupt_database_gives_repair_advice(tmp_path):
    ws = get_workspace(tmp_path / "ws")
    ws.db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(
        LabDatabaseError, match="is damaged .*integrity_check: file is not a database.*Move it"
    ) as e:
        Registry.from_workspace(ws)
    assert str(ws.db_path) in str(e.value)
    assert ws.db_path.read_bytes().startswith(b"this is not sqlite")  # nothing lost


def _filled_db(ws) -> None:
    reg = Registry.from_workspace(ws)
    for i in range(200):
        reg.add_artifact("file", f"f{i}", "x" * 500)
    reg.engine.dispose()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("database or disk is full", r"no space left on .* MB free.*free some MB and try again"),
        ("disk I/O error", r"could not be used \(disk I/O error\).*intact \(PRAGMA integrity_check: ok\)"),
        ("database is locked", r"locked by another process"),
    ],
)
def test_an_intact_database_is_never_called_corrupt(tmp_path, error, expected):
    """Issue 16 problem 5: a full disk made `tokenizer list` advise `mv lab.db lab.db.bad`."""
    import sqlite3

    from scratchlab.lab.dbcheck import describe_db_error

    ws = get_workspace(tmp_path / "ws")
    _filled_db(ws)
    msg = describe_db_error(ws.db_path, sqlite3.OperationalError(error))
    assert re.search(expected, msg), msg
    assert "mv " not in msg and "damaged" not in msg


def test_a_damaged_page_is_called_damaged(tmp_path):
    ws = get_workspace(tmp_path / "ws")
    _filled_db(ws)
    data = bytearray(ws.db_path.read_bytes())
    data[4096 * 3 : 4096 * 3 + 200] = b"\xff" * 200  # scribble over a b-tree page, keep the header
    ws.db_path.write_bytes(bytes(data))
    from scratchlab.lab.dbcheck import integrity_check

    ok, found = integrity_check(ws.db_path)
    assert ok is False and found != "ok"


def test_shakespeare_corpus_is_deterministic():
    files = datasets.shakespeare_files()
    assert files == sorted(files, key=lambda p: p.name) and all(p.name.endswith("_gut.txt") for p in files)
    text = datasets.load_text("shakespeare")
    assert len(text) > 4_000_000 and "\r\n" not in text
    assert datasets.corpus_sha256() == hashlib.sha256(text.encode()).hexdigest()


def test_datasets_folder_and_errors(tmp_path):
    (tmp_path / "b.txt").write_text("beta")
    (tmp_path / "a.md").write_text("alpha")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.txt").write_text("secret")
    assert datasets.load_text(tmp_path) == "alpha\n\nbeta"
    with pytest.raises(datasets.DatasetError, match="unknown dataset"):
        datasets.load_text(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(datasets.DatasetError, match="no text files"):
        datasets.load_text(tmp_path / "empty")


def _fake_parts(monkeypatch, tmp_path, chunks):
    mods = []
    for i, data in enumerate(chunks):
        p = tmp_path / f"part{i}"
        p.write_bytes(data)
        name = f"fake_part_mod_{i}"
        monkeypatch.setitem(
            __import__("sys").modules, name, types.SimpleNamespace(get_part_path=lambda p=p: str(p))
        )
        mods.append(name)
    return tuple(mods)


def test_gguf_assembly_and_checksum(tmp_path, monkeypatch):
    chunks = [b"abc" * 1000, b"def" * 1000]
    good = hashlib.sha256(b"".join(chunks)).hexdigest()
    mods = _fake_parts(monkeypatch, tmp_path, chunks)
    monkeypatch.setitem(weights.SPECS, "tiny", weights.GGUFSpec("tiny", "tiny.gguf", mods, good, "tiny"))
    out = weights.gguf_path("tiny", tmp_path / "cache")
    assert out.read_bytes() == b"".join(chunks)
    mtime = os.stat(out).st_mtime_ns
    assert (
        weights.gguf_path("tiny", tmp_path / "cache") == out and os.stat(out).st_mtime_ns == mtime
    )  # cached

    monkeypatch.setitem(
        weights.SPECS, "bad", weights.GGUFSpec("bad", "bad.gguf", mods, "0" * 64, "bad model")
    )
    with pytest.raises(weights.WeightsError, match="make install"):
        weights.gguf_path("bad", tmp_path / "cache")
    assert not (tmp_path / "cache" / "bad.gguf").exists()  # the corrupt file is not left behind
    with pytest.raises(ValueError, match="unknown local model"):
        weights.gguf_path("7b", tmp_path)


def test_a_write_that_finds_the_database_full_raises_the_diagnosis(registry):
    """SQLITE_FULL mid-command (here from a page cap, as on a full disk) becomes LabDatabaseError."""
    from sqlalchemy import event

    @event.listens_for(registry.engine, "connect")
    def cap(dbapi_conn, _record):
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

    registry.engine.dispose()
    with pytest.raises(LabDatabaseError, match="could not be written: no space left on .*the file is intact"):
        for i in range(1000):
            registry.add_artifact("file", f"f{i}", "x" * 2000)
