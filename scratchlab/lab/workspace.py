"""The workspace: one folder that holds everything a user makes.

Layout (created lazily)::

    <home>/lab.db            SQLite (WAL): conversation checkpoints, long-term memory, registry
    <home>/tokenizers/ datasets/ runs/ indexes/ adapters/ bases/ sandbox/ plots/ models/

`home` is, in order: the explicit argument (CLI `--home`), `$SCRATCHLAB_HOME`, or platformdirs'
user data dir for "scratchlab" (e.g. ~/.local/share/scratchlab on Linux).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

ENV_HOME = "SCRATCHLAB_HOME"
FOLDERS = ("tokenizers", "datasets", "runs", "indexes", "adapters", "bases", "sandbox", "plots", "models")


@dataclass(frozen=True)
class Workspace:
    """Paths of one scratchlab workspace. Cheap to construct; folders are made on first use."""

    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "lab.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def dir(self, name: str) -> Path:
        """Return (creating it) the artifact folder `name`, one of `FOLDERS`.

        Raises:
            ValueError: if `name` is not a known folder.
        """
        if name not in FOLDERS:
            raise ValueError(f"unknown workspace folder {name!r}; expected one of {FOLDERS}")
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ensure(self) -> Workspace:
        self.root.mkdir(parents=True, exist_ok=True)
        return self


def default_home() -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("scratchlab", appauthor=False))


def get_workspace(home: str | os.PathLike | None = None) -> Workspace:
    """Resolve the workspace from `home`, `$SCRATCHLAB_HOME` or the platform default, and create it."""
    root = Path(home).expanduser() if home else default_home()
    return Workspace(root.resolve()).ensure()
