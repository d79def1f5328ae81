"""Export a peft LoRA adapter to llama.cpp's GGUF LoRA adapter format, so llama.cpp applies it at run
time over the shipped (quantized) GGUF base: `Llama(model_path=base_gguf, lora_path=adapter_gguf)`.

    from scratchlab.training.lora_gguf import export_adapter_gguf
    export_adapter_gguf("adapters/router-1", "adapters/router-1/adapter.gguf")

Format (as llama.cpp's `convert_lora_to_gguf.py` writes it, read by `llama-adapter.cpp`):
- metadata `general.architecture` (the base's, e.g. "qwen2" or "llama"), `general.type = "adapter"`,
  `adapter.type = "lora"`, `adapter.lora.alpha` (float32); llama.cpp scales B @ A by alpha / r, as
  peft does;
- per adapted Linear two tensors named after the base tensor: `blk.{i}.attn_q.weight.lora_a` with the
  torch shape (r, in) and `...lora_b` with (out, r) (GGUF stores dimensions reversed, so llama.cpp
  sees a->ne = (in, r), b->ne = (r, out));
- for the "llama" architecture the GGUF q/k weights are stored with their rows permuted for
  llama.cpp's rotary layout (`convert_hf_to_gguf.py` `LlamaModel.permute`); the same row permutation
  is applied to lora_b of q_proj/k_proj (lora_a is unchanged). Qwen2 stores q/k unpermuted.

Sources: ggml-org/llama.cpp `convert_lora_to_gguf.py`, `src/llama-adapter.cpp`, gguf-py `GGUFWriter`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from scratchlab.lab.atomic import atomic_path
from scratchlab.training.lora_config import LoraError
from scratchlab.training.lora_model import read_adapter_meta

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
# Hugging Face Linear name (last two components) -> GGUF tensor name in block i
HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
ARCHITECTURES = {"qwen2": "qwen2", "llama": "llama"}  # HF model_type -> GGUF architecture
PERMUTED = {"llama": ("attn_q", "attn_k")}  # architectures whose GGUF q/k rows are rotary-permuted
LORA_KEY = re.compile(r"(?:.*\.)?layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])(?:\.\w+)?\.weight$")


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row permutation (`convert_hf_to_gguf.py` LlamaModel.permute) on a (out, ...) matrix.

    Rows of each head are reordered from [first halves..., second halves...] (HF rotary layout) to
    interleaved pairs (GGUF). Args: w (out, k) with out divisible by 2 * n_head. Returns (out, k).
    """
    out = w.shape[0]
    return w.reshape(n_head, 2, out // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensor_name(hf_key: str) -> tuple[str, str]:
    """('blk.3.attn_q.weight', 'a') for a peft key '...layers.3.self_attn.q_proj.lora_A.weight'.

    Raises:
        LoraError: the key names a layer llama.cpp's adapter format has no tensor for.
    """
    m = LORA_KEY.match(hf_key)
    if not m or m.group(2) not in HF_TO_GGUF:
        raise LoraError(
            f"cannot export LoRA tensor {hf_key!r}: only {sorted(HF_TO_GGUF)} in decoder layers map to GGUF; "
            "train with target_modules among q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"
        )
    return f"blk.{m.group(1)}.{HF_TO_GGUF[m.group(2)]}.weight", m.group(3).lower()


def _base_config(adapter_dir: Path, base_dir: str | os.PathLike | None) -> dict[str, Any]:
    if base_dir is None:
        base_dir = read_adapter_meta(adapter_dir)["base"]["path"]
    cfg_path = Path(base_dir) / "config.json"
    if not cfg_path.is_file():
        raise LoraError(f"the adapter's base {base_dir} has no config.json; pass base_dir explicitly")
    return json.loads(cfg_path.read_text())


def export_adapter_gguf(
    adapter_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    base_dir: str | os.PathLike | None = None,
    dtype: str = "float32",
) -> Path:
    """Write the peft adapter in `adapter_dir` as a llama.cpp GGUF LoRA adapter (atomically).

    Args:
        adapter_dir: a peft adapter folder (`adapter_config.json` + `adapter_model.safetensors`).
        out_path: the .gguf to write; an existing file is replaced only by a complete new one.
        base_dir: the Hugging Face base folder (its config.json gives the architecture and head
            counts); default: the base recorded in the adapter's metadata (`read_adapter_meta`).
        dtype: "float32" or "float16" for the A/B tensors.

    Returns:
        `out_path`.

    Raises:
        LoraError: missing files, an architecture llama.cpp adapters are not mapped for here, or a
            LoRA tensor on a layer that has no GGUF name (embeddings, lm_head).
    """
    import gguf  # the writer is needed only for export
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    for f in (ADAPTER_WEIGHTS, ADAPTER_CONFIG):
        if not (adapter_dir / f).is_file():
            raise LoraError(f"{adapter_dir} is not a peft adapter folder ({f} missing)")
    lcfg = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    bcfg = _base_config(adapter_dir, base_dir)
    arch = ARCHITECTURES.get(bcfg.get("model_type", ""))
    if arch is None:
        raise LoraError(
            f"GGUF LoRA export supports {sorted(ARCHITECTURES)} bases, not {bcfg.get('model_type')!r}"
        )
    if lcfg.get("use_dora") or lcfg.get("rank_pattern") or lcfg.get("alpha_pattern"):
        raise LoraError(
            "GGUF LoRA export needs one plain rank and alpha for every layer (no DoRA, no patterns)"
        )
    alpha = float(lcfg["lora_alpha"])
    heads = {"attn_q": bcfg["num_attention_heads"],
             "attn_k": bcfg.get("num_key_value_heads", bcfg["num_attention_heads"])}  # fmt: skip
    np_dtype = {"float32": np.float32, "float16": np.float16}[dtype]
    tensors = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    out = []  # (gguf name, array)
    for key in sorted(tensors):
        name, ab = gguf_tensor_name(key)
        w = tensors[key].astype(np.float32)
        if ab == "b" and any(f".{p}." in name for p in PERMUTED.get(arch, ())):
            w = permute_rows(w, heads[name.split(".")[2]])
        out.append((f"{name}.lora_{ab}", np.ascontiguousarray(w.astype(np_dtype))))
    if not out:
        raise LoraError(f"{adapter_dir} holds no LoRA tensors")
    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".gguf") as tmp:
        w = gguf.GGUFWriter(str(tmp), arch)
        w.add_type(gguf.GGUFType.ADAPTER)
        w.add_string(gguf.Keys.Adapter.TYPE, "lora")
        w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for name, arr in out:
            w.add_tensor(name, arr)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return out_path
