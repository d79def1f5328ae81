"""A nanoGPT-class decoder-only transformer with switches for the classic ablations.

Token + learned position embeddings, pre-LN blocks, causal self-attention through
`F.scaled_dot_product_attention`, a 4x GELU MLP, weight tying between the token embedding and the
output head, and GPT-2 initialisation (normal(0, 0.02), residual projections scaled by
1/sqrt(2 * n_layer)). Linear layers keep nanoGPT's names (`c_attn`, `c_proj`, `c_fc`) so LoRA's
default `target_modules` find them.

Ablation switches (all off by default, each a real code path):
    pos_emb="none" | "rope"     no position information, or rotary embeddings on q/k (RoFormer)
    residual=False               blocks compute x = f(x) instead of x = x + f(x)
    layernorm=False              every LayerNorm becomes the identity
    activation="relu"            ReLU instead of GELU in the MLP
    mlp_ratio=2                  MLP hidden width = mlp_ratio * n_embd
    n_head=1                     a single attention head

    from scratchlab.models.gpt import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
    logits, loss = model(idx, targets)          # idx, targets: (B, T) int64
    out = model.generate(idx, max_new_tokens=100, temperature=0.8, top_k=40)   # KV-cached

Sources: Radford et al. 2019 (GPT-2); Vaswani et al. 2017; karpathy/nanoGPT `model.py`;
Su et al. 2021 (RoPE).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from scratchlab.models.sampling import generate

INIT_STD = 0.02
POS_EMB_KINDS = ("learned", "none", "rope")
ACTIVATIONS = ("gelu", "relu")
ROPE_BASE = 10000.0


@dataclass
class GPTConfig:
    """Model hyperparameters (saved in every checkpoint; unknown keys are rejected, missing ones defaulted)."""

    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # bias in Linear and LayerNorm (GPT-2 had them; without is a bit better and faster)
    # ablation switches
    pos_emb: str = "learned"  # "learned" | "none" | "rope"
    residual: bool = True
    layernorm: bool = True
    activation: str = "gelu"  # "gelu" | "relu"
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {v!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.pos_emb not in POS_EMB_KINDS:
            raise ValueError(f"pos_emb must be one of {POS_EMB_KINDS}, got {self.pos_emb!r}")
        if self.pos_emb == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"rope needs an even head size; n_embd/n_head = {self.n_embd // self.n_head}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.mlp_ratio <= 0 or int(self.mlp_ratio * self.n_embd) < 1:
            raise ValueError(f"mlp_ratio must be > 0, got {self.mlp_ratio!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPTConfig:
        """Build from a (possibly older) dict: missing keys take defaults, unknown keys raise ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown GPTConfig keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's cannot drop only the bias)."""

    def __init__(self, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


def rope_tables(
    seq_len: int, head_size: int, device=None, offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables for rotary embeddings, each (seq_len, head_size // 2), positions offset..offset+seq_len-1."""
    inv_freq = 1.0 / (
        ROPE_BASE ** (torch.arange(0, head_size, 2, device=device, dtype=torch.float32) / head_size)
    )
    t = torch.arange(offset, offset + seq_len, device=device, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)  # (T, hs/2)
    return freqs.cos(), freqs.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of the last dim. x: (B, nh, T, hs); cos/sin: (T, hs/2)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class KVCache:
    """Per-layer key/value buffers for incremental decoding. `pos` tokens are cached (same for all layers)."""

    def __init__(self, n_layer: int, batch: int, n_head: int, max_len: int, head_size: int, device, dtype):
        shape = (batch, n_head, max_len, head_size)
        self.k = [torch.empty(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.v = [torch.empty(shape, device=device, dtype=dtype) for _ in range(n_layer)]
        self.max_len = max_len
        self.pos = 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hs) after the cached ones; return all keys/values so far (B, nh, pos+T, hs)."""
        t = k.size(2)
        end = self.pos + t
        if end > self.max_len:
            raise ValueError(f"KV cache overflow: {end} tokens > max_len {self.max_len}")
        self.k[layer][:, :, self.pos : end] = k
        self.v[layer][:, :, self.pos : end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x, rope=None, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.size()
        nh, hs = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        dropout_p = self.dropout if self.training else 0.0
        if cache is None or cache.pos == 0:
            if cache is not None:
                cache.append(layer, k, v)
            if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
                # PyTorch's CPU flash-attention backward is 2-2.5x slower in bf16 than in fp32 at
                # these sizes (T=64, hs=32), while the matmuls around it gain 3x from bf16: attend in fp32.
                with torch.autocast("cpu", enabled=False):
                    y = F.scaled_dot_product_attention(
                        q.float(), k.float(), v.float(), dropout_p=dropout_p, is_causal=True
                    )
            else:
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:
            past = cache.pos
            k, v = cache.append(layer, k, v)  # (B, nh, past+T, hs)
            mask = None
            if T > 1:  # query i sees cached keys and new keys up to itself
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = int(config.mlp_ratio * config.n_embd)
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.act = nn.GELU() if config.activation == "gelu" else nn.ReLU()
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        norm = (lambda: LayerNorm(config.n_embd, config.bias)) if config.layernorm else nn.Identity
        self.ln_1 = norm()
        self.attn = CausalSelfAttention(config)
        self.ln_2 = norm()
        self.mlp = MLP(config)
        self.residual = config.residual

    def forward(self, x, rope=None, cache: KVCache | None = None, layer: int = 0):
        if self.residual:
            x = x + self.attn(self.ln_1(x), rope, cache, layer)
            return x + self.mlp(self.ln_2(x))
        x = self.attn(self.ln_1(x), rope, cache, layer)
        return self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The language model. See the module docstring for the architecture and switches."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        modules = dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, config.bias) if config.layernorm else nn.Identity(),
        )
        if config.pos_emb == "learned":
            modules["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2 * n_layer)
            if pn.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=INIT_STD / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (tied weights once); `non_embedding` subtracts the position table."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (and mean cross-entropy loss if `targets` is given).

        Args:
            idx: (B, T) int64 token ids, T + cached tokens <= block_size.
            targets: (B, T) int64 next-token ids; -1 entries are ignored.
            cache: a `KVCache` to read and extend (inference only); positions continue from `cache.pos`.
            last_only: return logits for the last position only, (B, 1, vocab) (generation).

        Returns:
            (logits (B, T, vocab_size) float, loss scalar or None).

        Raises:
            ValueError: if the sequence is longer than the position table allows.
        """
        B, T = idx.size()
        past = cache.pos if cache is not None else 0
        if past + T > self.config.block_size:
            raise ValueError(
                f"cannot forward {past + T} tokens: block_size is {self.config.block_size} (crop the context)"
            )
        x = self.transformer.wte(idx)  # (B, T, C)
        rope = None
        if self.config.pos_emb == "learned":
            pos = torch.arange(past, past + T, dtype=torch.long, device=idx.device)
            x = x + self.transformer.wpe(pos)  # (T, C) broadcast
        elif self.config.pos_emb == "rope":
            rope = self._rope(past, T, idx.device)
        x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            x = block(x, rope, cache, i)
        if cache is not None:
            cache.pos += T
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
            return logits, loss
        if last_only:
            x = x[:, -1:, :]
        return self.lm_head(x), None

    def _rope(self, offset: int, T: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        hs = self.config.n_embd // self.config.n_head
        cached = getattr(self, "_rope_cache", None)
        if cached is None or cached[0].device != torch.device(device) or cached[0].size(0) < offset + T:
            n = max(self.config.block_size, offset + T)
            cached = rope_tables(n, hs, device=device)
            self._rope_cache = cached
        return cached[0][offset : offset + T], cached[1][offset : offset + T]

    def new_cache(self, batch: int, device=None, dtype=None) -> KVCache:
        """An empty `KVCache` for `batch` sequences of up to block_size tokens."""
        c = self.config
        p = self.lm_head.weight
        return KVCache(c.n_layer, batch, c.n_head, c.block_size, c.n_embd // c.n_head,
                       device or p.device, dtype or p.dtype)  # fmt: skip

    def configure_optimizer(
        self, weight_decay: float, lr: float, betas: tuple[float, float], device_type: str = "cpu"
    ) -> torch.optim.AdamW:
        """AdamW with decay on matrices/embeddings (dim >= 2) only; fused kernels where available."""
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)
        except (RuntimeError, TypeError):  # older torch or unsupported device: the foreach kernel
            return torch.optim.AdamW(groups, lr=lr, betas=betas)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, **kw: Any) -> torch.Tensor:
        """Sample continuations; see `scratchlab.models.sampling.generate` for the options."""
        return generate(self, idx, max_new_tokens, **kw)
