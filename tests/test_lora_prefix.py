"""The cached prefix of the router tune: the suffix's loss through the base's KV cache of a shared prompt."""

from __future__ import annotations

import pytest
import torch

from scratchlab.training import lora_data as D
from scratchlab.training.lora_base import load_base
from scratchlab.training.lora_batches import collate
from scratchlab.training.lora_config import LoraTrainConfig
from scratchlab.training.lora_format import LoraDataError
from scratchlab.training.lora_model import add_lora, lm_loss
from scratchlab.training.lora_prefix import CachedPrefix
from tests.test_lora_helpers import make_tiny_qwen

SYSTEM = "You route requests to tools. " * 6  # the shared prompt every record starts with
REQUESTS = [("train a tokenizer", "tok"), ("sample from the model please", "sample"), ("hi", "answer")]


def _setup(tmp_path):
    torch.manual_seed(0)
    path = make_tiny_qwen(tmp_path)
    base = load_base("hf", path)
    cfg = LoraTrainConfig(base_kind="hf", base_path=str(path), data="x", out_dir=str(tmp_path / "o"), r=4,
                          lora_dropout=0.0).resolved()  # fmt: skip
    model = add_lora(base, cfg)
    for name, p in model.named_parameters():  # a trained-looking adapter: B != 0, so it changes outputs
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    records = [D.record_from_json({"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q},
                                               {"role": "assistant", "content": a}]}, "t") for q, a in REQUESTS]  # fmt: skip
    examples = D.tokenize_records(records, base.fmt, 512, D.TokenizeReport())
    prefix_ids = base.fmt.encode(f"<|im_start|>system\n{SYSTEM}".rstrip())
    return base, model, examples, prefix_ids


def test_suffix_loss_equals_full_sequence_loss_and_trains_the_adapter(tmp_path):
    base, model, examples, prefix_ids = _setup(tmp_path)
    model.eval()
    fwd = CachedPrefix.build(model, prefix_ids, examples)
    assert len(prefix_ids) - 2 <= fwd.n_prefix <= len(prefix_ids)
    short = fwd.strip(examples)
    assert all(
        len(s) == len(e) - fwd.n_prefix and s.n_trained == e.n_trained
        for s, e in zip(short, examples, strict=True)
    )
    full, cut = collate(examples, base.fmt.pad_id), collate(short, base.fmt.pad_id)  # padded batches of 3
    with torch.no_grad(), model.disable_adapter():  # the base alone: caching the prefix changes nothing
        assert float(lm_loss(fwd, cut, "hf")) == pytest.approx(float(lm_loss(model, full, "hf")), rel=1e-4)
    with torch.no_grad():  # the adapter on the suffix only differs from the adapter everywhere ...
        assert abs(float(lm_loss(fwd, cut, "hf")) - float(lm_loss(model, full, "hf"))) > 1e-4
        one = [float(lm_loss(fwd, collate([s], base.fmt.pad_id), "hf", reduction="sum")) for s in short]
        assert sum(one) == pytest.approx(
            float(lm_loss(fwd, cut, "hf", reduction="sum")), rel=1e-4
        )  # ... padding doesn't
    lm_loss(fwd, cut, "hf").backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_" in n]
    assert grads and all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    assert fwd.cache.get_seq_length() == fwd.n_prefix  # every forward works on a copy of the cache


def test_records_that_do_not_share_the_prefix_are_refused(tmp_path):
    base, model, examples, prefix_ids = _setup(tmp_path)
    other = base.fmt.encode("<|im_start|>system\nsomething else entirely, not the router's prompt")
    with pytest.raises(LoraDataError, match="does not start with the cached prefix"):
        CachedPrefix.build(model, other, examples)
