"""Tokenizer files: the versioned model file, the human-readable vocab view, and HF `tokenizers` JSON.

    from scratchlab.models.bpe_io import save, load, to_hf
    save(tok, "tokenizers/bpe512")           # -> bpe512/tokenizer.model, bpe512/tokenizer.vocab
    tok = load("tokenizers/bpe512")          # or load(".../tokenizer.model")
    hf = to_hf(tok); hf.save("tokenizer.json")

`tokenizer.model` (format v1, UTF-8, diffable line by line, like minbpe's `.model`):

    scratchlab-bpe v1
    {"byte_ids": null, "name": "...", "num_merges": 3, "pattern": "...", "pattern_name": "gpt4", "special_tokens": {"<|endoftext|>": 259}}
    97 97          <- merge 0: ids 97 and 97 become id 256
    256 98         <- merge 1 -> id 257
    ...

Line 1 is the magic and version, checked on load. Line 2 is a one-line JSON header (sorted keys;
`byte_ids` is null for the identity or the 256 base ids). Then exactly `num_merges` lines of two
ids. `tokenizer.vocab` is a view for people (id, printable token, the merge that made it) and is
never loaded back. `tokenizer.json` is the Hugging Face `tokenizers` export: a BPE model over GPT-2's
byte-to-unicode alphabet, a regex Split + ByteLevel pre-tokenizer and a ByteLevel decoder.

Source: karpathy/minbpe `base.py` (save/load with a version line), HF `tokenizers` JSON format,
OpenAI GPT-2 `encoder.py` (`bytes_to_unicode`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from scratchlab.lab.atomic import atomic_write_text
from scratchlab.models.bpe import NUM_BYTES, Tokenizer, TokenizerError, TokenizerFormatError

MAGIC = "scratchlab-bpe"
FORMAT_VERSION = 1
MODEL_FILE = "tokenizer.model"
VOCAB_FILE = "tokenizer.vocab"
HF_FILE = "tokenizer.json"
HEADER_KEYS = ("byte_ids", "name", "num_merges", "pattern", "pattern_name", "special_tokens")


def model_path(path: str | os.PathLike) -> Path:
    """The .model file behind `path` (a folder holding tokenizer.model, or the file itself)."""
    p = Path(path).expanduser()
    return p / MODEL_FILE if p.is_dir() or not p.suffix else p


def dumps(tok: Tokenizer) -> str:
    """The model file text of `tok` (format v1)."""
    identity = tok.byte_ids == tuple(range(NUM_BYTES))
    header = {
        "byte_ids": None if identity else list(tok.byte_ids),
        "name": tok.name,
        "num_merges": tok.num_merges,
        "pattern": tok.pattern,
        "pattern_name": tok.pattern_name,
        "special_tokens": tok.special_tokens,
    }
    lines = [f"{MAGIC} v{FORMAT_VERSION}", json.dumps(header, sort_keys=True, ensure_ascii=False)]
    lines.extend(f"{a} {b}" for a, b in tok.merges)
    return "\n".join(lines) + "\n"


def vocab_view(tok: Tokenizer) -> str:
    """The human-readable vocab listing: `id<TAB>[token]<TAB>[a] + [b]`, one line per id."""
    lines = [f"# {tok!r}", "# id\ttoken\tmerge (never loaded back; see tokenizer.model)"]
    parents = {i: p for p, i in tok.merges.items()}
    for i in sorted(tok.vocab):
        s = f"{i}\t[{tok.token_str(i)}]"
        if i in parents:
            a, b = parents[i]
            s += f"\t[{tok.token_str(a)}] + [{tok.token_str(b)}]"
        elif i in tok.inverse_special:
            s += "\t(special)"
        lines.append(s)
    return "\n".join(lines) + "\n"


def save(tok: Tokenizer, path: str | os.PathLike, hf: bool = False) -> Path:
    """Write `tok` into folder `path` atomically: tokenizer.model, tokenizer.vocab (+ tokenizer.json).

    Returns:
        the folder path.

    Raises:
        OSError: the folder cannot be written.
    """
    folder = Path(path).expanduser()
    if folder.suffix == ".model":
        folder = folder.parent
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / MODEL_FILE, dumps(tok))
    atomic_write_text(folder / VOCAB_FILE, vocab_view(tok))
    if hf:
        atomic_write_text(folder / HF_FILE, to_hf(tok).to_str(pretty=True))
    return folder


def loads(text: str, source: str = "<string>") -> Tokenizer:
    """Parse model file text (format v1). Raises TokenizerFormatError naming `source` and the line."""
    lines = text.split("\n")
    first = lines[0].strip() if lines else ""
    if first != f"{MAGIC} v{FORMAT_VERSION}":
        if first.startswith(MAGIC + " v"):
            raise TokenizerFormatError(
                f"{source}: tokenizer format {first.split()[-1]!r} is not supported; this scratchlab "
                f"reads v{FORMAT_VERSION}. Retrain it or upgrade scratchlab."
            )
        if first.startswith("minbpe"):
            raise TokenizerFormatError(f"{source}: this is a minbpe file ({first!r}); scratchlab reads its own "
                                       f"'{MAGIC} v{FORMAT_VERSION}' files")  # fmt: skip
        raise TokenizerFormatError(f"{source}: not a scratchlab tokenizer (first line {first[:60]!r}, "
                                   f"expected '{MAGIC} v{FORMAT_VERSION}')")  # fmt: skip
    try:
        header = json.loads(lines[1]) if len(lines) > 1 else None
    except json.JSONDecodeError as e:
        raise TokenizerFormatError(f"{source}:2: bad JSON header: {e}") from e
    if not isinstance(header, dict) or any(k not in header for k in HEADER_KEYS):
        missing = [k for k in HEADER_KEYS if not isinstance(header, dict) or k not in header]
        raise TokenizerFormatError(f"{source}:2: header is missing keys {missing}")
    n = header["num_merges"]
    body = [ln for ln in lines[2:] if ln.strip()]
    if not isinstance(n, int) or len(body) != n:
        raise TokenizerFormatError(f"{source}: header says {n} merges but the file has {len(body)} merge lines "
                                   "(truncated or edited file?)")  # fmt: skip
    merges = []
    for k, ln in enumerate(body):
        parts = ln.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise TokenizerFormatError(f"{source}:{k + 3}: expected two integer ids, got {ln!r}")
        merges.append((int(parts[0]), int(parts[1])))
    # the stored regex is used verbatim (a preset edited in a later version cannot change old files)
    pattern = header["pattern"]
    try:
        specials = {str(s): int(i) for s, i in dict(header["special_tokens"]).items()}
        return Tokenizer(merges, pattern=pattern, special_tokens=specials, byte_ids=header["byte_ids"],
                         name=str(header.get("name") or ""))  # fmt: skip
    except TokenizerFormatError:
        raise
    except (TokenizerError, TypeError, ValueError) as e:
        raise TokenizerFormatError(f"{source}: invalid tokenizer contents: {e}") from e


def load(path: str | os.PathLike) -> Tokenizer:
    """Load a tokenizer from a folder (its tokenizer.model) or a .model file.

    Raises:
        TokenizerFormatError: missing file, unsupported version, or malformed contents.
    """
    p = model_path(path)
    if not p.is_file():
        raise TokenizerFormatError(
            f"no tokenizer model file at {p} (expected a folder with {MODEL_FILE} or the file)"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TokenizerFormatError(f"{p}: not a UTF-8 text file ({e})") from e
    return loads(text, str(p))


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


def to_hf(tok: Tokenizer):
    """A Hugging Face `tokenizers.Tokenizer` that encodes like `tok` (special tokens as "all" allowed).

    Raises:
        TokenizerError: two ids have the same bytes (HF's vocab maps each string to one id).
    """
    from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

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


def save_hf(tok: Tokenizer, path: str | os.PathLike) -> Path:
    """Write the HF `tokenizers` JSON of `tok` to `path` atomically."""
    return atomic_write_text(path, to_hf(tok).to_str(pretty=True))
