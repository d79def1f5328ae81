"""Saved LoRA adapters: attach to a base, switch, detach, merge (verified) and generate.

    from scratchlab.training.lora_adapters import open_adapter, merge_to_folder, answer
    session = open_adapter("workspace/adapters/demo")          # loads its base, attaches the adapter
    answer(session, "What is Tomato? Answer in a few words.")   # greedy answer with the adapter
    with session.model.disable_adapter(): ...                   # the base alone
    switch_adapter(session.model, "workspace/adapters/other", "other")
    info = merge_to_folder("workspace/adapters/demo", "workspace/bases/demo-merged")

Merging (`peft`'s `merge_and_unload`) replaces W by W + (lora_alpha / r) B A in every target layer.
It is checked, not trusted: logits of the adapter model and of the merged model on a fixed batch
must agree to `MERGE_TOLERANCE` in float32 (the max abs difference is reported). A 4-bit (QLoRA)
base is refused: rounding the update into NF4 would change the outputs; dequantize first.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn

from scratchlab.lab.atomic import atomic_dir, atomic_write_json
from scratchlab.training import lora_data as D
from scratchlab.training.hf_base import BASE_FORMAT_VERSION, BASE_META
from scratchlab.training.lora_base import LoadedBase, load_base, save_gpt_run
from scratchlab.training.lora_eval import TEXT_METRICS, evaluate, generate_answer, side_by_side
from scratchlab.training.lora_model import (
    FOUR_BIT_MERGE_ERROR,
    MERGE_TOLERANCE,
    LoraError,
    LoraTrainConfig,
    lm_logits,
    read_adapter_meta,
)

MERGE_BATCH = 4  # sequences in the fixed batch used to verify a merge
FALLBACK_PROMPTS = (
    "What is a language model?",
    "Explain LoRA in one sentence.",
    "Say hello.",
    "Count to five.",
)


def attach_adapter(
    base_model: nn.Module, adapter_dir: str | os.PathLike, adapter_name: str = "default"
) -> nn.Module:
    """Load a saved adapter onto a base model; returns the `PeftModel` (eval mode).

    Raises:
        LoraError: the folder is not a scratchlab adapter or is from a newer format.
    """
    from peft import PeftModel  # peft is heavy: loaded when an adapter is opened

    read_adapter_meta(adapter_dir)
    model = PeftModel.from_pretrained(base_model, str(adapter_dir), adapter_name=adapter_name)
    model.eval()
    return model


def switch_adapter(peft_model: nn.Module, adapter_dir: str | os.PathLike, adapter_name: str) -> nn.Module:
    """Make `adapter_name` the active adapter, loading it from `adapter_dir` the first time."""
    if adapter_name not in peft_model.peft_config:
        read_adapter_meta(adapter_dir)
        peft_model.load_adapter(str(adapter_dir), adapter_name=adapter_name)
    peft_model.set_adapter(adapter_name)
    peft_model.eval()
    return peft_model


def detach_adapters(peft_model: nn.Module) -> nn.Module:
    """Remove every adapter and return the untouched base model (`PeftModel.unload`)."""
    return peft_model.unload()


def is_4bit(model: nn.Module) -> bool:
    """True when any weight of `model` is stored in 4 bits (bitsandbytes)."""
    for m in (model, getattr(model, "get_base_model", lambda: model)()):
        if getattr(m, "is_loaded_in_4bit", False):
            return True
    return any(p.__class__.__name__ == "Params4bit" for p in model.parameters())


def merge_adapter(peft_model: nn.Module, batch: dict, kind: str) -> tuple[nn.Module, float]:
    """Fold the active adapter into the base weights and check the result on `batch`.

    Args:
        peft_model: a `PeftModel` in float32/bf16 (not 4-bit).
        batch: dict with `input_ids` (B, T) int64 and `attention_mask` (B, T) to compare logits on.
        kind: "gpt" or "hf".

    Returns:
        (the merged plain model, max |logits_adapter - logits_merged| over real tokens).

    Raises:
        LoraError: the base is 4-bit (FOUR_BIT_MERGE_ERROR), or the difference exceeds MERGE_TOLERANCE.
    """
    if is_4bit(peft_model):
        raise LoraError(FOUR_BIT_MERGE_ERROR)
    peft_model.eval()
    with torch.no_grad():
        before = lm_logits(peft_model, batch, kind).float()
        merged = peft_model.merge_and_unload()
        after = lm_logits(merged, batch, kind).float()
    diff = (before - after).abs()
    mask = batch.get("attention_mask")
    if mask is not None:
        diff = diff * mask.to(diff.device).unsqueeze(-1)
    max_diff = float(diff.max())
    if not max_diff <= MERGE_TOLERANCE:
        raise LoraError(
            f"merged model differs from the adapter's outputs by {max_diff:.3g} (> {MERGE_TOLERANCE}); not saved"
        )
    return merged, max_diff


@dataclass
class AdapterSession:
    """A base with an adapter attached: `model` (PeftModel), `base` (LoadedBase), the adapter's meta."""

    model: nn.Module
    base: LoadedBase
    meta: dict[str, Any]
    adapter_dir: Path


def open_adapter(adapter_dir: str | os.PathLike, device: str = "cpu", base: LoadedBase | None = None,
                 adapter_name: str = "default") -> AdapterSession:  # fmt: skip
    """Load the adapter's base (from its meta, or `base` if given) and attach the adapter.

    Raises:
        LoraError: not an adapter folder; BaseLoadError: the base folder is gone.
    """
    meta = read_adapter_meta(adapter_dir)
    b = meta["base"]
    if base is None:
        base = load_base(b["kind"], b["path"], device, qlora=False)
    model = attach_adapter(base.model, adapter_dir, adapter_name)
    return AdapterSession(model, base, meta, Path(adapter_dir))


def fixed_batch(session: AdapterSession, n: int = MERGE_BATCH) -> dict:
    """A deterministic padded batch: the first `n` records of the adapter's data, else fixed prompts."""
    fmt, max_len = session.base.fmt, session.base.max_len
    examples: list[D.Example] = []
    data = session.meta.get("data", {}).get("path")
    if data and Path(data).is_file():
        try:
            recs = D.read_records(data)[:n]
            examples = D.tokenize_records(recs, fmt, max_len)
        except D.LoraDataError:
            examples = []
    if not examples:
        for p in FALLBACK_PROMPTS[:n]:
            ids = fmt.prompt_ids([{"role": "user", "content": p}])[:max_len]
            examples.append(D.Example(ids, ids))
    return D.collate(examples[:n], fmt.pad_id)


def merge_to_folder(
    adapter_dir: str | os.PathLike, out_dir: str | os.PathLike, device: str = "cpu"
) -> dict[str, Any]:
    """Merge an adapter into a copy of its base and save it as a standalone model.

    An `hf` base becomes a Hugging Face folder (weights, tokenizer, chat template); a `gpt` base
    becomes a GPT run folder (`ckpt.pt` + `config.json`). Written atomically (temp folder, rename).

    Returns:
        dict: kind ("hf" | "gpt"), path, max_abs_diff, batch_shape, base.

    Raises:
        LoraError: 4-bit base, failed verification, or `out_dir` already exists.
    """
    out = Path(out_dir)
    if out.exists():
        raise LoraError(f"{out} already exists; remove it or pick another name")
    session = open_adapter(adapter_dir, device)
    batch = {k: v.to(device) for k, v in fixed_batch(session).items()}
    merged, diff = merge_adapter(session.model, batch, session.base.kind)
    extra = {"merged_from": str(adapter_dir), "merge_max_abs_diff": diff}
    with atomic_dir(out) as tmp:
        if session.base.kind == "hf":
            merged.save_pretrained(tmp, safe_serialization=True)
            session.base.tokenizer.save_pretrained(tmp)
            src_meta = {}
            if (session.base.path / BASE_META).is_file():
                src_meta = json.loads((session.base.path / BASE_META).read_text())
            info = {**src_meta, "format_version": BASE_FORMAT_VERSION, "name": out.name, **extra}
            (tmp / BASE_META).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        else:
            save_gpt_run(merged.gpt, session.base, tmp, extra)
    if session.base.kind == "gpt":  # the run's config.json names its folder
        cfg_path = out / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["out_dir"] = str(out)
        atomic_write_json(cfg_path, cfg)
    return {"kind": session.base.kind, "path": str(out), "max_abs_diff": diff,
            "batch_shape": list(batch["input_ids"].shape), "base": session.meta["base"]}  # fmt: skip


def answer(session: AdapterSession, prompt: str, max_new_tokens: int = 128, use_adapter: bool = True) -> str:
    """Greedy answer to one user message, with the adapter (or the base alone when `use_adapter` is False)."""
    ctx = contextlib.nullcontext() if use_adapter else session.model.disable_adapter()
    with ctx:
        return generate_answer(
            session.model, session.base, [{"role": "user", "content": prompt}], max_new_tokens
        )


def evaluate_adapter(
    adapter_dir: Any, data: Any = None, n_generate: int = 8, device: str = "cpu"
) -> dict[str, Any]:
    """Re-evaluate a saved adapter against its base on the val split of its data (or of `data`).

    Returns:
        dict: val_loss/val_ppl/bleu/rouge1/rougeL with `_before` (base) and `_after` (adapter)
        suffixes, samples (side by side), n_val.
    """
    session = open_adapter(adapter_dir, device)
    cfg = LoraTrainConfig.from_dict(session.meta["config"])
    records = D.read_records(data or cfg.data)
    examples = D.tokenize_records(records, session.base.fmt, cfg.max_len or session.base.max_len)
    _, val = D.split_examples(examples, cfg.val_fraction, cfg.seed)
    chat = [r for r in records if r.is_chat]
    val_records = D.split_records(chat, cfg.val_fraction, cfg.seed)[1] if len(chat) >= 2 else []
    ecfg = SimpleNamespace(
        batch_size=cfg.batch_size, eval_iters=0, eval_generate=n_generate, max_new_tokens=cfg.max_new_tokens
    )
    dev = torch.device(device)
    before = evaluate(session.model, session.base, val, val_records, ecfg, dev, adapter=False)
    after = evaluate(session.model, session.base, val, val_records, ecfg, dev, adapter=True)
    out: dict[str, Any] = {"n_val": len(val)}
    for k in ("val_loss", "val_ppl", *TEXT_METRICS):
        if k in before:
            out[f"{k}_before"], out[f"{k}_after"] = before[k], after[k]
    out["samples"] = side_by_side(before.get("generations", []), after.get("generations", []))
    return out
