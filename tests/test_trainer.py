"""GPT training: data prep, schedule, overfitting, checkpoint/resume, early stop, DDP == single process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scratchlab.training.data import CharTokenizer, DataError, load_meta, prepare_dataset
from scratchlab.training.trainer import (
    TrainConfig,
    TrainError,
    autocast_dtype,
    load_checkpoint,
    load_model,
    sample_from_checkpoint,
    split_micro_steps,
    train,
    want_compile,
)

TEXT = "".join(f"To be, or not to be, that is the question {i % 7}.\n" for i in range(300))


@pytest.fixture
def data_dir(tmp_path):
    src = tmp_path / "corpus.txt"
    src.write_text(TEXT, encoding="utf-8")
    prepare_dataset(str(src), "char", tmp_path / "data")
    return tmp_path / "data"


def cfg(data_dir, out, **kw) -> TrainConfig:
    base = dict(out_dir=str(out), data_dir=str(data_dir), block_size=16, n_layer=2, n_head=2, n_embd=32,
                batch_size=8, max_iters=20, warmup_iters=2, eval_interval=10, eval_iters=2, log_interval=5, lr=3e-3,
                num_threads=1, dtype="float32")  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_char_tokenizer_roundtrip_and_errors():
    tok = CharTokenizer.from_text("hello wörld\n")
    ids = tok.encode("wörld hello")
    assert tok.decode(ids) == "wörld hello"
    assert tok.vocab_size == len(set("hello wörld\n"))
    assert ids == [tok.stoi[c] for c in "wörld hello"]
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("zap")


def test_prepare_dataset_files_and_meta(tmp_path, data_dir):
    meta = load_meta(data_dir)
    assert meta.tokenizer == "char" and meta.dtype == "uint16"
    train_ids = np.fromfile(data_dir / "train.bin", dtype=np.uint16)
    val_ids = np.fromfile(data_dir / "val.bin", dtype=np.uint16)
    cut = int(len(TEXT) * 0.9)
    tok = CharTokenizer(meta.chars)
    assert tok.decode(train_ids.tolist()) == TEXT[:cut]
    assert tok.decode(val_ids.tolist()) == TEXT[cut:]
    assert meta.tokens("train") + meta.tokens("val") == len(TEXT)
    assert meta.bits_per_unit(math.log(2)) == pytest.approx(1.0)  # char level: 1 nat/ln2 per char


def test_load_meta_rejects_bad_files(tmp_path, data_dir):
    with pytest.raises(DataError, match="no meta.json"):
        load_meta(tmp_path)
    m = json.loads((data_dir / "meta.json").read_text())
    (data_dir / "meta.json").write_text(json.dumps({**m, "version": 99}))
    with pytest.raises(DataError, match="version 99"):
        load_meta(data_dir)
    (data_dir / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_meta(data_dir)


def test_lr_schedule():
    c = TrainConfig(lr=1e-3, warmup_iters=10, max_iters=110)
    assert c.lr_at(0) == pytest.approx(1e-3 / 11)
    assert c.lr_at(10) == pytest.approx(1e-3)
    assert c.lr_at(60) == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4))
    assert c.lr_at(110) == pytest.approx(1e-4) and c.lr_at(500) == pytest.approx(1e-4)
    assert all(c.lr_at(s) >= c.lr_at(s + 1) for s in range(10, 120))


def test_config_validation():
    with pytest.raises(TrainError, match="unknown"):
        TrainConfig.from_dict({"n_layers": 3})
    with pytest.raises(TrainError, match="batch_size"):
        TrainConfig.from_dict({"batch_size": 0})
    with pytest.raises(TrainError, match="divisible"):
        TrainConfig(n_embd=30, n_head=4).model_config(10)


def test_want_compile(monkeypatch):
    assert want_compile(True, 1) and not want_compile(False, 10**6)
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/" + name)
    assert not want_compile("auto", 999, "cuda")  # short runs: compiling costs more than it saves
    assert want_compile("auto", 5000, "cuda:0")
    assert not want_compile("auto", 5000, "cpu")  # on CPU the gain is smaller: it takes a longer run
    assert want_compile("auto", 20_000, "cpu")
    monkeypatch.setattr("shutil.which", lambda name: None)  # no C++ compiler: Inductor cannot build
    assert not want_compile("auto", 20_000, "cpu")
    with pytest.raises(TrainError, match="compile"):
        TrainConfig.from_dict({"compile": "yes"})


def test_autocast_dtype(monkeypatch):
    assert autocast_dtype("float32", "cpu") is None and autocast_dtype("bfloat16", "cpu") is torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert autocast_dtype("auto", "cpu") is None  # bf16 would be emulated here: slower than fp32
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert autocast_dtype("auto", "cpu") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert autocast_dtype("auto", "cuda") is None
    with pytest.raises(TrainError, match="bf16"):
        autocast_dtype("bfloat16", "cuda:0")
    with pytest.raises(TrainError, match="dtype"):
        TrainConfig.from_dict({"dtype": "float16"})


def test_bf16_autocast_training_keeps_fp32_weights(tmp_path, data_dir):
    fp32 = train(cfg(data_dir, tmp_path / "a", max_iters=60, eval_interval=30))
    bf16 = train(cfg(data_dir, tmp_path / "b", max_iters=60, eval_interval=30, dtype="bfloat16"))
    assert fp32["dtype"] == "float32" and bf16["dtype"] == "bfloat16"
    model, _ = load_model(tmp_path / "b" / "ckpt.pt")
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32
    assert bf16["val_loss"] < first_val_loss(tmp_path / "b") - 1.0  # it learns
    assert bf16["val_loss"] == pytest.approx(fp32["val_loss"], abs=0.15)  # and about as well as fp32
    ma, _ = load_model(tmp_path / "a" / "ckpt.pt")
    assert not torch.equal(ma.lm_head.weight, model.lm_head.weight)  # a different code path ran


def first_val_loss(run: Path) -> float:
    return json.loads((run / "history.json").read_text())["eval"][0]["val_loss"]


def test_auto_num_threads_counts_idle_cores(monkeypatch):
    from scratchlab.training import trainer

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(trainer, "_runnable_others", lambda: 0.0)
    assert trainer.auto_num_threads() == min(cores, trainer.TORCH_DEFAULT_THREADS)
    monkeypatch.setattr(trainer, "_runnable_others", lambda: float(cores + 3))
    assert trainer.auto_num_threads() == 1  # a busy machine still gets one thread


def test_failed_compile_falls_back_to_eager(tmp_path, data_dir, monkeypatch, capsys):
    class Broken(torch.nn.Module):  # what torch.compile returns when Inductor cannot build kernels
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args, **kwargs):
            raise RuntimeError("no compiler")

    def broken_compile(model, **kw):
        return Broken(model)

    monkeypatch.setattr(torch, "compile", broken_compile)
    res = train(cfg(data_dir, tmp_path / "run", compile=True))
    assert res["status"] == "done" and res["step"] == 20 and res["compiled"] is False
    assert "training eagerly" in capsys.readouterr().err


def test_split_micro_steps():
    assert split_micro_steps(12, 4, 2) == 2  # each rank: 2 micro batches of 12
    assert split_micro_steps(8, 1, 2) == 1  # each rank: one micro batch of 4
    assert split_micro_steps(8, 3, 2) == 3  # shard 12 = 3 micro batches of 4
    assert split_micro_steps(5, 1, 1) == 1


def test_tiny_model_overfits(tmp_path, data_dir):
    res = train(cfg(data_dir, tmp_path / "run", max_iters=150, eval_interval=50, n_embd=48))
    assert res["status"] == "done" and res["step"] == 150
    vocab = load_meta(data_dir).vocab_size
    assert res["train_loss"] < 0.5 * math.log(vocab)
    assert res["train_loss"] < 1.0  # the text is highly repetitive
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [e["step"] for e in hist["eval"]] == [0, 50, 100, 150]
    assert hist["eval"][-1]["val_loss"] < hist["eval"][0]["val_loss"] - 1.0
    assert Path(res["plot"]).exists() and Path(res["plot"]).stat().st_size > 1000
    assert res["bits_per_char"] == pytest.approx(res["val_loss"] / math.log(2))
    text = sample_from_checkpoint(tmp_path / "run", "To be", max_new_tokens=30, temperature=0.5, seed=0)
    assert len(text) == 30 and set(text) <= set(TEXT)


def test_checkpoint_resume_gives_same_next_steps(tmp_path, data_dir):
    """Train 20 steps in one go vs 10 + resume to 20: identical weights and losses (dropout on too)."""
    straight = train(cfg(data_dir, tmp_path / "a", max_iters=20, dropout=0.1))
    first = train(cfg(data_dir, tmp_path / "b", max_iters=10, lr_decay_iters=20, dropout=0.1))
    assert first["step"] == 10
    ck = load_checkpoint(tmp_path / "b" / "ckpt.pt")
    assert ck["step"] == 10 and "optimizer" in ck
    resumed = train(cfg(data_dir, tmp_path / "b", max_iters=20, dropout=0.1, resume=True))
    assert resumed["step"] == 20
    ma, _ = load_model(tmp_path / "a" / "ckpt.pt")
    mb, _ = load_model(tmp_path / "b" / "ckpt.pt")
    for (name, pa), pb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, msg=name)
    assert resumed["val_loss"] == pytest.approx(straight["val_loss"], abs=1e-6)
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [e["step"] for e in hb["eval"]] == [0, 10, 20]
    assert [round(e["val_loss"], 5) for e in ha["eval"]] == [round(e["val_loss"], 5) for e in hb["eval"]]


def test_resume_without_checkpoint_and_with_other_model(tmp_path, data_dir):
    with pytest.raises(TrainError, match="no checkpoint"):
        train(cfg(data_dir, tmp_path / "none", resume=True))
    train(cfg(data_dir, tmp_path / "r", max_iters=10))
    with pytest.raises(TrainError, match="differs"):
        train(cfg(data_dir, tmp_path / "r", max_iters=20, n_layer=3, resume=True))


def test_corrupt_checkpoint_is_reported(tmp_path):
    bad = tmp_path / "ckpt.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(TrainError, match="is truncated or damaged .*delete it and train the run again"):
        load_checkpoint(bad)
    (tmp_path / "best.pt").write_bytes(b"")
    with pytest.raises(TrainError, match=r"use the run's other checkpoint \(`cp .*best.pt .*ckpt.pt`\)"):
        load_checkpoint(bad)


def test_early_stop_on_target_loss(tmp_path, data_dir):
    res = train(cfg(data_dir, tmp_path / "t", max_iters=400, eval_interval=20, target_loss=2.5))
    assert res["status"] == "target"
    assert res["val_loss"] <= 2.5 and res["step"] < 400


class _StopAfter:
    def __init__(self, n):
        self.n, self.calls, self.stop_requested = n, 0, False

    def update(self, step, total, message="", **metrics):
        self.calls += 1
        if step >= self.n:
            self.stop_requested = True


def test_stop_request_saves_checkpoint(tmp_path, data_dir):
    rep = _StopAfter(10)
    res = train(cfg(data_dir, tmp_path / "s", max_iters=200, log_interval=1), rep)
    assert res["status"] == "cancelled" and 10 <= res["step"] < 200
    assert load_checkpoint(tmp_path / "s" / "ckpt.pt")["step"] == res["step"]
    done = train(cfg(data_dir, tmp_path / "s", max_iters=40, log_interval=1, resume=True))
    assert done["status"] == "done" and done["step"] == 40


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(tmp_path, data_dir):
    """torchrun --nproc_per_node=2 (gloo) with the same global batch follows the single-process curve."""
    kw = dict(max_iters=12, eval_interval=4, batch_size=8, grad_accum=2, log_interval=1)
    train(cfg(data_dir, tmp_path / "single", **kw))
    conf = cfg(data_dir, tmp_path / "ddp", **kw).to_dict()
    cpath = tmp_path / "ddp.json"
    cpath.write_text(json.dumps(conf))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "scratchlab.training.trainer",
                           "--config", str(cpath)], capture_output=True, text=True, timeout=240, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    hs = json.loads((tmp_path / "single" / "history.json").read_text())
    hd = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert [e["step"] for e in hd["eval"]] == [0, 4, 8, 12]
    for a, b in zip(hs["eval"], hd["eval"], strict=True):
        assert b["val_loss"] == pytest.approx(a["val_loss"], abs=2e-4)
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=2e-4)
    assert hs["eval"][-1]["val_loss"] < hs["eval"][0]["val_loss"]
    result = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert result["world_size"] == 2


def test_bpe_tokenizer_dataset_train_and_sample(tmp_path):
    from scratchlab.models.bpe import train_tokenizer

    tok = train_tokenizer(TEXT, vocab_size=300, special_tokens=["<|endoftext|>"])
    tok_dir = tok.save(tmp_path / "tok")
    src = tmp_path / "c.txt"
    src.write_text(TEXT + "<|endoftext|>" + TEXT[:500])
    meta = prepare_dataset(str(src), str(tok_dir), tmp_path / "data")
    assert meta.vocab_size == tok.vocab_size and meta.eot_id == tok.special_tokens["<|endoftext|>"]
    ids = np.concatenate(
        [np.fromfile(tmp_path / "data" / f"{s}.bin", dtype=np.uint16) for s in ("train", "val")]
    )
    assert meta.eot_id in ids.tolist()
    assert meta.tokens("train") < meta.splits["train"]["chars"]  # BPE compresses
    res = train(cfg(tmp_path / "data", tmp_path / "run", max_iters=10))
    assert res["bits_per_byte"] == pytest.approx(meta.bits_per_unit(res["val_loss"], "val", "bytes"))
    assert res["bits_per_byte"] < res["val_loss"] / math.log(2)
    text = sample_from_checkpoint(tmp_path / "run", "To be", max_new_tokens=8, seed=0)
    assert isinstance(text, str) and text


def test_an_empty_prompt_on_bpe_data_without_end_of_text_starts_from_a_newline(tmp_path, monkeypatch):
    """Id 0 (a NUL byte) was never trained on: a 1-layer run sampled from it wrote only '@'."""
    from scratchlab.models.bpe import train_tokenizer
    from scratchlab.models.gpt import GPT

    tok_dir = train_tokenizer(TEXT, vocab_size=280).save(tmp_path / "tok")
    src = tmp_path / "c.txt"
    src.write_text(TEXT)
    meta = prepare_dataset(str(src), str(tok_dir), tmp_path / "data")
    assert meta.eot_id is None
    train(cfg(tmp_path / "data", tmp_path / "run", max_iters=2))
    starts = []
    real = GPT.generate
    monkeypatch.setattr(
        GPT, "generate", lambda self, idx, *a, **k: starts.append(idx.tolist()) or real(self, idx, *a, **k)
    )
    sample_from_checkpoint(tmp_path / "run", "", max_new_tokens=4, seed=0)
    assert starts == [[[10]]]  # "\n" is byte 10
