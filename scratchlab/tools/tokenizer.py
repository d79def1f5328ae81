"""Agent tools for the BPE tokenizer: train_tokenizer, encode_text, decode_tokens, compare_tokenizers.

Thin adapters over `scratchlab.models.bpe`: validate, call the engine, register the artifact
(kind "tokenizer", saved under `<workspace>/tokenizers/<name>/`), and answer in a few lines.
Tokenizer references: an artifact id ("tokenizer-3"), a name, "last", or the built-in OpenAI
tokenizers "cl100k_base" (alias "gpt4") and "o200k_base" (alias "gpt4o").
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, model_validator

from scratchlab.datasets import load_text
from scratchlab.lab.create import new_artifact_folder
from scratchlab.models.bpe import NUM_BYTES, Tokenizer
from scratchlab.models.bpe import train_tokenizer as train
from scratchlab.models.bpe_compare import compare, reference_tokenizers
from scratchlab.models.tiktoken_compat import load_openai
from scratchlab.tools.base import Count, ToolContext, ToolError, lab_tool

MAX_SHOW_TOKENS = 40
MAX_DECODED_CHARS = 400
MAX_COMPARE_BYTES = 2_000_000  # compare_tokenizers measures at most this much of a dataset
MAX_VOCAB_SIZE = 100_000
KIND = "tokenizer"
BUILTIN = {"cl100k_base": "cl100k_base", "gpt4": "cl100k_base", "gpt-4": "cl100k_base",
           "o200k_base": "o200k_base", "gpt4o": "o200k_base", "gpt-4o": "o200k_base"}  # fmt: skip


class TrainTokenizerArgs(BaseModel):
    dataset: str = Field(
        default="shakespeare", description="Named dataset ('shakespeare') or a path to a text file or folder."
    )
    vocab_size: Count = Field(
        default=512,
        description="Total vocabulary size (its number of entries): 256 bytes + merges + special tokens, e.g. 512, 4096 or '2k'.",
    )
    num_merges: Count | None = Field(
        default=None,
        description="Number of BPE merges, when the request counts merges instead of the vocabulary: "
        "vocab_size becomes 256 + num_merges + special tokens ('300 merges' -> 556) unless a vocab_size is given.",
    )
    name: str | None = Field(
        default=None, description="Name for a new tokenizer; null for a free 'bpe<vocab_size>-<dataset>[-N]'."
    )
    pattern: Literal["gpt4", "gpt2", "none"] | None = Field(
        default="gpt4",
        description="Pre-tokenization split: 'gpt4' (GPT-4 style regex, default), 'gpt2' (GPT-2 style regex) or "
        "'none' (no regex pre-splitting at all, no pretokenization). A custom regex: `scratchlab tokenizer train --pattern`.",
    )
    special_tokens: list[str] | None = Field(
        default=None, description="Special tokens such as ['<|endoftext|>']; null for none."
    )

    @model_validator(mode="after")
    def _merges_set_the_vocabulary(self) -> TrainTokenizerArgs:
        """A count of merges fixes the vocabulary size, unless a vocabulary size other than the default
        is given too (then the stated vocabulary wins)."""
        if self.num_merges is not None and self.vocab_size == type(self).model_fields["vocab_size"].default:
            self.vocab_size = NUM_BYTES + self.num_merges + len(self.special_tokens or [])
        return self


class EncodeTextArgs(BaseModel):
    text: str = Field(description="The text to tokenize.")
    tokenizer: str = Field(
        default="last",
        description="Tokenizer id, name, 'last', or built in: 'cl100k_base' (GPT-4) or 'o200k_base' (GPT-4o).",
    )


class DecodeTokensArgs(BaseModel):
    ids: list[int] = Field(description="Token ids to turn back into text, e.g. [72, 101, 300].")
    tokenizer: str = Field(
        default="last",
        description="Tokenizer id, name, 'last', or built in: 'cl100k_base' (GPT-4) or 'o200k_base' (GPT-4o).",
    )


class CompareTokenizersArgs(BaseModel):
    tokenizer: str = Field(default="last", description="Our tokenizer to compare (id, name or 'last').")
    text: str | None = Field(default=None, description="Text to measure on; null to use a dataset.")
    dataset: str | None = Field(
        default=None,
        description="Dataset name or path to measure on; null for the tokenizer's training dataset.",
    )


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-.") or "tokenizer"


def _dataset_stem(dataset: str) -> str:
    return (
        "shakespeare"
        if dataset.strip().lower() == "shakespeare"
        else Path(dataset).stem or Path(dataset).name
    )


def resolve_tokenizer(ctx: ToolContext, ref: str):
    """(Tokenizer, label, artifact or None) for a reference; loaded tokenizers are cached in ctx."""
    key = (ref or "last").strip()
    if key.lower() in BUILTIN:
        name = BUILTIN[key.lower()]
        return load_openai(name), name, None
    try:
        art = ctx.registry.get_artifact(key, kind=KIND)
    except LookupError as e:
        raise ToolError(f"{e}. Train one with train_tokenizer, or use 'cl100k_base'.") from None
    cache = ctx.extras.setdefault("tokenizers", {})
    path = Path(art.path)
    stamp = (
        str(path),
        (path / "tokenizer.model").stat().st_mtime_ns if (path / "tokenizer.model").exists() else 0,
    )
    tok = cache.get(stamp)
    if tok is None:
        tok = Tokenizer.load(path)
        cache[stamp] = tok
    return tok, f"{art.name} ({art.id})", art


def tokenizer_name(registry, workspace, name: str | None, vocab_size: int, dataset: str) -> str:
    """The name to train under: `name` if given (refused if taken: `NameTaken`, before any training),
    else the first free "bpe<vocab_size>-<dataset stem>[-N]"."""
    if name:
        registry.check_name_free(KIND, _slug(name))
        return _slug(name)
    stem = _slug(f"bpe{vocab_size}-{_dataset_stem(dataset)}")
    return registry.free_name(KIND, stem, workspace.dir("tokenizers"))


def save_new_tokenizer(registry, workspace, tok, name: str, dataset: str, requested_vocab_size: int,
                       seconds: float, hf: bool = False):  # fmt: skip
    """Save `tok` to the new folder `tokenizers/<name>` and register it; returns (artifact, folder).

    Raises:
        NameTaken: the name or its folder is taken (nothing is overwritten).
        OutOfSpace: the disk filled up (no folder is left behind).
    """
    config = {"vocab_size": tok.vocab_size, "pattern": tok.pattern_name, "dataset": dataset,
              "special": list(tok.special_tokens), "requested_vocab_size": requested_vocab_size}  # fmt: skip
    metrics = {"compression_ratio": round(tok.training_stats["compression_ratio"], 4),
               "seconds": round(seconds, 3), "num_merges": tok.num_merges}  # fmt: skip
    folder = workspace.dir("tokenizers") / name
    with new_artifact_folder(registry, KIND, name, folder, retry="train the tokenizer again") as folder:
        tok.save(folder, hf=hf)
        art = registry.add_artifact(KIND, name, folder, config=config, metrics=metrics)
    return art, folder


def _fmt_list(items: list, limit: int = MAX_SHOW_TOKENS) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"


def make_tools(ctx: ToolContext) -> list[BaseTool]:
    @lab_tool("train_tokenizer", TrainTokenizerArgs)
    def train_tokenizer(args: TrainTokenizerArgs) -> str:
        """Train a byte-level BPE tokenizer on a dataset and save it as a lab artifact."""
        specials = list(args.special_tokens or [])
        if args.vocab_size < NUM_BYTES:
            raise ToolError(f"vocab_size {args.vocab_size} is below 256 (the byte alphabet); try 512 or 4096")
        if args.vocab_size > MAX_VOCAB_SIZE:
            raise ToolError(
                f"vocab_size {args.vocab_size} is too large for this lab (max {MAX_VOCAB_SIZE}); try 4096"
            )
        name = tokenizer_name(ctx.registry, ctx.workspace, args.name, args.vocab_size, args.dataset)
        text = load_text(args.dataset)
        t0 = time.perf_counter()
        tok = train(text, args.vocab_size, pattern=args.pattern or "gpt4", special_tokens=specials, name=name)
        seconds = time.perf_counter() - t0
        art, path = save_new_tokenizer(
            ctx.registry, ctx.workspace, tok, name, args.dataset, args.vocab_size, seconds
        )
        ratio = tok.training_stats["compression_ratio"]
        short = ""
        if tok.vocab_size < args.vocab_size:
            short = f" (the text ran out of pairs: only {tok.num_merges} merges)"
        return (
            f"Trained tokenizer {art.id} '{name}': vocab_size {tok.vocab_size}{short}, {tok.num_merges} merges, "
            f"pattern {tok.pattern_name}, compression {ratio:.2f} bytes/token on {args.dataset}, "
            f"{seconds:.1f}s. Saved to {path}."
        )

    @lab_tool("encode_text", EncodeTextArgs)
    def encode_text(args: EncodeTextArgs) -> str:
        """Tokenize text with a tokenizer: token ids and how the text is split."""
        tok, label, _ = resolve_tokenizer(ctx, args.tokenizer)
        ids = tok.encode(args.text, allowed_special="all")
        toks = [tok.token_str(i) for i in ids]
        nbytes = len(args.text.encode("utf-8"))
        shown = "|".join(toks[:MAX_SHOW_TOKENS]) + ("|..." if len(toks) > MAX_SHOW_TOKENS else "")
        return (
            f"{label}: {len(ids)} tokens for {nbytes} bytes ({nbytes / max(len(ids), 1):.2f} bytes/token).\n"
            f"ids: {_fmt_list([str(i) for i in ids])}\ntokens split by |: {shown}"
        )

    @lab_tool("decode_tokens", DecodeTokensArgs)
    def decode_tokens(args: DecodeTokensArgs) -> str:
        """Turn token ids back into text with a tokenizer."""
        tok, label, _ = resolve_tokenizer(ctx, args.tokenizer)
        text = tok.decode(args.ids)
        cut = text[:MAX_DECODED_CHARS] + ("..." if len(text) > MAX_DECODED_CHARS else "")
        return f"{label}: {len(args.ids)} ids -> {len(text)} chars: {cut!r}"

    @lab_tool("compare_tokenizers", CompareTokenizersArgs)
    def compare_tokenizers(args: CompareTokenizersArgs) -> str:
        """Compare a tokenizer with OpenAI's tokenizers, GPT-4's cl100k_base and GPT-4o's o200k_base: tokens and compression."""
        tok, label, art = resolve_tokenizer(ctx, args.tokenizer)
        if args.text:
            text, source = args.text, "the given text"
        else:
            dataset = args.dataset or (art.config.get("dataset") if art else None) or "shakespeare"
            text, source = load_text(dataset), f"dataset {dataset}"
            if len(text) > MAX_COMPARE_BYTES:
                text, source = (
                    text[:MAX_COMPARE_BYTES],
                    f"the first {MAX_COMPARE_BYTES // 1_000_000} MB of {source}",
                )
        refs = {k: v for k, v in reference_tokenizers().items() if k != label}
        report = compare({label: tok, **refs}, text)
        lines = [f"On {source} ({report['bytes']} bytes):"]
        for r in report["rows"]:
            if r["available"]:
                lines.append(
                    f"- {r['name']}: {r['tokens']} tokens, {r['compression_ratio']:.2f} bytes/token, vocab {r['vocab_size']}"
                )
            else:
                lines.append(f"- {r['name']}: {r['note']}")
        return "\n".join(lines)

    return [train_tokenizer, encode_text, decode_tokens, compare_tokenizers]
