"""Shared fixtures: every test gets its own workspace (SCRATCHLAB_HOME in a tmp folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scratchlab.lab.registry import Registry
from scratchlab.lab.workspace import get_workspace


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("SCRATCHLAB_HOME", str(home))
    return get_workspace(home)


@pytest.fixture
def registry(workspace):
    reg = Registry.from_workspace(workspace)
    reg.setup()
    return reg


@pytest.fixture
def tool_ctx(workspace, registry):
    from scratchlab.tools.base import ToolContext

    return ToolContext(workspace=workspace, registry=registry, auto_confirm=True)


@pytest.fixture(scope="session", autouse=True)
def openai_cache_dir(tmp_path_factory):
    """Converted OpenAI tokenizers go to one folder per test session (hermetic, built once)."""
    import os

    path = tmp_path_factory.getbasetemp() / "openai-cache"
    old = os.environ.get("SCRATCHLAB_CACHE_DIR")
    os.environ["SCRATCHLAB_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SCRATCHLAB_CACHE_DIR", None)
    else:
        os.environ["SCRATCHLAB_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def local_models(tmp_path_factory):
    """A function that puts the assembled Qwen2.5-Coder-0.5B GGUF (and its stamp) into a workspace's
    `models/` as hard links: the 0.5 GB file is assembled and hashed once per session, not per home."""
    from scratchlab.models.weights import gguf_path

    shared = gguf_path("0.5b", tmp_path_factory.getbasetemp() / "shared-models").parent

    def link(home: Path) -> Path:
        models = Path(home) / "models"
        models.mkdir(parents=True, exist_ok=True)
        for f in shared.iterdir():
            if not (models / f.name).exists():
                os.link(f, models / f.name)
        return models

    return link
