"""Token-aware chunking that prefers paragraph and sentence boundaries and keeps character spans.

    from scratchlab.retrieval.chunking import ChunkConfig, chunk_text, load_token_counter
    counter = load_token_counter()                       # the MiniLM WordPiece tokenizer
    chunks = chunk_text(text, ChunkConfig(chunk_size=256, chunk_overlap=32), counter)
    assert all(text[c.start:c.end] == c.text for c in chunks)

How: the text is cut into units (sentences; lines inside paragraphs that look like lists or code),
each with its span `[start, end)` in the source, whitespace trimmed. Units are counted with the
embedding model's own tokenizer (so `chunk_size` is what the encoder sees; MiniLM truncates at 256
word pieces) and packed greedily. When the next unit does not fit, the chunk is cut at the last
paragraph break if that keeps the chunk at least `PARAGRAPH_MIN_FILL` full, otherwise after the last
whole sentence. A unit longer than `chunk_size` on its own is split at word-piece offsets. The next
chunk starts with the trailing whole sentences of the previous one that fit in `chunk_overlap`
tokens (so the overlap may be smaller than asked, never a broken sentence).

Defaults (`DEFAULT_CHUNK_SIZE`, `DEFAULT_CHUNK_OVERLAP`) were chosen by measurement
(`benchmarks/retrieval.py --only-sweep`, 300 wiki articles, 150 known-item queries; table in
benchmarks/results/retrieval.md): hybrid MRR@10 was 0.925 at 64/16 (725 chunks), 0.918 at 128/32
(389 chunks) and 0.923 at 256/32 (301 chunks), differences within noise at 150 queries, so the
largest size MiniLM reads in full (256 word pieces) is the default: the same quality with 2.4x
fewer chunks to embed, store and search. The 32-token overlap costs nothing on short articles
(256/0 gave identical numbers) and keeps a sentence of context across cuts in long documents.
The approach follows LangChain's RecursiveCharacterTextSplitter and LlamaIndex's SentenceSplitter,
with token counting from the encoder's tokenizer.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from scratchlab.retrieval.minilm import default_model_path
from scratchlab.retrieval.structure import MARKUP_SUFFIXES, Block, Section, parse_sections, plain_title

DEFAULT_CHUNK_SIZE = 256  # word pieces (MiniLM's max_seq_length is 256)
DEFAULT_CHUNK_OVERLAP = 32  # word pieces
PARAGRAPH_MIN_FILL = 0.5  # cut at a paragraph break only if the chunk is at least this full
MIN_CHUNK_SIZE = 16
# 1: `chunk_text`; 2: `chunk_sections` (structure-aware, context headers); 3: the headers' titles as
# plain words (`plain_title`: a README's badge images and link targets had filled its headers)
CHUNKER_VERSION = 3
ATOMIC_MAX_TOKENS = 1024  # a code block or table up to this size is never split (may exceed chunk_size)
CONTEXT_MAX_SHARE = 0.5  # a context header may take at most this share of chunk_size

_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*|\f\s*")
# a sentence ends at . ! ? (optionally followed by quotes/brackets) and whitespace, or at a newline
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"'”’)\]]*\s+|\n+")


class TokenCounter(Protocol):
    """What the chunker needs from a tokenizer."""

    def count(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text (no special tokens)."""
        ...

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span `[start, end)` of each token of `text`."""
        ...


class HFTokenCounter:
    """A `TokenCounter` over a Hugging Face `tokenizers.Tokenizer` (e.g. MiniLM's tokenizer.json)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    def count(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).offsets)


class WhitespaceCounter:
    """A crude `TokenCounter` (one token per whitespace-separated word), for tests and fallbacks."""

    _WORD = re.compile(r"\S+")

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(self._WORD.findall(t)) for t in texts]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._WORD.finditer(text)]


def load_token_counter(model_path: str | Path | None = None) -> HFTokenCounter:
    """The tokenizer of the embedding model at `model_path` (default: the shipped MiniLM).

    Raises:
        FileNotFoundError: the folder has no tokenizer.json.
    """
    from tokenizers import Tokenizer  # the Rust tokenizer loads only when chunking runs

    path = Path(model_path) if model_path else default_model_path()
    tok = path / "tokenizer.json"
    if not tok.is_file():
        raise FileNotFoundError(
            f"no tokenizer.json in {path}; point --model at a sentence-transformers folder"
        )
    return HFTokenCounter(Tokenizer.from_file(str(tok)))


@dataclass(frozen=True)
class ChunkConfig:
    """Chunking settings, saved with every index.

    Attributes:
        chunk_size: most tokens per chunk (embedding tokenizer word pieces).
        chunk_overlap: most tokens of trailing whole sentences repeated at the next chunk's start.
    """

    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP

    def __post_init__(self):
        if self.chunk_size < MIN_CHUNK_SIZE:
            raise ValueError(
                f"chunk_size={self.chunk_size} is too small; use at least {MIN_CHUNK_SIZE} tokens"
            )
        if not 0 <= self.chunk_overlap < self.chunk_size // 2 + 1:
            raise ValueError(
                f"chunk_overlap={self.chunk_overlap} must be between 0 and chunk_size/2 ({self.chunk_size // 2})"
            )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: `text == document_text[start:end]`.

    Attributes:
        start, end: character span in the document text, end exclusive.
        text: the chunk text.
        n_tokens: tokens counted by the chunker (sum over its units).
        line: 1-based line number of `start` in the document text.
        context: "file > Section > Subsection" header (chunker 2), embedded and indexed with `text`.
    """

    start: int
    end: int
    text: str
    n_tokens: int
    line: int
    context: str = ""


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    para_start: bool


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_units(text: str, start: int = 0, end: int | None = None) -> list[_Unit]:
    """Sentence/line units of `text[start:end]` with trimmed spans into `text`; `para_start` marks a
    paragraph's first unit."""
    units: list[_Unit] = []
    end = len(text) if end is None else end
    para_bounds = [start] + [m.end() for m in _PARAGRAPH.finditer(text, start, end)]
    para_ends = [m.start() for m in _PARAGRAPH.finditer(text, start, end)] + [end]
    for p_start, p_end in zip(para_bounds, para_ends, strict=True):
        first = True
        pos = p_start
        cuts = [m.end() for m in _SENTENCE_END.finditer(text, p_start, p_end)] + [p_end]
        for cut in cuts:
            s, e = _trimmed(text, pos, min(cut, p_end))
            pos = cut
            if s < e:
                units.append(_Unit(s, e, first))
                first = False
    return units


def _split_long(
    text: str, unit: _Unit, n_tokens: int, limit: int, counter: TokenCounter
) -> list[tuple[_Unit, int]]:
    """Cut one over-long unit at token offsets into pieces of at most `limit` tokens."""
    offs = counter.offsets(text[unit.start : unit.end])
    if len(offs) <= limit:
        return [(unit, n_tokens)]
    pieces = []
    for i in range(0, len(offs), limit):
        group = offs[i : i + limit]
        s, e = _trimmed(text, unit.start + group[0][0], unit.start + group[-1][1])
        if s < e:
            pieces.append((_Unit(s, e, unit.para_start and i == 0), len(group)))
    return pieces


def _pack(items: list[tuple[_Unit, int]], size: int, overlap_max: int) -> list[list[tuple[_Unit, int]]]:
    """Greedy packing of (unit, tokens) into chunk groups with sentence overlap (module docstring)."""
    groups: list[list[tuple[_Unit, int]]] = []
    cur: list[tuple[_Unit, int]] = []
    cur_tokens = 0
    new_in_cur = 0  # units in `cur` that are not overlap from the previous chunk
    for item in items:
        n = item[1]
        if cur and cur_tokens + n > size and new_in_cur:
            cut = len(cur)
            for i in range(len(cur) - 1, 0, -1):  # prefer the last paragraph break if full enough
                if cur[i][0].para_start and i >= len(cur) - new_in_cur:
                    if sum(t for _, t in cur[:i]) >= PARAGRAPH_MIN_FILL * size:
                        cut = i
                    break
            groups.append(cur[:cut])
            rest = cur[cut:]
            overlap: list[tuple[_Unit, int]] = []
            ov_tokens = 0
            for u in reversed(cur[1:cut]):  # never the whole chunk: the next one must move on
                if ov_tokens + u[1] > overlap_max:
                    break
                overlap.insert(0, u)
                ov_tokens += u[1]
            cur = overlap + rest
            new_in_cur = len(rest)
            cur_tokens = sum(t for _, t in cur)
            while cur and cur_tokens + n > size and len(cur) > new_in_cur:
                cur_tokens -= cur.pop(0)[1]  # drop overlap to make room
        cur.append(item)
        cur_tokens += n
        new_in_cur += 1
    if cur and new_in_cur:
        groups.append(cur)
    return groups


def chunk_text(
    text: str, config: ChunkConfig | None = None, counter: TokenCounter | None = None
) -> list[Chunk]:
    """Split `text` into overlapping token-bounded chunks that keep their character spans.

    Args:
        text: the document text.
        config: chunk size and overlap in tokens (default `ChunkConfig()`).
        counter: the tokenizer to count with (default: `load_token_counter()`, MiniLM).

    Returns:
        Chunks in document order; `text[c.start:c.end] == c.text` for each. Empty for blank text.
    """
    config = config or ChunkConfig()
    counter = counter or load_token_counter()
    units = split_units(text)
    if not units:
        return []
    counts = counter.count([text[u.start : u.end] for u in units])
    items: list[tuple[_Unit, int]] = []
    for u, n in zip(units, counts, strict=True):
        items.extend(
            _split_long(text, u, n, config.chunk_size, counter) if n > config.chunk_size else [(u, n)]
        )

    groups = _pack(items, config.chunk_size, config.chunk_overlap)
    chunks = []
    line, line_pos = 1, 0
    for g in groups:
        start, end = g[0][0].start, g[-1][0].end
        line += text.count("\n", line_pos, start)
        line_pos = start
        chunks.append(Chunk(start, end, text[start:end], sum(t for _, t in g), line))
    return chunks


def embed_text(context: str, text: str) -> str:
    """What the encoder, BM25 and rerankers read for a chunk: its context header, a newline, its text."""
    return f"{context}\n{text}" if context else text


def _line_of(newlines: list[int], pos: int) -> int:
    return bisect.bisect_left(newlines, pos) + 1


def chunk_sections(text: str, name: str, config: ChunkConfig | None = None, counter: TokenCounter | None = None,
                   markup: bool = True, version: int = CHUNKER_VERSION) -> list[Chunk]:  # fmt: skip
    """Structure-aware chunks with context headers (chunker version 2 or 3).

    Chunks never cross a heading; within a section, code blocks and tables are single units that are
    never split (up to `ATOMIC_MAX_TOKENS`; longer ones are cut at line ends), prose is split into
    sentences and all are packed as in `chunk_text`. Each chunk's `context` is
    `"name > Heading > Subheading"`, and its budget is `chunk_size` minus the header's tokens, so
    header plus text fit what MiniLM reads. Sections holding only a heading add no chunk (their title
    lives on in the headers below them).

    Args:
        text: the document text.
        name: the document's name for the header (e.g. the file name "guide.md").
        config: chunk size and overlap in tokens.
        counter: the tokenizer to count with (default MiniLM's).
        markup: parse markdown/HTML structure; False for code and data files (one section).
        version: 3 writes the headings' plain words (`plain_title`), 2 the titles as written.

    Returns:
        Chunks in document order; `text[c.start:c.end] == c.text` for each.
    """
    config = config or ChunkConfig()
    counter = counter or load_token_counter()
    sections = parse_sections(text) if markup else [Section((), [Block(0, len(text), "text")])]
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    title = plain_title if version >= 3 else str
    headers = [" > ".join((name, *(t for t in map(title, sec.path) if t))) for sec in sections]
    header_tokens = counter.count(headers)
    chunks: list[Chunk] = []
    for sec, header, h_tokens in zip(sections, headers, header_tokens, strict=True):
        if not sec.has_body:
            continue
        size = max(
            config.chunk_size - min(h_tokens + 1, int(CONTEXT_MAX_SHARE * config.chunk_size)), MIN_CHUNK_SIZE
        )
        units: list[_Unit] = []
        atomic: set[int] = set()
        for b in sec.blocks:
            if b.kind in ("code", "table"):
                s, e = _trimmed(text, b.start, b.end)
                if s < e:
                    atomic.add(len(units))
                    units.append(_Unit(s, e, True))
            else:
                units.extend(split_units(text, b.start, b.end))
        if not units:
            continue
        counts = counter.count([text[u.start : u.end] for u in units])
        items: list[tuple[_Unit, int]] = []
        for i, (u, n) in enumerate(zip(units, counts, strict=True)):
            if i in atomic:
                items.extend([(u, n)] if n <= ATOMIC_MAX_TOKENS else _split_lines(text, u, size, counter))
            else:
                items.extend(_split_long(text, u, n, size, counter) if n > size else [(u, n)])
        for g in _pack(items, size, min(config.chunk_overlap, size // 2)):
            start, end = g[0][0].start, g[-1][0].end
            chunks.append(
                Chunk(start, end, text[start:end], sum(t for _, t in g), _line_of(newlines, start), header)
            )
    return chunks


def _split_lines(text: str, unit: _Unit, limit: int, counter: TokenCounter) -> list[tuple[_Unit, int]]:
    """Cut an over-long code block or table at line ends into pieces of about `limit` tokens."""
    spans, pos = [], unit.start
    for line in text[unit.start : unit.end].split("\n"):
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    counts = counter.count([text[s:e] for s, e in spans])
    pieces, cur_s, cur_n, prev_e = [], None, 0, unit.start
    for (s, e), n in zip(spans, counts, strict=True):
        if cur_s is not None and cur_n + n > limit:
            pieces.append((cur_s, prev_e, cur_n))
            cur_s, cur_n = None, 0
        cur_s = s if cur_s is None else cur_s
        cur_n += n
        prev_e = e
    pieces.append((cur_s, prev_e, cur_n))
    out = []
    for k, (s, e, n) in enumerate(pieces):
        s, e = _trimmed(text, s, e)
        if s < e:
            out.append((_Unit(s, e, k == 0), n))
    return out


def chunk_for_index(doc, config: ChunkConfig, counter: TokenCounter, version: int) -> list[Chunk]:
    """Chunks of a loaded `Document` the way an index of chunker `version` makes them (1, 2 or 3)."""
    if version < 2:
        return chunk_text(doc.text, config, counter)
    name = Path(doc.doc_id).name
    markup = doc.kind in ("html", "pdf") or Path(doc.doc_id).suffix.lower() in MARKUP_SUFFIXES
    return chunk_sections(doc.text, name, config, counter, markup=markup, version=version)
