"""Our BPE tokenizer as other libraries' objects: a HF `tokenizers.Tokenizer` and a `tiktoken.Encoding`.

    from scratchlab.models.bpe_export import to_hf, to_tiktoken
    hf = to_hf(tok); hf.save("tokenizer.json")         # or tok.to_hf()
    enc = to_tiktoken(tok); enc.encode_ordinary(text)   # or tok.to_tiktoken(): fast bulk encoding

Both read only a tokenizer's public state (`vocab`, `merges`, `special_tokens`, `inverse_special`,
`pattern`, `name`), so this module sits under `bpe.py` and the `Tokenizer` methods delegate here.

HF: a BPE model over GPT-2's byte-to-unicode alphabet, a regex Split + ByteLevel pre-tokenizer and a
ByteLevel decoder. tiktoken: ranks are the id of each token's bytes, so merge ids equal ranks.

Source: HF `tokenizers` JSON format, OpenAI GPT-2 `encoder.py` (`bytes_to_unicode`), openai/tiktoken
(`Encoding`).
"""

from __future__ import annotations

import re

import tiktoken
from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from scratchlab.models.bpe_base import NUM_BYTES, TokenizerError, TokenizerState

NONE_PATTERN_TIKTOKEN = r"[\s\S]+"  # tiktoken needs a pattern; "none" = the whole text is one chunk


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable Unicode characters."""
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    out, extra = {}, 0
    for b in range(NUM_BYTES):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(NUM_BYTES + extra)
            extra += 1
    return out


def onig_pattern(pattern: str) -> str:
    """`pattern` for HF's Oniguruma engine, where `X{1,3}+` is not possessive but "(X{1,3})+".

    The possessive bound `{n,m}+` becomes a plain greedy `{n,m}`; in the presets nothing follows
    it inside its alternative, so both match the same text.
    """
    return re.sub(r"(\{\d+(?:,\d*)?\})\+", r"\1", pattern)


def to_hf(tok: TokenizerState):
    """A Hugging Face `tokenizers.Tokenizer` that encodes like `tok` (special tokens as "all" allowed).

    Raises:
        TokenizerError: two ids have the same bytes (HF's vocab maps each string to one id).
    """
    b2u = bytes_to_unicode()

    def s(i: int) -> str:
        return "".join(b2u[b] for b in tok.vocab[i])

    vocab: dict[str, int] = {}
    for i in sorted(tok.vocab):
        if i in tok.inverse_special:
            continue
        key = s(i)
        if key in vocab:
            raise TokenizerError(
                f"ids {vocab[key]} and {i} have the same bytes; HF tokenizers cannot represent that"
            )
        vocab[key] = i
    for st, i in tok.special_tokens.items():
        vocab[st] = i
    merges = [(s(a), s(b)) for a, b in tok.merges]
    hf = HFTokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if tok.pattern is None:
        hf.pre_tokenizer = byte_level
    else:
        split = pre_tokenizers.Split(Regex(onig_pattern(tok.pattern)), behavior="isolated", invert=False)
        hf.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    hf.decoder = decoders.ByteLevel()
    if tok.special_tokens:
        hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in tok.special_tokens])
    return hf


def to_tiktoken(tok: TokenizerState):
    """A `tiktoken.Encoding` with `tok`'s ranks (id of each token's bytes), pattern and special tokens.

    Raises:
        TokenizerError: two ids have the same bytes (tiktoken ranks are keyed by bytes).

    Note: with a custom pattern that does not match every character, tiktoken drops the unmatched
    text while our encoder keeps it as chunks; the presets match everything.
    """
    ranks: dict[bytes, int] = {}
    for i, b in tok.vocab.items():
        if i in tok.inverse_special:
            continue
        if b in ranks:
            raise TokenizerError(
                f"ids {ranks[b]} and {i} have the same bytes {b!r}; tiktoken cannot represent that"
            )
        ranks[b] = i
    pattern = tok.pattern if tok.pattern is not None else NONE_PATTERN_TIKTOKEN
    return tiktoken.Encoding(name=tok.name or "scratchlab-bpe", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens=dict(tok.special_tokens))  # fmt: skip
