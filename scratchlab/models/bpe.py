"""Byte-level BPE tokenizer: train, encode, decode, save, load, inspect.

    from scratchlab.models.bpe import Tokenizer, train_tokenizer, load_tokenizer
    tok = train_tokenizer(text, vocab_size=4096, pattern="gpt4", special_tokens=["<|endoftext|>"])
    ids = tok.encode("hello world<|endoftext|>", allowed_special="all")
    assert tok.decode(ids) == "hello world<|endoftext|>"
    tok.save("tokenizers/bpe4096")                   # tokenizer.model (+ .vocab view, never loaded)
    tok = Tokenizer.load("tokenizers/bpe4096")        # a folder or the .model file
    gpt4 = load_openai("cl100k_base")                  # GPT-4's ranks (scratchlab.models.tiktoken_compat)

Model: the vocabulary starts as the 256 byte values; `merges` (the source of truth) lists learned
pairs in order, merge i joining ids (a, b) into id 256 + i; `vocab` (id -> bytes) is derived from
them. `byte_ids` maps byte value -> base id (the identity for our tokenizers; GPT-4's cl100k ranks
permute the 256 bytes, minbpe's "byte shuffle"). Special tokens take ids after the merges.

Pre-tokenization splits text with a regex preset: `gpt4` (tiktoken's cl100k pattern, the default),
`gpt2`, `none` (no split: textbook byte BPE), or any custom pattern (the `regex` package dialect).
Encoding merges, inside each chunk, the adjacent pair with the lowest merge rank until none is
left (greedy, as tiktoken and HF `tokenizers` do); repeated chunks come from a cache.

Special tokens follow tiktoken: `allowed_special` ("all" or a set) are encoded as their ids; any
other special token found in the text raises unless `disallowed_special` excludes it.

Source: karpathy/minbpe (structure, GPT4Tokenizer idea), OpenAI tiktoken (patterns, special-token
semantics), Sennrich et al. 2016 (BPE for subwords), Radford et al. 2019 (byte-level BPE, GPT-2).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Literal

import regex
from rich.text import Text

from scratchlab.models import bpe_io
from scratchlab.models.bpe_base import (
    DEFAULT_PATTERN,
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    NUM_BYTES,
    PATTERNS,
    TokenizerError,
    TokenizerFormatError,
    build_vocab,
    check_byte_ids,
    index_merges,
    number_special_tokens,
    render_bytes,
    replace_surrogates,
    resolve_pattern,
)
from scratchlab.models.bpe_export import to_hf, to_tiktoken
from scratchlab.models.bpe_merge import merge_greedy, merge_heap
from scratchlab.models.bpe_train import learn_merges, split_keep_gaps

__all__ = [  # the tokenizer's public face; the shared pieces are defined in bpe_base
    "DEFAULT_PATTERN", "GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN", "NUM_BYTES", "PATTERNS", "Tokenizer",
    "TokenizerError", "TokenizerFormatError", "load_tokenizer", "render_bytes", "replace_surrogates",
    "resolve_pattern", "train_tokenizer",
]  # fmt: skip

ENCODE_CACHE_SIZE = 1 << 16  # chunks kept in the encode cache before it is cleared
LONG_CHUNK = 128  # chunks longer than this (ids) use the O(n log n) heap merge
TOKEN_COLOURS = ("on grey23", "on dark_blue", "on dark_green", "on dark_red", "on purple4", "on dark_cyan")
DISALLOWED_SPECIAL_TEMPLATE = (
    "Encountered text corresponding to disallowed special token {token!r}. Pass it in allowed_special "
    "(e.g. allowed_special={{{token!r}}} or 'all') to encode it as a special token, or pass "
    "disallowed_special=() to encode it as plain text."
)

AllowedSpecial = Literal["all"] | Collection[str]


class Tokenizer:
    """A byte-level BPE tokenizer. `merges` is the truth; `vocab` is derived.

    Attributes:
        merges: dict (int, int) -> int, in merge order; pair of ids -> the id it becomes.
        special_tokens: dict str -> int.
        pattern_name: "gpt4", "gpt2", "none" or "custom"; pattern: the regex (None for "none").
        byte_ids: tuple of 256 ints, byte value -> base id (a permutation of 0..255).
        vocab: dict int -> bytes (derived; special tokens included as their UTF-8 bytes).
        name: a label (e.g. "cl100k_base"), informative only.
    """

    def __init__(
        self,
        merges: Iterable[tuple[int, int]] = (),
        pattern: str | None = DEFAULT_PATTERN,
        special_tokens: dict[str, int] | Sequence[str] | None = None,
        byte_ids: Sequence[int] | None = None,
        name: str = "",
    ):
        """Build a tokenizer from its merges.

        Args:
            merges: pairs of ids in merge order; merge i creates id 256 + i, and may only use ids
                below that.
            pattern: preset name or custom regex (see `resolve_pattern`); None means "none".
            special_tokens: dict token -> id, or a list of tokens given ids after the merges.
            byte_ids: base id of each byte value (a permutation of range(256)); default identity.
            name: label.

        Raises:
            TokenizerError: a merge uses an id not yet defined, a bad permutation, or special
                tokens that collide with merge ids or with each other.
        """
        self.name = name
        self.pattern_name, self.pattern = resolve_pattern(pattern)
        self._compiled = regex.compile(self.pattern) if self.pattern is not None else None
        self.byte_ids = check_byte_ids(byte_ids)
        self.merges = index_merges(merges)  # (int, int) -> int, in merge order
        self.special_tokens = number_special_tokens(special_tokens, NUM_BYTES + len(self.merges))
        self.inverse_special = {i: s for s, i in self.special_tokens.items()}
        self.vocab = build_vocab(self.byte_ids, self.merges, self.special_tokens)  # derived
        self._byte_table = None if self.byte_ids == tuple(range(NUM_BYTES)) else bytes(self.byte_ids)
        self._cache: dict[str, list[int]] = {}  # chunk -> ids
        self._special_re: dict[frozenset[str], regex.Pattern] = {}
        self.training_stats: dict = {}  # filled by train_tokenizer

    # ---- derived state ---------------------------------------------------------------------------
    @property
    def num_merges(self) -> int:
        return len(self.merges)

    @property
    def vocab_size(self) -> int:
        """Number of ids a model needs: max id + 1 (bytes, merges and special tokens)."""
        return max(self.vocab) + 1

    def __repr__(self) -> str:
        return (
            f"Tokenizer(name={self.name!r}, vocab_size={self.vocab_size}, merges={self.num_merges}, "
            f"pattern={self.pattern_name!r}, special={list(self.special_tokens)})"
        )

    # ---- training --------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        pattern: str | None = DEFAULT_PATTERN,
        special_tokens: Sequence[str] = (),
        progress: Callable[[int, int], None] | None = None,
        name: str = "",
    ) -> Tokenizer:
        """Learn a tokenizer from `text` (see `train_tokenizer`)."""
        return train_tokenizer(text, vocab_size, pattern, special_tokens, progress, name)

    # ---- encoding --------------------------------------------------------------------------------
    def split(self, text: str) -> list[str]:
        """Pre-tokenize ordinary text (no special-token handling) into chunks."""
        if not text:
            return []
        if self._compiled is None:
            return [text]
        if self.pattern_name == "custom":
            return split_keep_gaps(self._compiled, text)
        return self._compiled.findall(text)

    def encode_chunk(self, chunk: bytes) -> list[int]:
        """Token ids of one pre-tokenized chunk given as UTF-8 (or any) bytes. Not cached."""
        raw = chunk.translate(self._byte_table) if self._byte_table is not None else chunk
        ids = list(raw)
        return merge_heap(ids, self.merges) if len(ids) > LONG_CHUNK else merge_greedy(ids, self.merges)

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode `text` treating special-token strings as plain text.

        Chunks seen before come from a cache (str chunk -> ids, cleared when it holds
        `ENCODE_CACHE_SIZE` chunks); natural text repeats its words, so most chunks are hits.
        Lone surrogates (not encodable as UTF-8) become U+FFFD, as in tiktoken.
        """
        try:
            return self._encode_ordinary(text)
        except UnicodeEncodeError:
            return self._encode_ordinary(replace_surrogates(text))

    def _encode_ordinary(self, text: str) -> list[int]:
        cache = self._cache
        out: list[int] = []
        for chunk in self.split(text):
            ids = cache.get(chunk)
            if ids is None:
                ids = self.encode_chunk(chunk.encode("utf-8"))
                if len(chunk) <= LONG_CHUNK:
                    if len(cache) >= ENCODE_CACHE_SIZE:
                        cache.clear()
                    cache[chunk] = ids
            out += ids
        return out

    def _specials_regex(self, tokens: Collection[str]) -> regex.Pattern:
        key = frozenset(tokens)
        pat = self._special_re.get(key)
        if pat is None:
            ordered = sorted(key, key=lambda s: (-len(s), s))  # longest first at the same position
            pat = regex.compile("|".join(regex.escape(s) for s in ordered))
            self._special_re[key] = pat
        return pat

    def encode(
        self,
        text: str,
        allowed_special: AllowedSpecial = frozenset(),
        disallowed_special: AllowedSpecial = "all",
    ) -> list[int]:
        """Encode `text` to token ids, with tiktoken's special-token semantics.

        Args:
            text: any Unicode string.
            allowed_special: "all" or the special tokens to encode as their ids.
            disallowed_special: "all" (every special token not allowed) or the special tokens whose
                appearance in `text` raises; others are encoded as plain text.

        Returns:
            list of int token ids. Lone surrogates (e.g. from undecodable command-line bytes) are
            encoded as U+FFFD, exactly as tiktoken does.

        Raises:
            TokenizerError: an unknown special token is allowed, or a disallowed one is in `text`.
        """
        try:
            return self._encode(text, allowed_special, disallowed_special)
        except UnicodeEncodeError:
            return self._encode(replace_surrogates(text), allowed_special, disallowed_special)

    def _encode(
        self, text: str, allowed_special: AllowedSpecial, disallowed_special: AllowedSpecial
    ) -> list[int]:
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise TokenizerError(
                f"unknown special token(s) {sorted(unknown)}; this tokenizer has {sorted(self.special_tokens)}"
            )
        disallowed = (
            set(self.special_tokens) - allowed if disallowed_special == "all" else set(disallowed_special)
        )
        if disallowed:
            m = self._specials_regex(disallowed).search(text)
            if m:
                raise TokenizerError(DISALLOWED_SPECIAL_TEMPLATE.format(token=m.group()))
        if not allowed:
            return self.encode_ordinary(text)
        out: list[int] = []
        pos = 0
        for m in self._specials_regex(allowed).finditer(text):
            out.extend(self.encode_ordinary(text[pos : m.start()]))
            out.append(self.special_tokens[m.group()])
            pos = m.end()
        out.extend(self.encode_ordinary(text[pos:]))
        return out

    # ---- decoding --------------------------------------------------------------------------------
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Concatenated bytes of `ids`. Raises TokenizerError on an unknown id."""
        vocab = self.vocab
        try:
            return b"".join(vocab[int(i)] for i in ids)
        except KeyError as e:
            raise TokenizerError(
                f"invalid token id: {e.args[0]} (vocab has ids 0..{self.vocab_size - 1})"
            ) from None

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Decode ids to text; invalid UTF-8 (a cut multi-byte character) becomes U+FFFD by default."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    # ---- inspection ------------------------------------------------------------------------------
    def token_str(self, token_id: int) -> str:
        """Printable form of one token: its text, with control characters escaped and bytes that
        are not valid UTF-8 on their own shown as `<0xE2>`."""
        if token_id in self.inverse_special:
            return self.inverse_special[token_id]
        return render_bytes(self.decode_bytes([token_id]))

    def tokens(self, text: str, allowed_special: AllowedSpecial = "all") -> list[str]:
        """Printable form of each token of `text`."""
        return [self.token_str(i) for i in self.encode(text, allowed_special=allowed_special)]

    def first_merges(self, n: int = 20) -> list[tuple[int, int, int, str]]:
        """The first `n` merges as (new id, a, b, printable token)."""
        out = []
        for (a, b), i in self.merges.items():
            if len(out) >= n:
                break
            out.append((i, a, b, self.token_str(i)))
        return out

    def merge_of(self, token_id: int) -> tuple[int, int] | None:
        """The pair of ids whose merge produced `token_id`; None for bytes and special tokens."""
        if not hasattr(self, "_parents"):
            self._parents = {i: p for p, i in self.merges.items()}
        if token_id not in self.vocab:
            raise TokenizerError(f"invalid token id: {token_id} (vocab has ids 0..{self.vocab_size - 1})")
        return self._parents.get(token_id)

    def colorize(self, text: str, allowed_special: AllowedSpecial = "all"):
        """A `rich.text.Text` of `text` with alternating background colours per token (for the REPL).

        Tokens that end inside a multi-byte character are shown with their byte fallback.
        """
        out = Text()
        for k, i in enumerate(self.encode(text, allowed_special=allowed_special)):
            out.append(self.token_str(i), style=TOKEN_COLOURS[k % len(TOKEN_COLOURS)])
        return out

    def compression_ratio(self, text: str) -> float:
        """UTF-8 bytes per token on `text` (special-token strings encoded as plain text)."""
        n = len(self.encode_ordinary(text))
        return len(text.encode("utf-8")) / max(n, 1)

    # ---- interop and files (bpe_export, bpe_io) -------------------------------------------------
    def to_tiktoken(self):
        """A `tiktoken.Encoding` with our ranks, pattern and special tokens (fast bulk encoding)."""
        return to_tiktoken(self)

    def to_hf(self):
        """A Hugging Face `tokenizers.Tokenizer` equivalent to this one (see `bpe_export.to_hf`)."""
        return to_hf(self)

    def save(self, path: str | os.PathLike, hf: bool = False) -> Path:
        """Save to folder `path` (tokenizer.model + tokenizer.vocab [+ tokenizer.json]); see `bpe_io`."""
        return bpe_io.save(self, path, hf=hf)

    def dumps(self) -> str:
        """The model file text (format v1, see `bpe_io`)."""
        return bpe_io.dumps(self)

    @classmethod
    def loads(cls, text: str, source: str = "<string>") -> Tokenizer:
        """Parse model file text written by `dumps`. Raises TokenizerFormatError naming `source`."""
        return cls.from_spec(bpe_io.parse(text, source))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Load a tokenizer saved by `save` (a folder or its .model file). Raises TokenizerFormatError."""
        return cls.from_spec(bpe_io.read(path))

    @classmethod
    def from_spec(cls, spec: bpe_io.TokenizerSpec) -> Tokenizer:
        """The tokenizer a model file describes. Raises TokenizerFormatError if it is not a valid one."""
        try:
            return cls(**spec.kwargs())
        except TokenizerFormatError:
            raise
        except (TokenizerError, TypeError, ValueError) as e:
            raise TokenizerFormatError(f"{spec.source}: invalid tokenizer contents: {e}") from e


def train_tokenizer(
    text: str,
    vocab_size: int,
    pattern: str | None = DEFAULT_PATTERN,
    special_tokens: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
    name: str = "",
) -> Tokenizer:
    """Train a byte-level BPE tokenizer (the fast incremental trainer of `bpe_train`).

    Args:
        text: training text; special-token strings in it are boundaries and are not learned.
        vocab_size: total ids wanted: 256 bytes + merges + special tokens (>= 256 + specials).
        pattern: split preset ("gpt4", "gpt2", "none") or a custom regex.
        special_tokens: e.g. ["<|endoftext|>"]; they get the ids after the merges.
        progress: optional `progress(merges_done, total_merges)`.
        name: label stored in the tokenizer.

    Returns:
        the trained Tokenizer. It has fewer merges than asked if the text runs out of pairs.
        `tok.training_stats` holds "bytes", "tokens" and "compression_ratio" (UTF-8 bytes per
        token) of the training text without its special tokens, computed by the trainer itself.

    Raises:
        TokenizerError: vocab_size too small or too large, empty text, bad pattern or special tokens.
    """
    learned = learn_merges(text, vocab_size, pattern, special_tokens, progress)
    tok = Tokenizer(learned.merges, pattern=learned.pattern, special_tokens=learned.special_tokens, name=name)
    tok.training_stats = learned.report
    return tok


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load a saved tokenizer (folder or .model file); `Tokenizer.load` under another name."""
    return Tokenizer.load(path)
