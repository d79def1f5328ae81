"""Document loaders: text-like files, HTML and PDF, one file or whole folders.

    from scratchlab.retrieval.loaders import find_files, load_file
    files = find_files(["docs/"], include=["*.md"], exclude=["drafts/*"])
    doc = load_file(files[0])            # Document(doc_id, source, text, sha256, kind)

Every document keeps its source path and the SHA-256 of the file's raw bytes (`sha256`), which is
what incremental indexing compares: an unchanged file is never parsed or embedded again.

Character spans of chunks refer to `Document.text`. For text files that is the file itself, decoded
as UTF-8 (BOM dropped, nothing else changed), so a span points at the exact characters on disk. For
HTML it is the visible text (BeautifulSoup `get_text("\\n")`, scripts and styles removed, blank runs
squeezed); for PDF it is pypdf's extracted text, pages joined by a form feed ("\\f"), so the page of a
span is `text.count("\\f", 0, start) + 1`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
BINARY_SNIFF_BYTES = 8192  # bytes looked at to tell text from binary
MAX_CONTROL_FRACTION = 0.10  # more control characters than this in the sniffed prefix -> binary
MAX_FILE_BYTES = 50 * 1024 * 1024  # larger files are skipped with an error
PAGE_SEPARATOR = "\f"
_BLANK_RUNS = re.compile(r"\n[ \t\r\f\v]*(?:\n[ \t\r\f\v]*)+")
_CONTROL = set(range(0, 9)) | {11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}


class LoaderError(ValueError):
    """A file could not be loaded (missing, unreadable, binary, empty or too large)."""


@dataclass(frozen=True)
class Document:
    """One loaded source document.

    Attributes:
        doc_id: stable id inside an index ("<folder name>/<relative path>", see `find_files`).
        source: absolute path of the file.
        text: the text that chunk spans index into (see the module docstring).
        sha256: hex digest of the file's raw bytes.
        kind: "text", "html" or "pdf".
    """

    doc_id: str
    source: str
    text: str
    sha256: str
    kind: str


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB blocks).

    Raises:
        LoaderError: the file cannot be read.
    """
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise LoaderError(f"cannot read {path}: {e.strerror or e}") from e
    return h.hexdigest()


def looks_binary(data: bytes) -> bool:
    """True if `data` (a file prefix) has NUL bytes or many control characters."""
    head = data[:BINARY_SNIFF_BYTES]
    if not head:
        return False
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b in _CONTROL)
    return control / len(head) > MAX_CONTROL_FRACTION


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LoaderError(
                f"{path} is {size / 1e6:.0f} MB, over the {MAX_FILE_BYTES / 1e6:.0f} MB limit; split it first"
            )
        return path.read_bytes()
    except OSError as e:
        raise LoaderError(f"cannot read {path}: {e.strerror or e}") from e


def _html_text(data: bytes) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    for tag in soup(["h1", "h2", "h3", "h4", "h5", "h6"]):  # headings and code survive as markdown marks,
        tag.string = "#" * int(tag.name[1]) + " " + tag.get_text(" ", strip=True)  # for the chunker
    for tag in soup("pre"):
        tag.string = "```\n" + tag.get_text().strip("\n") + "\n```"
    text = soup.get_text("\n")
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as e:
        raise LoaderError(f"cannot read PDF {path}: {e}") from e
    return PAGE_SEPARATOR.join(pages)


def load_file(path: str | os.PathLike, doc_id: str | None = None) -> Document:
    """Load one file into a `Document`.

    Args:
        path: a text-like file (.txt, .md, .py, .rst, .json, ...), .html/.htm, or .pdf.
        doc_id: id to store; default the file name.

    Returns:
        The document; `text` is what chunk spans index into.

    Raises:
        LoaderError: missing or unreadable file, binary content, no extractable text, or too large.
    """
    p = Path(path)
    if not p.is_file():
        raise LoaderError(f"{p} is not a file (missing, or a folder/device)")
    data = _read_bytes(p)
    digest = hashlib.sha256(data).hexdigest()
    suffix = p.suffix.lower()
    if suffix in PDF_SUFFIXES:
        kind, text = "pdf", _pdf_text(p)
    elif looks_binary(data):
        raise LoaderError(
            f"{p} looks like a binary file, not text; exclude it (e.g. --exclude '*{suffix or p.name}')"
        )
    elif suffix in HTML_SUFFIXES:
        kind, text = "html", _html_text(data)
    else:
        kind, text = "text", data.decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise LoaderError(f"{p} has no text to index")
    return Document(doc_id=doc_id or p.name, source=str(p.resolve()), text=text, sha256=digest, kind=kind)


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(name, pat) for pat in patterns)


def find_files(
    paths: Iterable[str | os.PathLike],
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> list[tuple[Path, str]]:
    """Expand files and folders (recursively) into `(path, doc_id)` pairs, sorted by doc_id.

    Hidden files and folders (names starting with ".") inside a folder are skipped. A glob matches
    either the path relative to the folder ("notes/*.md") or the bare file name ("*.md").

    Args:
        paths: files and/or folders.
        include: keep only files matching one of these globs (default: all files).
        exclude: drop files matching one of these globs.

    Returns:
        `(path, doc_id)`: doc_id is "<folder name>/<path relative to the folder>" for files found
        in a folder argument ("docs/notes/a.md") and the file name for a file argument.

    Raises:
        LoaderError: a path does not exist, or nothing is left to index.
    """
    include, exclude = list(include or []), list(exclude or [])
    paths = [Path(p).expanduser() for p in paths]
    if not paths:
        raise LoaderError("no paths given; pass a file or a folder to index")
    out: dict[str, Path] = {}
    for root in paths:
        if root.is_file():
            rel = root.name
            if (not include or _matches(rel, include)) and not _matches(rel, exclude):
                out[rel] = root
            continue
        if not root.is_dir():
            raise LoaderError(f"{root} does not exist; give an existing file or folder")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in filenames:
                if fn.startswith("."):
                    continue
                full = Path(dirpath) / fn
                rel = full.relative_to(root).as_posix()
                if include and not _matches(rel, include):
                    continue
                if _matches(rel, exclude):
                    continue
                doc_id = f"{root.resolve().name}/{rel}"
                if doc_id in out and out[doc_id] != full:
                    raise LoaderError(
                        f"{out[doc_id]} and {full} would both be {doc_id!r}; index them separately"
                    )
                out[doc_id] = full
    if not out:
        what = ", ".join(str(p) for p in paths)
        filt = f" (include={include}, exclude={exclude})" if include or exclude else ""
        raise LoaderError(f"no files to index under {what}{filt}")
    return sorted(((p, d) for d, p in out.items()), key=lambda t: t[1])
