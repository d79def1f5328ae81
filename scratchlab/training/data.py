"""Data preparation for GPT training: text -> token ids in uint16/uint32 files + a meta file.

A prepared dataset is a folder with `train.bin` and `val.bin` (raw little-endian token ids, uint16
when the vocabulary fits, else uint32; read back with `np.memmap`) and `meta.json` (format version,
source, tokenizer, vocab size, dtype, token/char/byte counts of each split, and for the char
tokenizer its alphabet). The split is contiguous: the first 90% of the text trains, the last 10%
validates (as nanoGPT's `shakespeare_char/prepare.py`).

    from scratchlab.training.data import prepare_dataset, load_meta, load_tokenizer
    meta = prepare_dataset("shakespeare", "char", out_dir)          # or a text path, or a tokenizer path
    tok = load_tokenizer(meta)                                      # .encode(str) / .decode(ids)

Tokenizers: "char" (one id per Unicode character of the corpus, sorted by code point) or the path of
a scratchlab BPE tokenizer (`scratchlab.models.bpe.Tokenizer.load(path)`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scratchlab.datasets import load_text
from scratchlab.lab.atomic import atomic_path, atomic_write_json

META_FORMAT = "scratchlab.gpt.data"
META_VERSION = 1
VAL_FRACTION = 0.1
EOT_TOKEN = "<|endoftext|>"


class DataError(ValueError):
    """A dataset folder is missing, malformed, or from an unknown format version."""


class CharTokenizer:
    """One id per character of a fixed alphabet (sorted code points)."""

    def __init__(self, chars: str | list[str]):
        self.chars = "".join(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.int64)

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def eot_id(self) -> int | None:
        return None

    def encode(self, text: str) -> list[int]:
        """Ids of `text`. Raises ValueError naming the first character outside the alphabet."""
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """Vectorised encode to an int64 array (the whole corpus in well under a second)."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        order = np.argsort(self._codes)
        sorted_codes = self._codes[order]
        pos = np.searchsorted(sorted_codes, codes).clip(max=len(sorted_codes) - 1)
        bad = sorted_codes[pos] != codes
        if bad.any():
            ch = chr(int(codes[np.argmax(bad)]))
            raise ValueError(
                f"character {ch!r} is not in this char tokenizer's alphabet ({self.vocab_size} chars)"
            )
        return order[pos]

    def decode(self, ids) -> str:
        n = len(self.chars)
        return "".join(self.chars[i] for i in ids if 0 <= i < n)


@dataclass
class DatasetMeta:
    """Contents of `meta.json` (plus the folder it came from)."""

    path: Path
    source: str
    tokenizer: str  # "char" or a tokenizer file path
    vocab_size: int
    dtype: str  # "uint16" | "uint32"
    splits: dict[str, dict[str, int]]  # split -> {"tokens", "chars", "bytes"}
    chars: str | None = None
    eot_id: int | None = None
    sha256: str = ""

    def tokens(self, split: str) -> int:
        return int(self.splits[split]["tokens"])

    def bits_per_unit(self, loss: float, split: str = "val", unit: str = "chars") -> float:
        """Convert a mean token loss (nats) to bits per character (`unit="chars"`) or per byte."""
        s = self.splits[split]
        return float(loss) * s["tokens"] / max(1, s[unit]) / np.log(2)

    def load_split(self, split: str, in_memory_max_bytes: int = 1 << 29) -> np.ndarray:
        """Token ids of `split` as a 1-D array (read into RAM when small, else a read-only memmap)."""
        f = self.path / f"{split}.bin"
        if not f.exists():
            raise DataError(f"missing {f}; re-run data preparation")
        arr = np.memmap(f, dtype=np.dtype(self.dtype), mode="r")
        if arr.size != self.tokens(split):
            raise DataError(
                f"{f} holds {arr.size} tokens but meta.json says {self.tokens(split)}; re-prepare it"
            )
        return np.array(arr) if arr.nbytes <= in_memory_max_bytes else arr


def load_tokenizer(spec: str | DatasetMeta):
    """A tokenizer from "char" (needs a meta with its alphabet) or a BPE tokenizer path.

    Raises:
        DataError: "char" without an alphabet, or an unreadable tokenizer file.
    """
    if isinstance(spec, DatasetMeta):
        if spec.tokenizer == "char":
            if spec.chars is None:
                raise DataError(f"{spec.path}/meta.json has no char alphabet")
            return CharTokenizer(spec.chars)
        spec = spec.tokenizer
    if spec == "char":
        raise DataError("the char tokenizer is built from a corpus; pass the dataset meta instead")
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"tokenizer file {spec!r} not found; give 'char' or the path of a trained tokenizer")
    from scratchlab.models.bpe import Tokenizer  # the BPE engine (scratchlab.models.bpe)

    return Tokenizer.load(path)


def tokenizer_eot_id(tok) -> int | None:
    """The end-of-text id of a tokenizer if it defines one."""
    eot = getattr(tok, "eot_id", None)
    if isinstance(eot, int):
        return eot
    specials = getattr(tok, "special_tokens", None) or {}
    if isinstance(specials, dict) and EOT_TOKEN in specials:
        return int(specials[EOT_TOKEN])
    return None


def encode_text(tok, text: str) -> list[int]:
    """Token ids of `text`; special-token strings in it (e.g. <|endoftext|>) become their ids."""
    try:
        return tok.encode(text, allowed_special="all")
    except TypeError:  # tokenizers without special-token options (CharTokenizer)
        return tok.encode(text)


def _encode(tok, text: str) -> np.ndarray:
    if hasattr(tok, "encode_array"):
        return tok.encode_array(text)
    return np.asarray(encode_text(tok, text), dtype=np.int64)


def prepare_dataset(
    source: str,
    tokenizer: str = "char",
    out_dir: str | Path = ".",
    val_fraction: float = VAL_FRACTION,
    text: str | None = None,
) -> DatasetMeta:
    """Tokenize `source` (a named dataset, file or folder) and write train/val ids + meta.json.

    Args:
        source: "shakespeare", a text file, or a folder of text files (see `scratchlab.datasets`).
        tokenizer: "char" or the path of a scratchlab BPE tokenizer.
        out_dir: folder to write (created); files are replaced atomically.
        val_fraction: share of the text (at the end) used for validation, in (0, 0.5].
        text: the text itself, if already loaded (skips `load_text(source)`).

    Returns:
        The `DatasetMeta` written.

    Raises:
        DatasetError / DataError: unknown source, empty text, bad tokenizer, text too short to split.
    """
    if not 0.0 < val_fraction <= 0.5:
        raise DataError(f"val_fraction must be in (0, 0.5], got {val_fraction}")
    text = load_text(source) if text is None else text
    n = len(text)
    cut = int(n * (1 - val_fraction))
    if n < 64 or cut == n:
        raise DataError(f"dataset {source!s} is too short ({n} characters) to split into train and val")
    parts = {"train": text[:cut], "val": text[cut:]}
    if tokenizer == "char":
        tok = CharTokenizer.from_text(text)
        chars = tok.chars
    else:
        tok = load_tokenizer(str(tokenizer))
        chars = None
    vocab_size = int(tok.vocab_size)
    dtype = "uint16" if vocab_size <= np.iinfo(np.uint16).max + 1 else "uint32"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, part in parts.items():
        ids = _encode(tok, part).astype(dtype)
        with atomic_path(out / f"{split}.bin") as tmp:
            ids.tofile(tmp)
        splits[split] = {"tokens": int(ids.size), "chars": len(part), "bytes": len(part.encode("utf-8"))}
    meta = {
        "format": META_FORMAT,
        "version": META_VERSION,
        "source": str(source),
        "tokenizer": "char" if tokenizer == "char" else str(Path(tokenizer).expanduser().resolve()),
        "vocab_size": vocab_size,
        "dtype": dtype,
        "splits": splits,
        "chars": chars,
        "eot_id": tokenizer_eot_id(tok),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
    atomic_write_json(out / "meta.json", meta)
    return load_meta(out)


def load_meta(path: str | Path) -> DatasetMeta:
    """Read `<path>/meta.json`. Raises DataError if missing, malformed or of a newer version."""
    path = Path(path)
    f = path / "meta.json"
    try:
        d: dict[str, Any] = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(f"{path} is not a prepared dataset (no meta.json)") from e
    except json.JSONDecodeError as e:
        raise DataError(f"{f} is not valid JSON ({e}); delete the folder and prepare it again") from e
    if d.get("format") != META_FORMAT or not isinstance(d.get("version"), int):
        raise DataError(f"{f} is not a scratchlab GPT dataset meta file")
    if d["version"] > META_VERSION:
        raise DataError(f"{f} has format version {d['version']}; this scratchlab reads up to {META_VERSION}")
    try:
        return DatasetMeta(
            path=path, source=d["source"], tokenizer=d["tokenizer"], vocab_size=int(d["vocab_size"]),
            dtype=d["dtype"], splits=d["splits"], chars=d.get("chars"), eot_id=d.get("eot_id"),
            sha256=d.get("sha256", ""),
        )  # fmt: skip
    except KeyError as e:
        raise DataError(f"{f} lacks key {e}; delete the folder and prepare it again") from e


def tokenizer_digest(tokenizer: str) -> str:
    """ "char", or the sha256 of a BPE tokenizer's saved `tokenizer.model` (its content, not its path)."""
    if tokenizer == "char":
        return "char"
    path = Path(tokenizer).expanduser()
    model = path / "tokenizer.model" if path.is_dir() else path
    try:
        return hashlib.sha256(model.read_bytes()).hexdigest()
    except OSError as e:
        raise DataError(
            f"tokenizer file {tokenizer!r} cannot be read ({e}); give 'char' or a trained tokenizer"
        ) from e


def dataset_key(source: str, tokenizer: str) -> str:
    """A stable folder name for (source, tokenizer): readable stem + short hash of the source and of the
    tokenizer's content (a tokenizer replaced at the same path never reuses stale token ids)."""
    h = hashlib.sha256(f"{source}\0{tokenizer_digest(tokenizer)}".encode()).hexdigest()[:8]
    stem = (
        "".join(c if c.isalnum() else "-" for c in Path(str(source)).name.lower())[:24].strip("-") or "data"
    )
    tstem = "char" if tokenizer == "char" else "bpe"
    return f"{stem}-{tstem}-{h}"


def ensure_dataset(source: str, tokenizer: str, root: str | Path) -> DatasetMeta:
    """The prepared dataset for (source, tokenizer) under `root`, preparing it if missing or stale.

    A named dataset is reused as is; a file/folder source is re-tokenized when its text changed.
    """
    out = Path(root) / dataset_key(source, tokenizer)
    if (out / "meta.json").exists():
        try:
            meta = load_meta(out)
        except DataError:
            meta = None
        if meta is not None and str(source).lower() == "shakespeare":
            return meta
        if meta is not None:
            text = load_text(source)
            if hashlib.sha256(text.encode("utf-8")).hexdigest() == meta.sha256:
                return meta
            return prepare_dataset(source, tokenizer, out, text=text)
    return prepare_dataset(source, tokenizer, out)
