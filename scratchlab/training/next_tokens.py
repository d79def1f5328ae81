"""Next-token choices of a Hugging Face (peft) model and of llama.cpp on the same prompts, to check that
an exported GGUF adapter (`scratchlab.training.lora_gguf`) reproduces the peft model.

    hf = hf_next_tokens(peft_model, tokenizer, prompts)        # [token id] per prompt (greedy)
    cpp = llama_next_tokens(Llama(model_path=base, lora_path=adapter), prompts)
    print(agreement(hf, cpp))                                   # share of prompts with the same choice

Prompts that share a long prefix (the router's ~4.9k-token tool catalogue) are cheap: the prefix is
evaluated once (a copied KV cache in transformers; llama.cpp keeps the longest common prefix, as
`llama-cpp-python` does between calls).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from scratchlab.training.lora_format import PREFIX_SLACK, common_prefix_length


def hf_next_tokens(model: Any, tokenizer: Any, prompts: Sequence[str], base_prefix: str = "") -> list[int]:
    """Greedy next token (argmax of the last position's logits) after each prompt.

    Args:
        model: a causal LM (plain or peft), in eval mode, on CPU or CUDA.
        tokenizer: its tokenizer; prompts are encoded without added special tokens (they are in the text).
        prompts: full prompt texts.
        base_prefix: text every prompt starts with that runs with the adapter disabled, as a router
            tune trained it (`scratchlab.training.lora_prefix`); "" runs everything through the model.

    Returns:
        One token id per prompt.
    """
    import torch  # heavy: only when a check runs

    dev = next(model.parameters()).device
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    n = min(common_prefix_length(ids), min(len(s) for s in ids) - 1)
    off = contextlib.nullcontext()
    if base_prefix:
        want = tokenizer(base_prefix, add_special_tokens=False)["input_ids"][:-PREFIX_SLACK]
        n = min(n, common_prefix_length([want, ids[0]]))
        off = model.disable_adapter()
    out = []
    with torch.no_grad():
        cache = None
        if n > 0:
            with off:
                cache = model(
                    input_ids=torch.tensor([ids[0][:n]], device=dev), use_cache=True
                ).past_key_values
        for s in ids:
            past = copy.deepcopy(cache) if cache is not None else None
            logits = model(
                input_ids=torch.tensor([s[n:]], device=dev), past_key_values=past, use_cache=True
            ).logits
            out.append(int(logits[0, -1].argmax()))
    return out


def llama_last_logits(llm: Any, prompts: Sequence[str], base_prefix: str = "") -> np.ndarray:
    """Logits after each prompt in a `llama_cpp.Llama` (reusing the longest cached prefix): (N, n_vocab) float32.

    `base_prefix`: text every prompt starts with, evaluated with the `Llama`'s LoRA adapter detached
    (`scratchlab.agent.llama_runtime.adapter_off`), as the runtime evaluates a tuned router's catalogue.
    """
    from scratchlab.agent.llama_runtime import adapter_off

    want = llm.tokenize(base_prefix.encode("utf-8"), special=True)[:-PREFIX_SLACK] if base_prefix else []
    out = []
    for p in prompts:
        toks = llm.tokenize(p.encode("utf-8"), special=True)
        n = common_prefix_length([llm.input_ids[: llm.n_tokens].tolist(), toks])
        if want and n < len(want):
            llm.n_tokens = n
            with adapter_off(llm):
                llm.eval(want[n:])
            n = len(want)
        llm.n_tokens = min(n, len(toks) - 1)
        llm.eval(toks[llm.n_tokens :])
        out.append(np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).copy())
    return np.stack(out)


def llama_next_tokens(llm: Any, prompts: Sequence[str], base_prefix: str = "") -> list[int]:
    """Greedy next token after each prompt in a `llama_cpp.Llama` (see `llama_last_logits`)."""
    return [int(i) for i in llama_last_logits(llm, prompts, base_prefix).argmax(1)]


def agreement(a: Sequence[int], b: Sequence[int]) -> float:
    """Share of positions where two choice lists agree (0..1).

    Raises:
        ValueError: the lists differ in length or are empty.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"cannot compare {len(a)} choices with {len(b)}")
    return float(np.mean([x == y for x, y in zip(a, b, strict=True)]))


def load_llama(base_gguf: str | os.PathLike, lora_gguf: str | os.PathLike | None = None, n_ctx: int = 8192,
               n_threads: int = 1) -> Any:  # fmt: skip
    """A `llama_cpp.Llama` on `base_gguf`, with the GGUF LoRA adapter `lora_gguf` applied when given."""
    from llama_cpp import Llama  # heavy: only when a check runs

    kw = {"lora_path": str(lora_gguf)} if lora_gguf else {}
    return Llama(model_path=str(base_gguf), n_ctx=n_ctx, n_threads=n_threads, verbose=False, **kw)
