"""GPT model: shapes, causality, init loss, ablation switches, KV-cache sampling, sampling filters."""

from __future__ import annotations

import math

import pytest
import torch

from scratchlab.models.gpt import GPT, GPTConfig
from scratchlab.models.sampling import filter_logits, generate

SWITCHES = {
    "no_pos_emb": {"pos_emb": "none"},
    "rope": {"pos_emb": "rope"},
    "no_residual": {"residual": False},
    "no_layernorm": {"layernorm": False},
    "relu": {"activation": "relu"},
    "mlp_ratio=2": {"mlp_ratio": 2},
    "n_head=1": {"n_head": 1},
}


def tiny(**kw) -> GPTConfig:
    base = dict(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32)
    return GPTConfig(**{**base, **kw})


def test_shapes_and_loss():
    torch.manual_seed(0)
    m = GPT(tiny())
    idx = torch.randint(0, 50, (3, 11))
    logits, loss = m(idx)
    assert logits.shape == (3, 11, 50) and loss is None
    logits, loss = m(idx, torch.randint(0, 50, (3, 11)))
    assert logits.shape == (3, 11, 50) and loss.dim() == 0
    last, _ = m(idx, last_only=True)
    assert last.shape == (3, 1, 50)
    torch.testing.assert_close(last[:, 0], logits[:, -1])


def test_too_long_sequence_raises():
    m = GPT(tiny())
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("switch", ["baseline", *SWITCHES])
def test_causality(switch):
    """Changing a future token never changes the logits of earlier positions."""
    torch.manual_seed(1)
    m = GPT(tiny(**SWITCHES.get(switch, {}))).eval()
    idx = torch.randint(0, 50, (2, 12))
    changed = idx.clone()
    changed[:, 8:] = (changed[:, 8:] + 7) % 50
    a, _ = m(idx)
    b, _ = m(changed)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_init_loss_close_to_uniform():
    torch.manual_seed(2)
    v = 65
    m = GPT(tiny(vocab_size=v, n_layer=4, n_embd=64))
    idx = torch.randint(0, v, (8, 16))
    targets = torch.randint(0, v, (8, 16))
    _, loss = m(idx, targets)
    assert abs(loss.item() - math.log(v)) < 0.1


def test_weight_tying_and_param_count():
    m = GPT(tiny())
    assert m.lm_head.weight is m.transformer.wte.weight
    c = m.config
    per_block = c.n_embd * 3 * c.n_embd + c.n_embd * c.n_embd + 2 * c.n_embd * 4 * c.n_embd + 2 * c.n_embd
    expected = c.vocab_size * c.n_embd + c.block_size * c.n_embd + c.n_layer * per_block + c.n_embd
    assert m.num_params() == expected
    assert m.num_params(non_embedding=True) == expected - c.block_size * c.n_embd


def test_residual_projection_init_is_scaled():
    torch.manual_seed(3)
    m = GPT(tiny(n_layer=8, n_embd=128))
    std_proj = m.transformer.h[0].attn.c_proj.weight.std().item()
    std_fc = m.transformer.h[0].mlp.c_fc.weight.std().item()
    assert std_proj == pytest.approx(0.02 / math.sqrt(16), rel=0.1)
    assert std_fc == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_each_switch_changes_the_forward(switch):
    """Same seed, same weights where shapes allow: the switch must change the logits (a real code path)."""
    idx = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(4))
    torch.manual_seed(5)
    base = GPT(tiny()).eval()
    torch.manual_seed(5)
    var = GPT(tiny(**SWITCHES[switch])).eval()
    # copy every parameter whose name and shape match, so only the switch differs
    bsd = base.state_dict()
    vsd = var.state_dict()
    vsd.update({k: v for k, v in bsd.items() if k in vsd and vsd[k].shape == v.shape})
    var.load_state_dict(vsd)
    a, _ = base(idx)
    b, _ = var(idx)
    assert a.shape == b.shape
    assert not torch.allclose(a, b, atol=1e-5)


def test_switch_structure():
    assert "wpe" not in GPT(tiny(pos_emb="none")).transformer
    assert "wpe" not in GPT(tiny(pos_emb="rope")).transformer
    assert isinstance(GPT(tiny(layernorm=False)).transformer.ln_f, torch.nn.Identity)
    assert isinstance(GPT(tiny(activation="relu")).transformer.h[0].mlp.act, torch.nn.ReLU)
    assert GPT(tiny(mlp_ratio=2)).transformer.h[0].mlp.c_fc.out_features == 64


@pytest.mark.parametrize(
    "kw", [{"n_embd": 30}, {"pos_emb": "alibi"}, {"activation": "swish"}, {"dropout": 1.0}, {"n_layer": 0}]
)
def test_bad_config_raises(kw):
    with pytest.raises(ValueError):
        tiny(**kw)


def test_config_from_dict_defaults_and_unknown_keys():
    c = GPTConfig.from_dict({"vocab_size": 10, "n_embd": 32, "n_head": 2})
    assert c.block_size == GPTConfig().block_size and c.pos_emb == "learned"
    with pytest.raises(ValueError, match="unknown"):
        GPTConfig.from_dict({"vocab_size": 10, "n_embdd": 3})


@pytest.mark.parametrize("switch", ["baseline", "rope", "no_pos_emb", "no_layernorm"])
def test_kv_cache_generation_equals_full_recompute(switch):
    torch.manual_seed(6)
    m = GPT(tiny(**SWITCHES.get(switch, {}))).eval()
    idx = torch.randint(0, 50, (2, 5))
    full = generate(m, idx, 11, temperature=0)
    cached = generate(m, idx, 11, temperature=0, use_cache=True)
    nocache = generate(m, idx, 11, temperature=0, use_cache=False)
    assert torch.equal(cached, nocache) and torch.equal(full, cached)
    # sampled (not greedy) with the same seed: identical too
    s1 = generate(m, idx, 11, temperature=1.0, seed=9, use_cache=True)
    s2 = generate(m, idx, 11, temperature=1.0, seed=9, use_cache=False)
    assert torch.equal(s1, s2)


def test_cached_logits_match_full_forward():
    torch.manual_seed(7)
    m = GPT(tiny()).eval()
    idx = torch.randint(0, 50, (1, 12))
    full, _ = m(idx)
    cache = m.new_cache(1)
    part, _ = m(idx[:, :7], cache=cache)
    rest = [m(idx[:, t : t + 1], cache=cache)[0] for t in range(7, 12)]
    torch.testing.assert_close(torch.cat([part, *rest], dim=1), full, atol=1e-5, rtol=1e-4)
    # a multi-token chunk appended after a cached prefix uses the explicit mask path
    cache = m.new_cache(1)
    m(idx[:, :4], cache=cache)
    chunk, _ = m(idx[:, 4:12], cache=cache)
    torch.testing.assert_close(chunk, full[:, 4:12], atol=1e-5, rtol=1e-4)


def test_generation_beyond_block_size():
    torch.manual_seed(8)
    m = GPT(tiny(block_size=8)).eval()
    idx = torch.randint(0, 50, (1, 20))  # prompt longer than block_size is cropped
    out = generate(m, idx, 30, temperature=1.0, seed=1)
    assert out.shape == (1, 50) and torch.equal(out[:, :20], idx)
    # the first new token only sees the last block_size tokens, as a full recompute would
    first_cached = generate(m, idx, 1, temperature=0)
    first_full = generate(m, idx, 1, temperature=0, use_cache=False)
    assert torch.equal(first_cached, first_full)


def test_seed_reproducible_and_eos_stops():
    torch.manual_seed(9)
    m = GPT(tiny()).eval()
    idx = torch.zeros(1, 1, dtype=torch.long)
    a = generate(m, idx, 20, temperature=1.0, seed=3)
    b = generate(m, idx, 20, temperature=1.0, seed=3)
    c = generate(m, idx, 20, temperature=1.0, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    eos = int(a[0, 5])  # stop at the token sampled at position 5 (with the same seed)
    stopped = generate(m, idx, 20, temperature=1.0, seed=3, eos_id=eos)
    first = int((a[0, 1:] == eos).nonzero()[0]) + 1
    assert stopped.size(1) == first + 1 and int(stopped[0, -1]) == eos
    assert m.training is False


def test_filter_logits_top_k_top_p():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0, -1.0]])
    k2 = filter_logits(logits, top_k=2)
    assert torch.isfinite(k2).sum() == 2 and torch.isfinite(k2[0, :2]).all()
    probs = torch.softmax(logits, -1)[0]  # ~[0.64, 0.23, 0.09, 0.03, 0.01]
    p = filter_logits(logits, top_p=0.8)
    assert torch.isfinite(p).sum() == 2  # 0.64 < 0.8, 0.64 + 0.23 >= 0.8
    assert probs[0] < 0.8 < probs[0] + probs[1]
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).sum() == 1  # the top token always stays
    assert torch.isfinite(filter_logits(logits, top_p=1.0)).all()
    with pytest.raises(ValueError):
        filter_logits(logits, top_p=0.0)
    with pytest.raises(ValueError):
        filter_logits(logits, top_k=0)


def test_top_k_1_is_greedy():
    torch.manual_seed(10)
    m = GPT(tiny()).eval()
    idx = torch.randint(0, 50, (1, 4))
    assert torch.equal(
        generate(m, idx, 8, temperature=1.3, top_k=1, seed=0), generate(m, idx, 8, temperature=0)
    )


def test_cpu_bf16_autocast_attends_in_fp32(monkeypatch):
    """Under CPU bf16 autocast the matmuls run in bf16 but attention gets fp32 q/k/v; logits stay close."""
    torch.manual_seed(2)
    m = GPT(tiny())
    idx = torch.randint(0, 50, (2, 16))
    ref, ref_loss = m(idx, idx)
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        seen.append((q.dtype, k.dtype, v.dtype))
        return sdpa(q, k, v, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = m(idx, idx)
    assert seen == [(torch.float32,) * 3] * 2  # both layers
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    torch.testing.assert_close(logits.float(), ref, atol=0.05, rtol=0.05)
    assert abs(loss.item() - ref_loss.item()) < 0.02
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in m.parameters())
