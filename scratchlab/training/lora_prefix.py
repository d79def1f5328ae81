"""A long prompt prefix every example shares, evaluated once by the base (adapter off) and reused.

    fwd = CachedPrefix.build(peft_model, prefix_ids, examples)   # the base's KV cache of the prefix
    train = fwd.strip(train)                                     # examples without the shared tokens
    loss = lm_loss(fwd, batch, "hf")                             # the suffix, attending to the prefix

Why: the router's training examples all start with the same ~4.9k-token tool catalogue and differ in
the last ~40-90 tokens. Training through the catalogue costs a forward and backward pass over 5k
tokens per example (minutes on a 2-core CPU); with the catalogue's keys and values computed once,
without gradients, a step costs the suffix only (2-5 s per example for the 0.5B, measured with
`benchmarks/agent_tune.py`). The adapter then never sees the prefix, so the model it trains is
"prefix from the base, suffix through the adapter"; the runtime evaluates the catalogue the same way
(`scratchlab.agent.tuned_chat`: adapter off while the saved catalogue state is built), so training
and inference match exactly.

Source: prompt caching of a shared prefix (the KV cache reuse in `transformers`' `DynamicCache`, and
llama.cpp's saved session state); the LoRA update is Hu et al., 2021.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from scratchlab.training.lora_format import PREFIX_SLACK, LoraDataError, common_prefix_length


def shared_length(prefix_ids: Sequence[int], examples: Sequence[Any]) -> int:
    """How many leading tokens of `prefix_ids` every example starts with.

    Raises:
        LoraDataError: an example does not start with (all but the last PREFIX_SLACK tokens of) the prefix.
    """
    n = len(prefix_ids)
    for i, e in enumerate(examples):
        k = common_prefix_length([prefix_ids, e.input_ids])
        if k < len(prefix_ids) - PREFIX_SLACK:
            raise LoraDataError(
                f"example {i} does not start with the cached prefix (they part after token {k} of "
                f"{len(prefix_ids)}); every record must begin with the same system prompt"
            )
        n = min(n, k, len(e.input_ids) - 1)  # leave at least one token to run
    return n


class CachedPrefix(nn.Module):
    """A causal LM whose every input continues a fixed prefix, held as the base model's KV cache.

    Called like the model (`input_ids`, `attention_mask`, other keyword arguments passed on); the
    positions of the input start after the prefix. `disable_adapter()` and the module's parameters
    are the wrapped model's.

    Attributes:
        model: the PeftModel (or any transformers causal LM).
        n_prefix: tokens in the cached prefix.
    """

    def __init__(self, model: nn.Module, cache: Any, n_prefix: int) -> None:
        super().__init__()
        self.model = model
        self.cache = cache
        self.n_prefix = n_prefix

    @classmethod
    @torch.no_grad()
    def build(cls, model: nn.Module, prefix_ids: Sequence[int], examples: Sequence[Any]) -> CachedPrefix:
        """Evaluate the prefix every example shares with the adapter disabled.

        Args:
            model: a PeftModel (adapter disabled while the prefix runs) or a plain causal LM.
            prefix_ids: token ids of the shared prefix text.
            examples: tokenized examples (`lora_data.Example`), train and val.

        Raises:
            LoraDataError: an example does not start with the prefix.
        """
        n = shared_length(prefix_ids, examples)
        dev = next(model.parameters()).device
        ids = torch.tensor([list(prefix_ids[:n])], dtype=torch.long, device=dev)  # (1, n)
        was_training = model.training
        model.eval()
        off = model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
        with off:
            cache = model(input_ids=ids, use_cache=True).past_key_values
        model.train(was_training)
        return cls(model, cache, n)

    def strip(self, examples: Sequence[Any]) -> list[Any]:
        """The examples without their first `n_prefix` tokens (prompt tokens: nothing trained is lost)."""
        return [type(e)(e.input_ids[self.n_prefix :], e.labels[self.n_prefix :]) for e in examples]

    def disable_adapter(self):
        return self.model.disable_adapter()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any):
        B = input_ids.size(0)
        cache = copy.deepcopy(self.cache)  # the forward pass appends to it
        if B > 1:
            cache.batch_repeat_interleave(B)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        ones = torch.ones((B, self.n_prefix), dtype=attention_mask.dtype, device=attention_mask.device)
        return self.model(input_ids=input_ids, attention_mask=torch.cat([ones, attention_mask], 1),
                          past_key_values=cache, use_cache=True, **kwargs)  # fmt: skip
