"""Shared fixtures: every test gets its own workspace (SCRATCHLAB_HOME in a tmp folder)."""

from __future__ import annotations

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
