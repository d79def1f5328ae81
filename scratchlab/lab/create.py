"""Creating an artifact that owns a folder: claim the name and a fresh folder, build, clean up on failure.

    with new_artifact_folder(reg, "tokenizer", "tk", ws.dir("tokenizers") / "tk") as folder:
        tok.save(folder)                                   # anything that writes into the empty folder
        art = reg.add_artifact("tokenizer", "tk", folder, config={...})

Names are identities (see `scratchlab.lab.registry`). The folder is claimed with `mkdir`, which fails
if it exists, so old files are never overwritten and of several processes creating one name at once
exactly one gets to write; the registry row is claimed by its unique (kind, name) index. If anything
in the block fails, the folder is removed (so no empty or half-written folder is left), and a full
disk is reported as `OutOfSpace`, naming the filesystem and how much is free.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from scratchlab.lab.diskspace import OutOfSpace, no_space_error
from scratchlab.lab.registry import NameTaken, Registry


@contextlib.contextmanager
def new_artifact_folder(
    registry: Registry, kind: str, name: str, folder: str | Path, retry: str = "run the command again"
) -> Iterator[Path]:
    """Check that `name` is free for `kind`, create the new empty `folder`, and yield it.

    Args:
        registry: the lab registry (register the artifact inside the block with `add_artifact`).
        kind, name: the artifact's kind and new name.
        folder: must not exist yet.
        retry: what to do after freeing space, for the `OutOfSpace` message.

    Raises:
        NameTaken: the name is registered, or `folder` exists (it is never overwritten).
        OutOfSpace: the disk or quota filled up (the folder is removed).
        Any error raised in the block, after the folder is removed.
    """
    folder = Path(folder)
    registry.check_name_free(kind, name)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
    except FileExistsError:
        raise NameTaken(kind, name, f"its folder {folder} exists") from None
    except OSError as e:
        msg = no_space_error(e, folder.parent, retry=retry)
        if msg:
            raise OutOfSpace(msg) from e
        raise
    try:
        yield folder
    except BaseException as e:
        shutil.rmtree(folder, ignore_errors=True)
        msg = no_space_error(e, folder.parent, retry=retry)
        if msg:
            raise OutOfSpace(msg) from e
        raise
