"""LoRA tools and CLI on a tiny GPT run: fine-tune, generate, merge, confirmations, bad input, jobs."""

from __future__ import annotations

import json

import pytest
import torch
from test_lora_helpers import alpaca_records, make_gpt_run, write_jsonl

from scratchlab.tools.lora import make_tools


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: tiny models run 10-30x faster on a shared, oversubscribed CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def lab(tool_ctx, workspace, tmp_path):
    run = make_gpt_run(tmp_path / "gen")
    tool_ctx.registry.add_artifact("run", "toy-run", run, metrics={"n_params": 30_000})
    tool_ctx.extras["lora_inline"] = True
    data = write_jsonl(tmp_path / "toy.jsonl", alpaca_records(30))
    tools = {t.name: t for t in make_tools(tool_ctx)}
    return tool_ctx, tools, data


def test_finetune_generate_merge_roundtrip(lab):
    ctx, tools, data = lab
    out = tools["finetune_lora"].invoke(
        {"data": str(data), "base": "last", "max_iters": 25, "name": "t1", "lr": 3e-3}
    )
    assert out.startswith("Adapter t1 (adapter-") and "val loss" in out, out
    art = ctx.registry.get_artifact("t1", kind="adapter")
    assert art.parent == ctx.registry.get_artifact("toy-run", kind="run").id
    assert art.metrics["val_loss_after"] < art.metrics["val_loss_before"]
    assert art.config["status"] == "done" and art.metrics["trainable_params"] > 0

    gen = tools["generate_with_adapter"].invoke({"prompt": "Shout the word apple.", "max_new_tokens": 10})
    assert gen.startswith("t1 (adapter-"), gen

    msg = tools["merge_lora"].invoke({"adapter": "t1"})
    assert "Merged" in msg and "max |logit diff|" in msg, msg
    merged = ctx.registry.get_artifact("t1-merged", kind="run")
    assert merged.parent == art.id
    # the merged run loads as an ordinary GPT base and matches the adapter's outputs
    from scratchlab.training import lora_data as D
    from scratchlab.training.lora import lm_logits
    from scratchlab.training.lora_adapters import open_adapter
    from scratchlab.training.lora_base import load_base

    session = open_adapter(art.path)
    mb = load_base("gpt", merged.path)
    batch = D.collate(D.tokenize_records(D.read_records(data)[:3], mb.fmt, mb.max_len), mb.fmt.pad_id)
    with torch.no_grad():
        assert torch.allclose(
            lm_logits(mb.model, batch, "gpt"), lm_logits(session.model, batch, "gpt"), atol=1e-4
        )
    assert "already exists" in tools["merge_lora"].invoke({"adapter": "t1"})


@pytest.mark.parametrize(
    "args, match",
    [
        ({"base": "no-such-run"}, "unknown base 'no-such-run'"),
        ({"r": 0}, "r: Input should be greater than or equal to 1"),  # the schema carries the bound
        ({"data": "/nope/missing.jsonl"}, "not found"),
        ({"lora_dropout": 1.5}, "lora_dropout"),
    ],
)
def test_bad_requests_come_back_as_errors(lab, args, match):
    ctx, tools, data = lab
    out = tools["finetune_lora"].invoke({"data": str(data), "max_iters": 2, **args})
    assert out.startswith("Error:") and match in out, out
    assert ctx.registry.list_artifacts("adapter") == []


def test_malformed_jsonl_and_missing_adapter(lab, tmp_path):
    ctx, tools, _ = lab
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x", "output": "y"}\n{oops\n')
    out = tools["finetune_lora"].invoke({"data": str(bad), "max_iters": 2})
    assert out.startswith("Error:") and "bad.jsonl:2" in out
    assert "Fine-tune one with finetune_lora" in tools["merge_lora"].invoke({})
    assert tools["generate_with_adapter"].invoke({"prompt": "hi"}).startswith("Error:")


def test_long_runs_ask_first_and_a_no_leaves_nothing_behind(lab):
    ctx, tools, data = lab
    ctx.auto_confirm = False
    ctx.confirm_threshold_s = 0.0
    asked = []
    ctx.confirm = lambda action, details, **kw: asked.append((action, details)) or False
    out = tools["finetune_lora"].invoke({"data": str(data), "max_iters": 5, "name": "nope"})
    assert out.startswith("Not started") and asked[0][0] == "finetune_lora"
    assert asked[0][1]["estimated_seconds"] >= 0 and asked[0][1]["r"] == 8
    assert ctx.registry.list_artifacts("adapter") == []
    assert not (ctx.workspace.dir("adapters") / "nope").exists()


def test_cli_train_json_and_list(lab, workspace):
    from typer.testing import CliRunner

    from scratchlab.cli.main import app

    _, _, data = lab
    runner = CliRunner()
    res = runner.invoke(app, ["--home", str(workspace.root), "lora", "train", "--base", "toy-run", "--data", str(data),
                              "--max-iters", "10", "--r", "4", "--inline", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for k in ("adapter", "trainable_params", "total_params", "val_loss_before", "val_loss_after", "seconds"):
        assert k in out
    assert out["trainable_params"] < out["total_params"]
    res = runner.invoke(app, ["--home", str(workspace.root), "lora", "list", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["id"] == out["adapter"]
    res = runner.invoke(
        app, ["--home", str(workspace.root), "lora", "train", "--base", "nope", "--data", str(data)]
    )
    assert res.exit_code == 2 and "unknown base" in res.output


@pytest.mark.slow
def test_finetune_as_a_background_job(lab, monkeypatch):
    ctx, _, data = lab
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the child inherits it (see _one_thread)
    from scratchlab.tools.lora import FinetuneLoraArgs, start_finetune

    res = start_finetune(
        ctx, FinetuneLoraArgs(data=str(data), base="toy-run", max_iters=8, name="job1"), inline=False
    )
    assert res["status"] == "done", res
    assert res["job"].startswith("job-") and res["val_loss_after"] is not None
    job = ctx.registry.get_job(res["job"])
    assert job.step == 8 and job.status == "done"
    assert ctx.registry.get_artifact("job1", kind="adapter").config["status"] == "done"


@pytest.mark.slow
def test_cancel_a_running_job_then_resume_by_name(lab, monkeypatch):
    import time

    from scratchlab.lab import jobs
    from scratchlab.tools.lora import FinetuneLoraArgs, start_finetune

    ctx, _, data = lab
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = FinetuneLoraArgs(data=str(data), base="toy-run", max_iters=1500, name="long", wait=False)
    res = start_finetune(ctx, args, inline=False)
    assert res["status"] == "started"
    deadline = time.monotonic() + 240
    while ctx.registry.get_job(res["job"]).step < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    job = jobs.cancel_job(ctx.registry, res["job"])
    assert job.status == "cancelled", (job.status, job.error, jobs.read_log(job))
    adapter_dir = ctx.workspace.dir("adapters") / "long"
    assert (adapter_dir / "train_state.pt").is_file()  # checkpoint kept
    import torch

    stopped = torch.load(adapter_dir / "train_state.pt", weights_only=False)["step"]
    assert 1 <= stopped < 1500
    done = start_finetune(
        ctx, FinetuneLoraArgs(data=str(data), base="toy-run", max_iters=1500, name="long"), inline=True
    )
    assert done["status"] == "done" and done["steps"] == 1500
    hist = json.loads((adapter_dir / "lora_meta.json").read_text())["history"]
    assert hist[0]["step"] == 1 and len(hist) == 1500  # history carried over from the cancelled part
