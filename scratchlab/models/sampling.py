"""Autoregressive sampling for `scratchlab.models.gpt.GPT`: temperature, top-k, top-p, seed, stop token.

With `use_cache=True` (default) the prompt is run once and every new token costs one single-position
forward over the cached keys/values, so the cost per token does not grow with the prompt. A context
longer than `block_size` is handled like nanoGPT (the model only ever sees the last `block_size`
tokens): the prompt is cropped to its last `block_size` tokens and, when the cache is full, it is
rebuilt from the last `block_size - block_size // CACHE_REFILL_DIV` tokens (amortised O(1) per token;
the visible context then varies between 3/4 and all of `block_size`).

    from scratchlab.models.sampling import generate
    out = generate(model, idx, max_new_tokens=200, temperature=0.8, top_k=40, seed=1, eos_id=None)

Sources: Holtzman et al. 2019 (nucleus sampling); karpathy/nanoGPT `generate`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CACHE_REFILL_DIV = 4  # when the cache is full, drop the oldest block_size // 4 tokens and re-prefill


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Mask logits outside the top-k and/or the top-p nucleus with -inf. logits: (B, V) float.

    Raises:
        ValueError: top_k < 1 or top_p outside (0, 1].
    """
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        k = min(int(top_k), logits.size(-1))
        kth = torch.topk(logits, k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if top_p < 1.0:
            sorted_logits, sorted_idx = torch.sort(logits, descending=True, dim=-1)
            probs = F.softmax(sorted_logits, dim=-1)
            # drop a token when the mass before it already reaches top_p (the top token always stays)
            drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
            drop = drop_sorted.scatter(-1, sorted_idx, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token ids (B, 1) int64 from last-position logits (B, V). temperature 0 = greedy."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


@torch.no_grad()
def generate(
    model,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    eos_id: int | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Extend `idx` (B, T) int64 by up to `max_new_tokens` sampled tokens; returns (B, T + n) int64.

    Generation stops early when every row has produced `eos_id` (which is kept in the output; rows that
    finished earlier are padded with `eos_id`). `seed` makes sampling reproducible (same seed, same
    text) without touching the global RNG.

    Raises:
        ValueError: an empty prompt, or bad temperature/top_k/top_p values.
    """
    if idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError(f"prompt must be a non-empty (B, T) tensor, got shape {tuple(idx.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    was_training = model.training
    model.eval()
    device = idx.device
    gen = None
    if seed is not None:
        gen = torch.Generator(device=device)
        gen.manual_seed(int(seed))
    block = model.config.block_size
    keep = block - max(1, block // CACHE_REFILL_DIV)
    out = idx
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=device)
    cache = None
    try:
        for _ in range(max_new_tokens):
            if not use_cache:
                logits, _ = model(out[:, -block:], last_only=True)
            elif cache is None or cache.pos >= block:  # first step, or the cache is full: (re)fill it
                ctx = out[:, -block:] if cache is None else out[:, -keep:]
                cache = model.new_cache(out.size(0))
                logits, _ = model(ctx, cache=cache, last_only=True)
            else:
                logits, _ = model(out[:, -1:], cache=cache, last_only=True)
            nxt = sample_next(logits[:, -1, :], temperature, top_k, top_p, gen)  # (B, 1)
            if eos_id is not None:
                nxt = torch.where(done.unsqueeze(1), torch.full_like(nxt, eos_id), nxt)
                done = done | (nxt.squeeze(1) == eos_id)
            out = torch.cat((out, nxt), dim=1)
            if eos_id is not None and bool(done.all()):
                break
    finally:
        model.train(was_training)
    return out
