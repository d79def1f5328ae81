"""Tokenizer files: the versioned model file, the human-readable vocab view, and HF `tokenizers` JSON.

    tok.save("tokenizers/bpe512")            # -> bpe512/tokenizer.model, bpe512/tokenizer.vocab
    tok = Tokenizer.load("tokenizers/bpe512")  # or ".../tokenizer.model"
    spec = read("tokenizers/bpe512")         # the file's contents: Tokenizer(**spec.kwargs())

This module knows the format, not the class: it writes any tokenizer's public state and reads a
file back into a `TokenizerSpec` (the constructor's arguments). `Tokenizer.save`/`load`/`loads`
(in `bpe.py`, one floor up) delegate here, so the format never imports the class.

`tokenizer.model` (format v1, UTF-8, diffable line by line, like minbpe's `.model`):

    scratchlab-bpe v1
    {"byte_ids": null, "name": "...", "num_merges": 3, "pattern": "...", "pattern_name": "gpt4", "special_tokens": {"<|endoftext|>": 259}}
    97 97          <- merge 0: ids 97 and 97 become id 256
    256 98         <- merge 1 -> id 257
    ...

Line 1 is the magic and version, checked on load. Line 2 is a one-line JSON header (sorted keys;
`byte_ids` is null for the identity or the 256 base ids). Then exactly `num_merges` lines of two
ids. `tokenizer.vocab` is a view for people (id, printable token, the merge that made it) and is
never loaded back. `tokenizer.json` is the Hugging Face `tokenizers` export (`bpe_export.to_hf`).

Source: karpathy/minbpe `base.py` (save/load with a version line).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratchlab.lab.atomic import atomic_write_text
from scratchlab.models.bpe_base import NUM_BYTES, TokenizerFormatError, TokenizerState
from scratchlab.models.bpe_export import to_hf

MAGIC = "scratchlab-bpe"
FORMAT_VERSION = 1
MODEL_FILE = "tokenizer.model"
VOCAB_FILE = "tokenizer.vocab"
HF_FILE = "tokenizer.json"
HEADER_KEYS = ("byte_ids", "name", "num_merges", "pattern", "pattern_name", "special_tokens")


@dataclass(frozen=True)
class TokenizerSpec:
    """What a model file holds: the arguments of `Tokenizer(...)`, checked for form, not meaning.

    Attributes:
        merges: list of (int, int) id pairs in merge order.
        pattern: the split regex stored verbatim (None for "none"): a preset edited in a later
            version cannot change old files.
        special_tokens: dict str -> int.
        byte_ids: 256 base ids, or None for the identity.
        name: label.
        source: where it was read from (file path or "<string>"), for error messages.
    """

    merges: list[tuple[int, int]]
    pattern: str | None
    special_tokens: dict[str, int]
    byte_ids: list[int] | None
    name: str
    source: str = "<string>"

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `Tokenizer(...)`."""
        return {"merges": self.merges, "pattern": self.pattern, "special_tokens": self.special_tokens,
                "byte_ids": self.byte_ids, "name": self.name}  # fmt: skip


def model_path(path: str | os.PathLike) -> Path:
    """The .model file behind `path` (a folder holding tokenizer.model, or the file itself)."""
    p = Path(path).expanduser()
    return p / MODEL_FILE if p.is_dir() or not p.suffix else p


def dumps(tok: TokenizerState) -> str:
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


def vocab_view(tok: TokenizerState) -> str:
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


def save(tok: TokenizerState, path: str | os.PathLike, hf: bool = False) -> Path:
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


def parse(text: str, source: str = "<string>") -> TokenizerSpec:
    """Parse model file text (format v1). Raises TokenizerFormatError naming `source` and the line.

    Whether the merges and special tokens make a valid tokenizer is checked by `Tokenizer.loads`.
    """
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
    try:
        specials = {str(s): int(i) for s, i in dict(header["special_tokens"]).items()}
        byte_ids = None if header["byte_ids"] is None else [int(b) for b in header["byte_ids"]]
    except (TypeError, ValueError) as e:
        raise TokenizerFormatError(f"{source}: invalid tokenizer contents: {e}") from e
    return TokenizerSpec(merges=merges, pattern=header["pattern"], special_tokens=specials,
                         byte_ids=byte_ids, name=str(header.get("name") or ""), source=source)  # fmt: skip


def read(path: str | os.PathLike) -> TokenizerSpec:
    """Read and parse a model file from a folder (its tokenizer.model) or the .model file itself.

    Raises:
        TokenizerFormatError: missing file, not UTF-8, unsupported version, or malformed contents.
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
    return parse(text, str(p))


def save_hf(tok: TokenizerState, path: str | os.PathLike) -> Path:
    """Write the HF `tokenizers` JSON of `tok` to `path` atomically."""
    return atomic_write_text(path, to_hf(tok).to_str(pretty=True))
