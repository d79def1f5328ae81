"""Sweeps and research loops on tiny configs: spaces, pruning, resume after a kill, cancel, stop rules."""

from __future__ import annotations

import json
import time

import optuna
import pytest

from scratchlab.lab.jobs import cancel_job, wait_for_job
from scratchlab.training.research import moves, propose, run_research
from scratchlab.training.sweep import SweepConfig, open_study, run_sweep, storage_url
from scratchlab.training.sweep_report import noise_of, within_noise
from scratchlab.training.sweep_space import SpaceError, grid, grid_size, names_help, parse_space

TEXT = "".join(
    f"All the world's a stage, and all the men and women merely players {i % 5}.\n" for i in range(200)
)
TINY = {"tokenizer": "char", "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16, "batch_size": 4,
        "max_iters": 30, "eval_interval": 10, "eval_iters": 1, "log_interval": 5, "num_threads": 1}  # fmt: skip


@pytest.fixture
def base(workspace):
    src = workspace.root / "c.txt"
    src.write_text(TEXT)
    return {**TINY, "dataset": str(src)}


def sweep_cfg(workspace, base, **kw):
    return {"sweep_id": "sweep-1", "name": "sw", "base": base, "storage": storage_url(workspace.root),
            "out_dir": str(workspace.root / "runs" / "sweep-1"), "home": str(workspace.root), "seed_runs": 0, **kw}  # fmt: skip


def test_space_specs_use_the_config_bounds():
    space = parse_space(["lr", "n_layer=2,4", "dropout=0..0.2", "vocab=256,512 and 1024"])
    assert space["lr"] == {"low": 1e-4, "high": 1e-2, "log": True, "type": "float"}
    assert space["n_layer"]["choices"] == [2, 4]
    assert space["vocab_size"]["choices"] == [256, 512, 1024]
    assert grid(space)["dropout"] == [0.0, 0.06667, 0.1333, 0.2] and grid_size(space) == 4 * 2 * 4 * 3
    with pytest.raises(SpaceError, match="dropout must be in \\[0, 1\\)"):
        parse_space(["dropout=0..1.5"])
    with pytest.raises(SpaceError, match="cannot sweep 'dataset'"):
        parse_space(["dataset=a,b"])
    with pytest.raises(SpaceError, match="n_layer takes int"):
        parse_space(["n_layer=2.5"])
    assert "r" in parse_space(["r=4,8"], "lora")
    # the field's shorthand names a setting ("bs=8,16", "ctx=64,128"), here and in the tool's "Names:"
    assert parse_space(["bs=8,16", "ctx=64,128"]).keys() == {"batch_size", "block_size"}
    assert "batch_size (batch, bs)" in names_help("lora")
    # one setting written as several specs searches every value, not the last alone
    assert parse_space(["dropout=0", "dropout=0.15", "dropout=0.3"])["dropout"]["choices"] == [0, 0.15, 0.3]
    with pytest.raises(SpaceError, match="given twice"):
        parse_space(["dropout=0..0.2", "dropout=0.3"])


def test_noise_rule():
    noise = noise_of([2.00, 2.02, 2.01])
    assert noise["std"] == pytest.approx(0.01)
    assert within_noise(2.0, 2.015, noise) and not within_noise(2.0, 2.05, noise)
    assert within_noise(1.0, 2.0, None) is None


def test_sweep_prunes_losers_and_registers_every_trial(workspace, registry, base):
    cfg = sweep_cfg(workspace, base, space=parse_space(["lr=1e-5,2e-5,3e-3,1e-2"]), n_trials=4, seed_runs=1)
    study = open_study(SweepConfig.from_dict(cfg))
    for lr in (1e-2, 3e-3, 1e-5, 2e-5):  # the good ones first, so the median rule has something to beat
        study.enqueue_trial({"lr": lr})
    out = run_sweep(cfg, None, registry, workspace)
    rows = {r["params"]["lr"]: r for r in out["rows"]}
    assert rows[1e-5]["status"] == "pruned" and rows[2e-5]["status"] == "pruned"
    assert rows[1e-5]["steps"] < 30 and rows[1e-2]["status"] == "done"
    assert out["best"]["params"]["lr"] in (1e-2, 3e-3) and out["n_pruned"] == 2
    for r in out["rows"]:  # every trial is a registered run with its seed
        art = registry.get_artifact(r["run"], kind="run")
        assert art.metrics["seed"] == 1337 and art.metrics["sweep"] == "sweep-1"
    assert len(out["noise_runs"]) == 1 and out["noise_runs"][0]["seed"] == 1338
    assert (
        out["noise"] is not None and "within noise" in (workspace.root / "runs/sweep-1/ledger.md").read_text()
    )
    assert (workspace.root / "runs/sweep-1/ledger.png").stat().st_size > 1000


def test_sweep_resumes_after_a_kill(workspace, registry, base):
    cfg = sweep_cfg(workspace, base, space=parse_space(["lr=1e-3..1e-2"]), n_trials=2, pruner="none")
    run_sweep(cfg, None, registry, workspace)
    study = open_study(SweepConfig.from_dict(cfg))
    killed = study.ask()  # a process that died mid-trial leaves it RUNNING
    killed.suggest_float("lr", 1e-3, 1e-2, log=True)
    study.set_user_attr("spent_s", 100.0)
    out = run_sweep({**cfg, "n_trials": 3}, None, registry, workspace)
    states = [r["status"] for r in out["rows"]]
    assert states.count("done") == 3 and states.count("interrupted") == 1
    retried = [r for r in out["rows"] if r["status"] == "done"][-1]
    assert retried["params"] == killed.params  # the killed trial's values ran again
    assert out["spent_s"] >= 100.0


class StopAfter:
    """A job reporter whose stop is requested after `n` updates (a cancel mid-sweep)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    @property
    def stop_requested(self):
        return self.calls >= self.n

    def update(self, step, total, message="", **metrics):
        self.calls += 1


def test_cancel_keeps_the_study_for_resume(workspace, registry, base):
    cfg = sweep_cfg(workspace, base, space=parse_space(["lr=1e-3..1e-2"]), n_trials=2, pruner="none")
    out = run_sweep(cfg, StopAfter(4), registry, workspace)
    assert out["status"] == "cancelled"
    out = run_sweep(cfg, None, registry, workspace)
    assert out["status"] == "done" and sum(r["status"] == "done" for r in out["rows"]) == 2


def test_research_moves_and_proposer():
    space = parse_space(["lr", "n_layer=1,2,4", "activation"])
    assert moves("lr", 1e-3, space["lr"]) == [("up", 0.002), ("down", 0.0005)]
    assert moves("n_layer", 2, space["n_layer"]) == [("up", 4), ("down", 1)]
    assert moves("activation", "gelu", space["activation"]) == [("=relu", "relu")]
    cur = {"lr": 1e-3, "n_layer": 2, "activation": "gelu"}
    rows = [{"params": cur}, {"params": {**cur, "lr": 2e-3}, "move": ["lr", "up"], "gain": 0.1}]
    assert propose({**cur, "lr": 2e-3}, space, rows) == ("lr", 0.004, "up")  # momentum: lr up helped


def research_cfg(workspace, base, **kw):
    return {"research_id": "research-1", "base": {**base, "lr": 1e-3}, "home": str(workspace.root),
            "out_dir": str(workspace.root / "runs" / "research-1"), "seed_runs": 0, **kw}  # fmt: skip


def test_research_stops_on_target(workspace, registry, base):
    out = run_research(research_cfg(workspace, base, space=parse_space(["lr=1e-4..2e-2"]), target=3.18, max_trials=10),
                       None, registry, workspace)  # fmt: skip
    assert out["stopped_because"] == "target 3.18 reached"
    assert out["best"]["value"] <= 3.18 < out["start"] and out["helped"][0][0].startswith("lr ")
    assert json.loads((workspace.root / "runs/research-1/ledger.json").read_text())["status"] == "done"


def test_research_stops_on_plateau(workspace, registry, base):
    # min_delta larger than any change can give: every change is discarded
    out = run_research(research_cfg(workspace, base, space=parse_space(["dropout", "weight_decay"]), plateau=2,
                                     min_delta=10.0, max_trials=10), None, registry, workspace)  # fmt: skip
    assert out["stopped_because"].startswith("plateau")
    assert [r["status"] for r in out["rows"]] == ["kept", "discarded", "discarded"]


def test_sweep_tool_job_cancel_status_and_resume(tool_ctx, base):
    from scratchlab.tools.sweep import SweepGPTArgs, describe_sweep, find, launch, plan_gpt, resume, stop

    args = SweepGPTArgs(search=["lr=1e-3..1e-2"], n_trials=6, pruner="none",
                        **{k: v for k, v in base.items() if k in SweepGPTArgs.model_fields})  # fmt: skip
    cfg, est = plan_gpt(tool_ctx, args)
    assert cfg["base"]["max_iters"] == 30 and est > 0
    cfg["seed_runs"] = 0
    job, art = launch(tool_ctx, "sweep", cfg)
    reg = tool_ctx.registry
    end = time.monotonic() + 120
    while time.monotonic() < end and not reg.list_artifacts("run"):
        time.sleep(0.2)
    assert "is running as" in describe_sweep(tool_ctx, find(tool_ctx, "last"))
    assert "stopped" in stop(tool_ctx, "last")
    assert reg.get_job(job.id).status == "cancelled"
    job2, _ = resume(tool_ctx, art.id)
    assert wait_for_job(reg, job2.id, timeout=180).status == "done"
    text = describe_sweep(tool_ctx, reg.get_artifact(art.id), table=True)
    assert "6 trials" in text or "trials" in text and "plot:" in text
    assert cancel_job(reg, job2.id).status == "done"
    done = open_study(SweepConfig.from_dict(reg.get_artifact(art.id).config), create=False)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in done.trials) == 6


def test_grid_sweep_runs_every_config_once_and_ends(workspace, registry, base):
    cfg = sweep_cfg(workspace, base, space=parse_space(["lr=1e-3,1e-2"]), sampler="grid", pruner="none")
    out = run_sweep(cfg, None, registry, workspace)
    assert sorted(r["params"]["lr"] for r in out["rows"]) == [1e-3, 1e-2] and out["status"] == "done"


def test_lora_sweep_trials_are_registered_adapters(workspace, registry, base):
    from scratchlab.training.sweep_trial import run_trial

    gpt = run_trial(registry, workspace, "gpt", {**base, "max_iters": 10}, "lora-base")
    data = workspace.root / "qa.jsonl"
    data.write_text(
        "".join(json.dumps({"instruction": f"say {w}", "output": w}) + "\n" for w in TEXT.split()[:40])
    )
    lora_base = {"base_kind": "gpt", "base_path": registry.get_artifact(gpt["run"]).path, "data": str(data),
                 "max_iters": 4, "eval_interval": 2, "batch_size": 2, "num_threads": 1}  # fmt: skip
    cfg = sweep_cfg(
        workspace, lora_base, kind="lora", space=parse_space(["r=2,4"], "lora"), sampler="grid", pruner="none"
    )
    out = run_sweep(cfg, None, registry, workspace)
    assert [r["status"] for r in out["rows"]] == ["done", "done"]
    assert {registry.get_artifact(r["run"]).kind for r in out["rows"]} == {"adapter"}
