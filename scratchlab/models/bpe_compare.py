"""Compare tokenizers on a text: token counts, compression ratio, and how each splits a sample.

    from scratchlab.models.bpe_compare import compare, reference_tokenizers
    refs = reference_tokenizers()              # {"cl100k_base": Tokenizer, "o200k_base": ..., "gpt2": None}
    report = compare({"mine": tok, **refs}, text)
    report["rows"]    # [{"name", "tokens", "compression_ratio", "available", "note"}]
    report["sample"]  # {"text": ..., "splits": {name: [token strings]}}

Compression ratio is UTF-8 bytes per token (higher = fewer tokens for the same text). Special-token
strings in the text are encoded as plain text. Counting uses each tokenizer's tiktoken path when
it has one (same ids as our encoder, much faster), else our encoder.
"""

from __future__ import annotations

from scratchlab.models.bpe import Tokenizer, TokenizerError
from scratchlab.models.tiktoken_compat import load_openai

REFERENCE_NAMES = ("cl100k_base", "o200k_base", "gpt2")
SAMPLE_CHARS = 160
UNAVAILABLE_NOTES = {
    "gpt2": "not available offline (no GPT-2 vocab ships in the installed packages)",
}


def reference_tokenizers() -> dict[str, Tokenizer | None]:
    """OpenAI tokenizers that ship offline (None with a note in `UNAVAILABLE_NOTES` when not)."""
    out: dict[str, Tokenizer | None] = {}
    for name in REFERENCE_NAMES:
        try:
            out[name] = load_openai(name)
        except TokenizerError as e:
            UNAVAILABLE_NOTES.setdefault(name, str(e))
            out[name] = None
    return out


def count_tokens(tok: Tokenizer, text: str) -> int:
    """Number of tokens of `text` (special-token strings as plain text), via tiktoken when possible."""
    enc = fast_encoder(tok)
    if enc is not None:
        return len(enc.encode_ordinary(text))
    return len(tok.encode_ordinary(text))


def fast_encoder(tok: Tokenizer):
    """The tokenizer's cached tiktoken Encoding, or None when it cannot have one.

    None also for the "none" preset: the whole text is one chunk, and tiktoken's merge loop is
    quadratic in the chunk length, while our encoder's heap merge is O(n log n).
    """
    if tok.pattern is None:
        return None
    if not hasattr(tok, "_tiktoken"):
        try:
            tok._tiktoken = tok.to_tiktoken()
        except (TokenizerError, ImportError, ValueError):
            tok._tiktoken = None
    return tok._tiktoken


def sample_of(text: str, n: int = SAMPLE_CHARS) -> str:
    """A representative sample: the first non-blank paragraph-ish stretch of `text`, n chars at most."""
    for para in text.split("\n\n"):
        para = para.strip()
        if len(para) >= 40:
            return para[:n]
    return text.strip()[:n]


def compare(tokenizers: dict[str, Tokenizer | None], text: str, sample: str | None = None) -> dict:
    """Token counts and compression ratios of several tokenizers on `text`.

    Args:
        tokenizers: display name -> Tokenizer (None = unavailable, reported with a note).
        text: the text to measure (non-empty).
        sample: a short text whose token splits are shown per tokenizer (default: from `text`).

    Returns:
        {"bytes": int, "rows": [...], "sample": {"text": str, "splits": {name: [str]}}}

    Raises:
        TokenizerError: empty text.
    """
    if not text:
        raise TokenizerError("cannot compare tokenizers on an empty text")
    nbytes = len(text.encode("utf-8"))
    sample = sample if sample is not None else sample_of(text)
    rows, splits = [], {}
    for name, tok in tokenizers.items():
        if tok is None:
            rows.append({"name": name, "available": False, "tokens": None, "compression_ratio": None,
                         "note": UNAVAILABLE_NOTES.get(name, "not available")})  # fmt: skip
            continue
        n = count_tokens(tok, text)
        rows.append({"name": name, "available": True, "tokens": n, "compression_ratio": nbytes / max(n, 1),
                     "vocab_size": tok.vocab_size, "note": ""})  # fmt: skip
        splits[name] = [tok.token_str(i) for i in tok.encode_ordinary(sample)]
    return {"bytes": nbytes, "rows": rows, "sample": {"text": sample, "splits": splits}}
