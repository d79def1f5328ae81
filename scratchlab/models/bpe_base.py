"""What every BPE module shares: the byte alphabet, split presets, errors, the merges -> vocab model.

    from scratchlab.models.bpe_base import PATTERNS, TokenizerError, resolve_pattern, render_bytes
    name, pat = resolve_pattern("gpt4")      # ("gpt4", tiktoken's cl100k regex)
    render_bytes(b"a\\n\\xe2")                 # 'a\\\\n<0xE2>'

This is the floor under the tokenizer (`bpe.py`), its file format (`bpe_io.py`), its exports to
tiktoken and HF `tokenizers` (`bpe_export.py`) and OpenAI's encodings (`tiktoken_compat.py`): they
all import from here, and nothing here imports them, as minbpe's `base.py` holds the helpers its
tokenizers share.

Source: OpenAI tiktoken (the GPT-2 and cl100k split patterns, surrogate handling),
karpathy/minbpe `base.py` (`render_token`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Protocol

import regex

GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
PATTERNS: dict[str, str | None] = {"gpt4": GPT4_SPLIT_PATTERN, "gpt2": GPT2_SPLIT_PATTERN, "none": None}
"""Named pre-tokenization presets; each matches every character (so no text is ever dropped)."""
NUM_BYTES = 256  # the base alphabet: one id per byte value
DEFAULT_PATTERN = "gpt4"


class TokenizerState(Protocol):
    """The public state of a tokenizer (`bpe.Tokenizer`) that its file format (`bpe_io`) and its
    exports (`bpe_export`) read; they take this instead of the class, so they sit under it."""

    name: str
    pattern: str | None
    pattern_name: str
    byte_ids: tuple[int, ...]
    merges: dict[tuple[int, int], int]  # (a, b) -> new id, in merge order
    special_tokens: dict[str, int]
    inverse_special: dict[int, str]
    vocab: dict[int, bytes]  # derived from the merges

    @property
    def num_merges(self) -> int: ...

    def token_str(self, token_id: int) -> str: ...


class TokenizerError(ValueError):
    """Bad tokenizer input (vocab size, pattern, special token, token id); says how to fix it."""


class TokenizerFormatError(TokenizerError):
    """A saved tokenizer file is missing, from an unsupported version, or malformed."""


def resolve_pattern(pattern: str | None) -> tuple[str, str | None]:
    """Map a preset name or a custom regex to `(pattern_name, regex or None)`.

    Raises:
        TokenizerError: the custom regex does not compile, or matches the empty string only.
    """
    if pattern is None:
        return "none", None
    key = pattern.strip().lower()
    if key in PATTERNS:
        return key, PATTERNS[key]
    for name, pat in PATTERNS.items():
        if pat is not None and pattern == pat:
            return name, pat
    try:
        regex.compile(pattern)
    except regex.error as e:
        raise TokenizerError(
            f"invalid split pattern {pattern!r}: {e}; use a preset ({', '.join(PATTERNS)}) or a valid regex"
        ) from e
    return "custom", pattern


def check_byte_ids(byte_ids: Sequence[int] | None) -> tuple[int, ...]:
    """The base id of each byte value (a permutation of 0..255); None means the identity.

    Raises:
        TokenizerError: not a permutation of 0..255.
    """
    out = tuple(range(NUM_BYTES)) if byte_ids is None else tuple(int(b) for b in byte_ids)
    if sorted(out) != list(range(NUM_BYTES)):
        raise TokenizerError("byte_ids must be a permutation of 0..255")
    return out


def index_merges(merges: Iterable[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Merges in order -> dict (a, b) -> new id, merge k making id 256 + k.

    Raises:
        TokenizerError: a merge uses an id not defined before it, or repeats an earlier merge.
    """
    out: dict[tuple[int, int], int] = {}
    for k, (a, b) in enumerate(merges):
        new_id = NUM_BYTES + k
        if not (0 <= a < new_id and 0 <= b < new_id):
            raise TokenizerError(f"merge {k} ({a}, {b}) uses an id that is not defined before id {new_id}")
        if (a, b) in out:
            raise TokenizerError(f"merge {k} ({a}, {b}) repeats merge {out[(a, b)] - NUM_BYTES}")
        out[(int(a), int(b))] = new_id
    return out


def number_special_tokens(
    special_tokens: dict[str, int] | Sequence[str] | None, first_id: int
) -> dict[str, int]:
    """Special tokens as dict str -> id; a list gets the ids from `first_id` (after the merges) on.

    Raises:
        TokenizerError: an empty token, an id below `first_id`, or two tokens with one id.
    """
    if special_tokens is None:
        special_tokens = {}
    if not isinstance(special_tokens, dict):
        special_tokens = {s: first_id + i for i, s in enumerate(dict.fromkeys(special_tokens))}
    for s, i in special_tokens.items():
        if not s:
            raise TokenizerError("special tokens must be non-empty strings")
        if i < first_id:
            raise TokenizerError(f"special token {s!r} has id {i}, which belongs to a byte or merge")
    if len(set(special_tokens.values())) != len(special_tokens):
        raise TokenizerError(f"special tokens share ids: {special_tokens}")
    return dict(special_tokens)


def build_vocab(
    byte_ids: Sequence[int], merges: dict[tuple[int, int], int], special_tokens: dict[str, int]
) -> dict[int, bytes]:
    """The vocab (id -> bytes) derived from the merges; special tokens as their UTF-8 bytes."""
    vocab = {byte_ids[b]: bytes([b]) for b in range(NUM_BYTES)}
    for (a, b), i in merges.items():
        vocab[i] = vocab[a] + vocab[b]
    for s, i in special_tokens.items():
        vocab[i] = s.encode("utf-8")
    return vocab


def replace_surrogates(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD (and surrogate pairs joined), as tiktoken does
    before encoding a string that is not valid UTF-8."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def render_bytes(data: bytes) -> str:
    """Text of `data` with invalid UTF-8 bytes as `<0xAB>` and control characters escaped (`\\n`)."""
    text = data.decode("utf-8", errors="surrogateescape")
    out = []
    for ch in text:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(f"<0x{o - 0xDC00:02X}>")
        elif unicodedata.category(ch)[0] == "C":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)
