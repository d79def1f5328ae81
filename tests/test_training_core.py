"""The training core shared by the GPT and LoRA trainers, and the run settings generated from the configs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from test_lora_helpers import alpaca_records, make_gpt_run, write_jsonl

from scratchlab.training import settings
from scratchlab.training.errors import TrainError
from scratchlab.training.estimate import count_evals, time_steps, total_seconds
from scratchlab.training.gpt_config import TrainConfig
from scratchlab.training.lora import lr_at as lora_lr_at
from scratchlab.training.lora_config import LoraError, LoraTrainConfig
from scratchlab.training.schedule import warmup_cosine


# ---- schedule ---------------------------------------------------------------------------------
def test_warmup_cosine_worked_example():
    # lr 1.0, 4 warmup steps, decay to 0.1 at step 14: warmup (s+1)/5, cosine midpoint at step 9
    assert [warmup_cosine(s, 1.0, 4, 14, 0.1) for s in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert warmup_cosine(4, 1.0, 4, 14, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(9, 1.0, 4, 14, 0.1) == pytest.approx(0.55)
    assert warmup_cosine(14, 1.0, 4, 14, 0.1) == pytest.approx(0.1) == warmup_cosine(99, 1.0, 4, 14, 0.1)


def test_lora_schedule_is_the_shared_one_with_min_lr_a_tenth():
    for step in range(0, 60):
        assert lora_lr_at(step, 2e-4, 5, 50) == warmup_cosine(step, 2e-4, 5, 50, 2e-5)
    assert TrainConfig(lr=1e-3, warmup_iters=10, max_iters=110).lr_at(60) == warmup_cosine(
        60, 1e-3, 10, 110, 1e-4
    )


# ---- estimate arithmetic ----------------------------------------------------------------------
def test_count_evals_and_total_by_hand():
    assert count_evals(2000, 250) == 9  # steps 0, 250, ..., 2000
    assert count_evals(100, 30) == 5  # 0, 30, 60, 90 and the final 100
    # 2 s startup + 0.5 s first step + 9 * 0.1 s + 3 evals * 0.2 s + 1 s finish
    assert total_seconds(0.5, 0.1, 10, 0.2, 3, startup_s=2.0, finish_s=1.0) == pytest.approx(5.0)


def test_time_steps_separates_the_first_call():
    calls = []
    first, median = time_steps(lambda i: calls.append(i), 4)
    assert calls == [0, 1, 2, 3, 4] and first >= 0 and median >= 0
    calls.clear()
    time_steps(lambda i: calls.append(i), 4, budget_s=0.0)  # budget spent: stop after two calls
    assert calls == [0, 1]


# ---- one source of truth for settings ----------------------------------------------------------
@pytest.mark.parametrize("surface", sorted(settings.SURFACES))
def test_tool_schema_has_every_setting_with_its_default_and_help(surface):
    from scratchlab.tools.gpt import AblateGPTArgs, TrainGPTArgs
    from scratchlab.tools.lora import FinetuneLoraArgs

    model = {"train_gpt": TrainGPTArgs, "ablate_gpt": AblateGPTArgs, "finetune_lora": FinetuneLoraArgs}[
        surface
    ]
    props = model.model_json_schema()["properties"]
    for name, default in settings.defaults(surface).items():
        assert name in props, name
        assert props[name]["description"] == settings.help_of(surface, name)
        if name in settings.SURFACES[surface].required:
            assert name in model.model_json_schema()["required"]
        else:
            assert props[name]["default"] == default, name
    cfg_cls = settings.SURFACES[surface].config
    for name, default in settings.defaults(
        surface
    ).items():  # the surface default is the config's, bar overrides
        if (
            name not in settings.SURFACES[surface].overrides
            or "default" not in settings.SURFACES[surface].overrides[name]
        ):
            if name not in settings.SURFACES[surface].required:
                assert getattr(cfg_cls(), name) == default


@pytest.mark.parametrize("cmd, surface, cfg_cls", [("gpt train", "train_gpt", TrainConfig),
                                                   ("lora train", "finetune_lora", LoraTrainConfig)])  # fmt: skip
def test_cli_offers_every_setting_and_its_defaults_are_the_configs(cmd, surface, cfg_cls, monkeypatch):
    from typer.main import get_command

    from scratchlab.cli.main import app

    group = get_command(app)
    command = group.commands[cmd.split()[0]].commands[cmd.split()[1]]
    opts = {p.name: p for p in command.params}
    for name, _tp, default, help_ in settings.cli_fields(surface):
        assert name in opts, f"{cmd} has no option for {name}"
        assert opts[name].default is None  # unset: the config's default applies
        assert help_ in (opts[name].help or "")
        if default is not None:
            assert f"(default {default})" in opts[name].help


def test_cli_gpt_train_passes_the_options_to_the_config(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from scratchlab.cli.main import app

    seen = {}

    def fake_prepare(ctx, overrides, name=None):
        seen.update(overrides)
        raise ValueError("stop here")

    monkeypatch.setattr("scratchlab.tools.gpt.prepare_training", fake_prepare)
    res = CliRunner().invoke(app, ["--home", str(tmp_path), "gpt", "train", "--n-layer", "3", "--no-bias",
                                   "--beta2", "0.95", "--compile"])  # fmt: skip
    assert res.exit_code != 0 and "stop here" in res.output
    assert seen == {"n_layer": 3, "bias": False, "beta2": 0.95, "compile": True}
    cfg = TrainConfig.from_dict(seen)
    assert settings.diff_from_defaults(cfg) == {
        "n_layer": {"default": 4, "value": 3},
        "beta2": {"default": 0.99, "value": 0.95},
        "compile": {"default": "auto", "value": True},
    }


def test_cli_lora_train_splits_tool_arguments_from_extra_settings(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from scratchlab.cli.main import app

    seen = {}

    def fake_start(ctx, args, inline=None, extra=None):
        seen.update(args=args.model_dump(), extra=extra)
        return {"status": "declined", "estimated_seconds": 1}

    monkeypatch.setattr("scratchlab.tools.lora.start_finetune", fake_start)
    res = CliRunner().invoke(app, ["--home", str(tmp_path), "lora", "train", "--data", "d.jsonl", "--r", "4",
                                   "--batch-size", "2", "--dtype", "float32", "--no-qlora", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert seen["args"]["r"] == 4 and seen["args"]["data"] == "d.jsonl" and seen["args"]["lr"] is None
    assert seen["extra"] == {"batch_size": 2, "dtype": "float32", "qlora": False}


def test_diff_from_defaults_worked_examples():
    assert settings.diff_from_defaults(TrainConfig()) == {}
    assert settings.diff_from_defaults(
        {"max_iters": 500, "n_layer": 2, "switches": ["relu"]}, "ablate_gpt"
    ) == {"n_layer": {"default": 4, "value": 2}}
    assert settings.diff_from_defaults({"r": 16, "lr": None, "out_dir": "x"}) == {
        "r": {"default": 8, "value": 16}
    }


# ---- bounds: non-finite or absurd values are refused --------------------------------------------
@pytest.mark.parametrize(
    "key, value, match",
    [
        ("lr", 1e30, "lr must be in (0, 1]"),
        ("lr", float("nan"), "lr must be a finite number"),
        ("lr", float("inf"), "lr must be a finite number"),
        ("lr", 0.0, "lr must be in (0, 1]"),
        ("dropout", 1.5, "dropout must be in [0, 1)"),
        ("n_layer", 0, "n_layer must be in [1, 256]"),
        ("batch_size", -3, "batch_size must be in [1,"),
        ("weight_decay", float("-inf"), "weight_decay must be a finite number"),
        ("target_loss", float("nan"), "target_loss must be a finite number"),
        ("dtype", "float16", "dtype must be one of"),
    ],
)
def test_gpt_config_refuses_absurd_values(key, value, match):
    with pytest.raises(TrainError) as e:
        TrainConfig.from_dict({key: value})
    assert match in str(e.value)


@pytest.mark.parametrize(
    "key, value, match",
    [("lr", 1e30, "lr must be in (0, 1)"), ("lr", float("nan"), "lr must be a finite"), ("r", 0, "r (LoRA rank)"),
     ("lora_alpha", float("inf"), "lora_alpha must be a finite"), ("max_new_tokens", 0, "max_new_tokens"),
     ("val_fraction", 1.0, "val_fraction")],
)  # fmt: skip
def test_lora_config_refuses_absurd_values(key, value, match):
    with pytest.raises(LoraError) as e:
        LoraTrainConfig(base_kind="gpt", **{key: value}).resolved()
    assert match in str(e.value)


def test_train_gpt_tool_refuses_lr_1e30(tool_ctx, tmp_path):
    from scratchlab.tools.gpt import make_tools

    corpus = tmp_path / "c.txt"
    corpus.write_text("abc def ghi\n" * 200)
    train_gpt = {t.name: t for t in make_tools(tool_ctx)}["train_gpt"]
    out = train_gpt.invoke({"dataset": str(corpus), "lr": 1e30, "max_iters": 5})
    assert (
        out.startswith("Error:") and "lr: Input should be less than or equal to 1" in out
    )  # the schema's bound
    assert tool_ctx.registry.list_jobs() == []


def test_a_diverged_run_fails_with_a_reason_and_cannot_be_sampled(tmp_path, monkeypatch):
    from scratchlab.training import trainer
    from scratchlab.training.data import prepare_dataset

    src = tmp_path / "t.txt"
    src.write_text("to be or not to be\n" * 100)
    prepare_dataset(str(src), "char", tmp_path / "data")
    cfg = dict(out_dir=str(tmp_path / "run"), data_dir=str(tmp_path / "data"), block_size=8, n_layer=1, n_head=1,
               n_embd=8, batch_size=4, max_iters=4, eval_interval=2, eval_iters=1, num_threads=1, dtype="float32")  # fmt: skip
    trainer.train(TrainConfig(**cfg))
    real = trainer.evaluate
    monkeypatch.setattr(trainer, "evaluate", lambda *a: {**real(*a), "val": float("nan")})
    with pytest.raises(TrainError, match="diverged"):
        trainer.train(TrainConfig(**{**cfg, "out_dir": str(tmp_path / "nan")}))
    # a checkpoint whose weights are not finite (as a run with lr 1e30 left behind): a clear error, no traceback
    ckpt = trainer.load_checkpoint(tmp_path / "run" / "ckpt.pt")
    ckpt["model"] = {k: torch.full_like(v, float("nan")) for k, v in ckpt["model"].items()}
    for f in ("ckpt.pt", "best.pt"):
        trainer.save_checkpoint(tmp_path / "run" / f, ckpt)
    with pytest.raises(TrainError, match="non-finite weights"):
        trainer.sample_from_checkpoint(tmp_path / "run", "to", max_new_tokens=5)


# ---- multi-process LoRA ------------------------------------------------------------------------
@pytest.mark.slow
def test_lora_ddp_two_processes_match_one_process(tmp_path):
    """torchrun --nproc_per_node=2 (gloo) at the same global batch follows the one-process loss curve."""
    from scratchlab.training.lora import run_finetune

    run = make_gpt_run(tmp_path)
    data = write_jsonl(tmp_path / "toy.jsonl", alpaca_records(24))
    base = dict(base_kind="gpt", base_path=str(run), data=str(data), max_iters=6, batch_size=4, grad_accum=2,
                lr=3e-3, lora_dropout=0.0, eval_generate=0, ckpt_interval=0, dtype="float32", device="cpu",
                num_threads=1)  # fmt: skip
    one = run_finetune(LoraTrainConfig(**base, out_dir=str(tmp_path / "one")))
    cpath = tmp_path / "ddp.json"
    cpath.write_text(json.dumps({**base, "out_dir": str(tmp_path / "two")}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "scratchlab.training.lora", "--config", str(cpath)],
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((tmp_path / "two" / "lora_meta.json").read_text())
    two = [h["train_loss"] for h in meta["history"]]
    ref = [h["train_loss"] for h in json.loads((tmp_path / "one" / "lora_meta.json").read_text())["history"]]
    assert len(two) == len(ref) == 6
    torch.testing.assert_close(torch.tensor(two), torch.tensor(ref), rtol=1e-4, atol=1e-5)
    assert meta["metrics"]["world_size"] == 2 and one["world_size"] == 1
    assert meta["metrics"]["val_loss_after"] == pytest.approx(one["val_loss_after"], abs=1e-4)
    assert ref[-1] < ref[0] and math.isfinite(ref[-1])
