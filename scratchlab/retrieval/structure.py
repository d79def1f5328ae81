"""Document structure for chunking: markdown headings, fenced code, tables and paragraphs.

    from scratchlab.retrieval.structure import parse_sections
    for sec in parse_sections(text):
        sec.path      # ("Install", "From source") - the heading trail of the section
        sec.blocks    # [Block(start, end, kind)], kind "heading" | "text" | "code" | "table"

A line scanner in the spirit of CommonMark's block structure (no inline parsing): ATX headings
(`#`..`######`), setext headings (a line underlined with `===` or `---`), fenced code (``` or ~~~,
closed by the same fence or the end of the text), tables (runs of lines starting with `|`), and
text paragraphs between them. HTML documents reach this module as text in which the loader marked
headings with `#` and `<pre>` blocks with fences (`loaders._html_text`). Every span indexes into
the original text, so chunks built from blocks keep exact citations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")  # ![alt](src): a badge or a picture
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")  # [text](target) -> text
_URL_OR_TAG = re.compile(r"<[^>]*>|https?://\S+")
MARKUP_SUFFIXES = {".md", ".markdown", ".mdx", ".txt", ".rst", ".html", ".htm", ".xhtml", ""}


@dataclass(frozen=True)
class Block:
    """A span `[start, end)` of the text: "heading", "text", "code" (fenced) or "table"."""

    start: int
    end: int
    kind: str


@dataclass
class Section:
    """The blocks under one heading; `path` is the heading trail (outermost first)."""

    path: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)

    @property
    def has_body(self) -> bool:
        return any(b.kind != "heading" for b in self.blocks)


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line without its newline."""
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out


def parse_blocks(text: str) -> list[tuple[Block, int, str]]:
    """Blocks in order, as (block, heading level or 0, heading title or "")."""
    lines = _lines(text)
    out: list[tuple[Block, int, str]] = []
    para: list[int] = []  # line indices of the open text paragraph

    def flush() -> None:
        if para:
            out.append((Block(lines[para[0]][0], lines[para[-1]][1], "text"), 0, ""))
            para.clear()

    i = 0
    while i < len(lines):
        s, e = lines[i]
        line = text[s:e]
        fence = _FENCE.match(line)
        if fence:
            flush()
            mark = fence.group(1)
            j = i + 1
            while j < len(lines) and not text[lines[j][0] : lines[j][1]].lstrip().startswith(mark):
                j += 1
            j = min(j, len(lines) - 1)
            out.append((Block(s, lines[j][1], "code"), 0, ""))
            i = j + 1
            continue
        atx = _ATX.match(line)
        if atx:
            flush()
            out.append((Block(s, e, "heading"), len(atx.group(1)), atx.group(2).strip()))
            i += 1
            continue
        if line.lstrip().startswith("|"):
            flush()
            j = i
            while j + 1 < len(lines) and text[lines[j + 1][0] : lines[j + 1][1]].lstrip().startswith("|"):
                j += 1
            out.append((Block(s, lines[j][1], "table"), 0, ""))
            i = j + 1
            continue
        if not line.strip():
            flush()
            i += 1
            continue
        if len(para) == 0 and i + 1 < len(lines) and _SETEXT.match(text[lines[i + 1][0] : lines[i + 1][1]]):
            under = text[lines[i + 1][0] : lines[i + 1][1]].strip()
            if len(under) >= 3:
                out.append((Block(s, lines[i + 1][1], "heading"), 1 if under[0] == "=" else 2, line.strip()))
                i += 2
                continue
        para.append(i)
        i += 1
    flush()
    return out


def parse_sections(text: str) -> list[Section]:
    """Group blocks into sections, one per heading (plus a leading one for text before any heading)."""
    sections = [Section(())]
    trail: list[tuple[int, str]] = []  # (level, title) of the open headings
    for block, level, title in parse_blocks(text):
        if block.kind == "heading":
            while trail and trail[-1][0] >= level:
                trail.pop()
            trail.append((level, title))
            sections.append(Section(tuple(t for _, t in trail)))
        sections[-1].blocks.append(block)
    return [s for s in sections if s.blocks]


def plain_title(title: str) -> str:
    """A heading's words without inline markup: images (badges) and URLs dropped, links kept as their
    text, HTML tags and code/emphasis marks removed ("Typer [![PyPI](https://img...)](https://pypi...)"
    -> "Typer"). `title` itself stays as written in the document; this is what a context header shows.
    """
    text = _URL_OR_TAG.sub(" ", _LINK.sub(r"\1", _IMAGE.sub(" ", title)))
    return " ".join(text.replace("`", "").replace("**", "").replace("__", "").split())
