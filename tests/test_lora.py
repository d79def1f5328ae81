"""LoRA engine on our GPT and on a tiny random Qwen2: zero-init, gradients, training, merge, save/load, resume."""

from __future__ import annotations

import pytest
import torch
from test_lora_helpers import alpaca_records, make_gpt_run, make_tiny_qwen, write_jsonl

from scratchlab.training import lora_data as D
from scratchlab.training.lora import (
    LoraError,
    LoraTrainConfig,
    add_lora,
    count_params,
    lm_logits,
    run_finetune,
)
from scratchlab.training.lora_adapters import attach_adapter, detach_adapters, merge_adapter, switch_adapter
from scratchlab.training.lora_base import BaseLoadError, load_base


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: tiny models run 10-30x faster on a shared, oversubscribed CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    return make_gpt_run(tmp_path_factory.mktemp("gpt"))


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return make_tiny_qwen(tmp_path_factory.mktemp("qwen"))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("data") / "toy.jsonl", alpaca_records(40))


def _batch(base, data_file, n=4):
    recs = D.read_records(data_file)[:n]
    return D.collate(D.tokenize_records(recs, base.fmt, base.max_len), base.fmt.pad_id)


def _cfg(base_kind, base_path, data_file, out_dir, **kw):
    kw = {
        "max_iters": 40,
        "batch_size": 8,
        "eval_generate": 0,
        "ckpt_interval": 0,
        "lr": 3e-3,
        "lora_dropout": 0.0,
        **kw,
    }
    return LoraTrainConfig(
        base_kind=base_kind, base_path=str(base_path), data=str(data_file), out_dir=str(out_dir), **kw
    )


@pytest.mark.parametrize("kind", ["gpt", "hf"])
def test_zero_init_lora_leaves_outputs_unchanged_and_only_adapters_get_grads(
    kind, gpt_run, qwen_dir, data_file
):
    base = load_base(kind, gpt_run if kind == "gpt" else qwen_dir)
    batch = _batch(base, data_file)
    with torch.no_grad():
        ref = lm_logits(base.model, batch, kind).clone()
    model = add_lora(base, LoraTrainConfig(base_kind=kind, r=4).resolved())
    model.eval()
    with torch.no_grad():
        out = lm_logits(model, batch, kind)
    assert torch.equal(out, ref)  # B = 0: exactly the base function
    model.train()
    logits = lm_logits(model, batch, kind)
    from scratchlab.training.lora import masked_lm_loss

    masked_lm_loss(logits, batch["labels"]).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    lora = {n for n, p in model.named_parameters() if "lora_" in n}
    assert with_grad == lora and lora
    assert any(float(p.grad.abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n)
    trainable, total = count_params(model)
    assert trainable == sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert 0 < trainable < total


def test_default_targets_and_bad_settings(gpt_run, data_file, tmp_path):
    base = load_base("gpt", gpt_run)
    model = add_lora(base, LoraTrainConfig(base_kind="gpt", r=2).resolved())
    names = {n.rsplit(".", 2)[-2] for n, _ in model.named_parameters() if "lora_A" in n}
    # peft names them <layer>.lora_A.<adapter>.weight; every attention/MLP projection is adapted
    wrapped = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if "lora_A" in n}
    assert wrapped == {"c_attn", "c_proj", "c_fc"}, names
    with pytest.raises(LoraError, match="not found"):
        add_lora(
            load_base("gpt", gpt_run), LoraTrainConfig(base_kind="gpt", target_modules=["q_proj"]).resolved()
        )
    for r in (0, -3):
        with pytest.raises(LoraError, match="r \\(LoRA rank\\)"):
            LoraTrainConfig(base_kind="gpt", r=r).resolved()
    with pytest.raises(BaseLoadError, match="does not exist"):
        load_base("gpt", tmp_path / "missing-run")
    with pytest.raises(BaseLoadError):
        load_base("gpt", tmp_path)  # a folder without a checkpoint
    with pytest.raises(D.LoraDataError):
        empty = tmp_path / "empty.jsonl"
        empty.write_text("\n")
        run_finetune(_cfg("gpt", gpt_run, empty, tmp_path / "a"))


def test_tiny_lora_run_lowers_val_loss_on_our_gpt_and_saves_a_loadable_adapter(gpt_run, data_file, tmp_path):
    out = tmp_path / "adapter"
    res = run_finetune(_cfg("gpt", gpt_run, data_file, out, eval_generate=2, max_new_tokens=8))
    assert res["status"] == "done"
    assert res["val_loss_after"] < res["val_loss_before"] - 0.3
    assert {"bleu_before", "rougeL_after"} <= set(res)
    assert (out / "adapter_model.safetensors").is_file() and (out / "lora_meta.json").is_file()
    assert not (out / "train_state.pt").exists()
    # round trip: a fresh base + the saved adapter reproduces the trained model's logits
    trained = res["model"]
    trained.eval()
    batch = _batch(res["base"], data_file)
    with torch.no_grad():
        want = lm_logits(trained, batch, "gpt")
        fresh = load_base("gpt", gpt_run)
        loaded = attach_adapter(fresh.model, out)
        got = lm_logits(loaded, batch, "gpt")
        base_only = lm_logits(load_base("gpt", gpt_run).model, batch, "gpt")
    assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(got, base_only, atol=1e-3)  # the adapter does change the model
    # merge: standalone weights reproduce the adapter outputs
    merged, diff = merge_adapter(loaded, batch, "gpt")
    assert diff < 1e-4
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        assert torch.allclose(lm_logits(merged, batch, "gpt"), want, atol=1e-4)


def test_cancel_keeps_a_checkpoint_and_resume_finishes(gpt_run, data_file, tmp_path):
    out = tmp_path / "adapter"
    steps = []
    cfg = _cfg("gpt", gpt_run, data_file, out, max_iters=12)
    res = run_finetune(cfg, on_progress=lambda p: steps.append(p.step), should_stop=lambda: len(steps) > 5)
    assert res["status"] == "cancelled" and (out / "train_state.pt").is_file()
    stopped_at = res["steps"]
    assert 0 < stopped_at < 12
    seen = []
    res2 = run_finetune(cfg, on_progress=lambda p: p.metrics and seen.append(p.step))
    assert res2["status"] == "done" and res2["steps"] == 12
    assert min(s for s in seen if s > 0) == stopped_at + 1  # continued, not restarted


def test_hf_base_train_merge_switch_and_4bit_refusal(qwen_dir, data_file, tmp_path):
    res = run_finetune(
        _cfg("hf", qwen_dir, data_file, tmp_path / "a1", max_iters=15, eval_generate=1, max_new_tokens=6)
    )
    assert res["val_loss_after"] < res["val_loss_before"]
    res2 = run_finetune(_cfg("hf", qwen_dir, data_file, tmp_path / "a2", max_iters=5, r=2, seed=3))
    base = load_base("hf", qwen_dir)
    batch = _batch(base, data_file)
    model = attach_adapter(base.model, tmp_path / "a1", "one")
    with torch.no_grad():
        one = lm_logits(model, batch, "hf")
        switch_adapter(model, tmp_path / "a2", "two")
        two = lm_logits(model, batch, "hf")
        switch_adapter(model, tmp_path / "a1", "one")
        assert torch.allclose(lm_logits(model, batch, "hf"), one)
        assert not torch.allclose(one, two)
    model.is_loaded_in_4bit = True  # what bitsandbytes sets; merging must refuse before touching weights
    with pytest.raises(LoraError, match="4-bit"):
        merge_adapter(model, batch, "hf")
    model.is_loaded_in_4bit = False
    with torch.no_grad():
        with model.disable_adapter():
            plain = lm_logits(model, batch, "hf")
        assert not torch.allclose(plain, one)
    merged, diff = merge_adapter(model, batch, "hf")
    assert diff < 1e-4
    assert res2["trainable_params"] < res["trainable_params"]  # r=2 vs r=8
    # unload: a fresh base with both adapters attached, then detached, is the base again
    fresh = load_base("hf", qwen_dir)
    with torch.no_grad():
        ref = lm_logits(fresh.model, batch, "hf")
        both = switch_adapter(attach_adapter(fresh.model, tmp_path / "a1", "one"), tmp_path / "a2", "two")
        bare = detach_adapters(both)
        assert not any("lora_" in n for n, _ in bare.named_parameters())
        assert torch.equal(lm_logits(bare, batch, "hf"), ref)


def test_ensure_base_is_cached_and_rejects_unknown_or_foreign_folders(tmp_path):
    from scratchlab.training.hf_base import BASE_META, BaseModelError, ensure_base, read_base_meta

    with pytest.raises(BaseModelError, match="unknown base 'gpt-5'"):
        ensure_base("gpt-5", tmp_path / "bases", tmp_path / "models")
    done = tmp_path / "bases" / "smollm2-135m"
    done.mkdir(parents=True)
    (done / BASE_META).write_text('{"format_version": 1, "name": "smollm2-135m"}')
    assert ensure_base("smollm2-135m", tmp_path / "bases", tmp_path / "models") == done  # no conversion
    assert read_base_meta(done)["name"] == "smollm2-135m"
    (done / BASE_META).write_text('{"format_version": 99}')
    with pytest.raises(BaseModelError, match="format 99"):
        read_base_meta(done)
    (tmp_path / "bases" / "qwen2.5-coder-0.5b").mkdir()
    with pytest.raises(BaseModelError, match="not a converted base"):
        ensure_base("qwen2.5-coder-0.5b", tmp_path / "bases", tmp_path / "models")


@pytest.mark.parametrize("kind", ["gpt", "hf"])
def test_answer_only_logits_give_the_same_loss_as_full_logits(kind, gpt_run, qwen_dir, data_file):
    from scratchlab.training.lora import lm_loss, masked_lm_loss

    base = load_base(kind, gpt_run if kind == "gpt" else qwen_dir)
    batch = _batch(base, data_file, n=5)
    with torch.no_grad():
        full = masked_lm_loss(lm_logits(base.model, batch, kind), batch["labels"], reduction="sum")
        fast = lm_loss(base.model, batch, kind, reduction="sum")
        # by hand: sum over trained positions of -log softmax(logits[t-1])[label[t]]
        logp = torch.log_softmax(lm_logits(base.model, batch, kind).float(), -1)
        lab = batch["labels"]
        want = -sum(
            float(logp[b, t - 1, lab[b, t]])
            for b in range(lab.size(0))
            for t in range(1, lab.size(1))
            if lab[b, t] != -100
        )
    assert float(full) == pytest.approx(want, rel=1e-5)
    assert float(fast) == pytest.approx(want, rel=1e-5)
