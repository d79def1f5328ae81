"""GPT agent tools and the `scratchlab gpt` / `scratchlab jobs` CLI, on a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scratchlab.tools.base import ToolContext
from scratchlab.tools.gpt import make_tools

TEXT = "".join(f"Now is the winter of our discontent, made glorious summer {i % 9}.\n" for i in range(150))
TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_iters=30)


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text(TEXT)
    return str(p)


def tools(ctx) -> dict:
    return {t.name: t for t in make_tools(ctx)}


def test_train_sample_list_status(tool_ctx, corpus, registry):
    t = tools(tool_ctx)
    seen = []
    tool_ctx.on_progress = seen.append
    out = t["train_gpt"].invoke({"dataset": corpus, **TINY, "max_iters": "30"})
    assert out.startswith("run run-") and "val loss" in out and "tokens/s (cpu, " in out, out
    assert seen and seen[-1].status == "done"
    run = registry.get_artifact("last", kind="run")
    assert run.metrics["status"] == "done" and run.metrics["step"] == 30
    assert Path(run.metrics["plot"]).exists() and Path(run.path, "best.pt").exists()
    assert len(out) <= 600
    s = t["sample_gpt"].invoke({"run": run.id, "prompt": "Now", "max_new_tokens": 20, "seed": 1})
    assert s.startswith(f"{run.id} sample:\nNow") and len(s.split("\n", 1)[1]) == 23
    assert s == t["sample_gpt"].invoke({"run": run.name, "prompt": "Now", "max_new_tokens": 20, "seed": 1})
    assert run.id in t["list_runs"].invoke({})
    status = t["job_status"].invoke({})
    assert "done" in status and run.id in status
    ended = t["cancel_job"].invoke({"job_id": registry.list_jobs()[0].id})
    assert ended.startswith("nothing to stop:") and "already ended (done)" in ended
    job = registry.list_jobs()[0].id
    for tool in ("cancel_job", "job_status"):  # an id no job has: the error names the ones there are
        out = t[tool].invoke({"job_id": "job-99"})
        assert "no job-99" in out and f"{job} (done)" in out, out
    assert "Error" in t["sample_gpt"].invoke({"run": "run-999"})
    bad = t["sample_gpt"].invoke({"run": run.id, "prompt": "Qz#"})
    assert bad.startswith("Error") and "alphabet" in bad


def test_train_detached_then_cancel(tool_ctx, corpus, registry):
    t = tools(tool_ctx)
    out = t["train_gpt"].invoke({"dataset": corpus, **TINY, "max_iters": "100k", "wait": False})
    job_id = out.split()[1]
    assert out.startswith("started job-") and registry.get_job(job_id).status in ("queued", "running")
    msg = t["cancel_job"].invoke({"job_id": job_id})
    assert "cancelled" in msg
    run = registry.get_artifact("last", kind="run")
    assert run.metrics["status"] == "cancelled"


def test_bad_arguments_come_back_as_errors(tool_ctx, corpus):
    t = tools(tool_ctx)
    assert t["train_gpt"].invoke({"dataset": "no/such/file.txt"}).startswith("Error")
    out = t["train_gpt"].invoke({"dataset": corpus, **TINY, "n_embd": 30, "n_head": 4})
    assert out.startswith("Error") and "divisible" in out
    assert t["train_gpt"].invoke({"dataset": corpus, "tokenizer": "nope"}).startswith("Error")
    # the schema holds the switches: an unknown one is refused before anything runs, as an error line
    out = t["ablate_gpt"].invoke({"switches": ["wings"], "dataset": corpus})
    assert out.startswith("Error: switches.0: unknown ablation switch 'wings'")
    out = t["job_status"].invoke({"job_id": ["job-1"]})
    assert out.startswith("Error: job_id") and "\n" not in out.strip()


class _Declining(ToolContext):
    def confirm(self, action, details, **kw):
        self.asked = (action, details)
        return False


def test_long_run_asks_first_and_declining_starts_nothing(workspace, registry, corpus):
    ctx = _Declining(workspace=workspace, registry=registry, confirm_threshold_s=0.0)
    out = tools(ctx)["train_gpt"].invoke({"dataset": corpus, **TINY})
    assert "not started" in out
    action, details = ctx.asked
    assert action == "train_gpt" and details["estimated_seconds"] > 0 and details["config"]["n_layer"] == 1
    assert registry.list_jobs() == [] and registry.list_artifacts("run") == []


@pytest.mark.slow
def test_ablate_tool(tool_ctx, corpus):
    out = tools(tool_ctx)["ablate_gpt"].invoke({"switches": ["no_pos_emb", "relu"], "dataset": corpus,
                                               "max_iters": 20, "n_layer": 1, "n_head": 2, "n_embd": 16,
                                               "block_size": 16, "batch_size": 4})  # fmt: skip
    assert "done" in out and "baseline" in out and "no_pos_emb" in out and "relu" in out, out
    chart = out.rsplit("chart: ", 1)[1].strip()
    assert Path(chart).exists()
    # the record says how many models it trained and for how long, for "how many did it train?"
    (art,) = tool_ctx.registry.list_artifacts("ablation")
    assert art.metrics["n_runs"] == 3 and art.metrics["max_iters"] == 20


@pytest.mark.slow
def test_cli_train_json_sample_list_compare_resume(workspace, corpus):
    from typer.testing import CliRunner

    from scratchlab.cli.jobs import app as jobs_app
    from scratchlab.cli.main import app

    runner = CliRunner()
    home = ["--home", str(workspace.root)]
    args = ["gpt", "train", "--dataset", corpus, "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
            "--block-size", "16", "--batch-size", "4", "--max-iters", "20", "--dtype", "float32", "--json"]  # fmt: skip
    res = runner.invoke(app, [*home, *args])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout[res.stdout.index("{") :])
    for key in (
        "run",
        "val_loss",
        "best_val_loss",
        "train_loss",
        "params",
        "seconds",
        "tokens_per_sec",
        "checkpoint",
        "plot",
    ):
        assert data[key] is not None, key
    assert Path(data["checkpoint"]).exists() and Path(data["plot"]).exists()
    assert (data["device"], data["dtype"], data["compiled"]) == ("cpu", "float32", False)
    res = runner.invoke(
        app, [*home, "gpt", "sample", data["run"], "-p", "Now", "-n", "10", "--seed", "0", "--json"]
    )
    assert res.exit_code == 0 and len(json.loads(res.stdout)["text"]) == 10
    res = runner.invoke(app, [*home, "gpt", "list", "--json"])
    assert [r["run"] for r in json.loads(res.stdout)] == [data["run"]]
    res = runner.invoke(app, [*home, "gpt", "resume", data["run"], "--max-iters", "30", "--json"])
    assert res.exit_code == 0, res.output
    resumed = json.loads(res.stdout[res.stdout.index("{") :])
    assert resumed["run"] == data["run"] and resumed["step"] == 30
    res = runner.invoke(app, [*home, "gpt", "compare", data["run"], "--json"])
    assert res.exit_code == 0, res.output
    assert Path(json.loads(res.stdout)["plot"]).exists()
    res = runner.invoke(jobs_app, ["list", "--json"])
    assert res.exit_code == 0 and [j["status"] for j in json.loads(res.stdout)] == ["done", "done"]
    res = runner.invoke(app, [*home, "gpt", "sample", "run-404"])
    assert res.exit_code == 2
