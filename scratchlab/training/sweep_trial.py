"""One trial of a sweep or research loop: a normal registered run, trained in the sweep's process.

    from scratchlab.training.sweep_trial import run_trial
    out = run_trial(registry, workspace, "gpt", config, name="sweep-3-t4", on_val=prune_check,
                    progress=lambda step, msg: ..., stop=lambda: False, tags={"sweep": "sweep-3"})
    out["status"], out["value"], out["run"]      # "done" | "pruned" | "cancelled" | "failed", 1.93, "run-12"

A GPT trial is a run artifact (kind "run", folder `runs/<id>/`, metric rows under its id, loss plot in
`plots/`), exactly what `train_gpt` makes, so `list_runs`, `gpt compare`, `sample_gpt` and the board
see it. A LoRA trial is an adapter artifact (`adapters/<name>/`). Training runs in this process (no
extra interpreter start per trial); the trainer's own eval reports (`val_loss` at every eval) are the
pruning points: `on_val(step, value)` returns True to stop the trial early, which the trainer treats
as a clean stop (checkpoint kept).

The score is computed by the trainer on the dataset's fixed val split (`batches.evaluate`); nothing a
sweep or loop can vary (its `SWEEPABLE` settings) touches that split or the scorer. Trials with
different tokenizers are scored in bits per character (a token loss depends on the vocabulary).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scratchlab.lab.registry import Registry
from scratchlab.training.errors import TrainError

GPT_METRICS = (
    "val_loss",
    "best_val_loss",
    "train_loss",
    "bits_per_char",
    "step",
    "seconds",
    "params",
    "status",
)
LORA_METRICS = ("val_loss_before", "val_loss_after", "steps", "train_seconds", "status")


class TrialReporter:
    """What the trainer reports to during a trial: metric rows under the trial's run id, progress to
    the sweep, and the pruning check at every eval.

    Attributes:
        pruned: `on_val` asked to stop this trial.
        last_value: the latest intermediate score (in the sweep's metric).
    """

    def __init__(self, registry: Registry | None, run_id: str, on_val: Callable[[int, float], bool] | None,
                 progress: Callable[[int, str], None] | None, stop: Callable[[], bool] | None,
                 to_metric: Callable[[float], float]) -> None:  # fmt: skip
        self.registry, self.run_id, self.on_val = registry, run_id, on_val
        self.progress, self.stop, self.to_metric = progress, stop, to_metric
        self.pruned, self.last_value, self.last_step = False, None, 0

    @property
    def stop_requested(self) -> bool:
        return self.pruned or bool(self.stop and self.stop())

    def update(self, step: int, total: int, message: str = "", **metrics: float) -> None:
        self.last_step = step
        if metrics and self.registry is not None:
            with contextlib.suppress(Exception):  # progress rows are best effort (a busy lab.db)
                self.registry.log_metrics(self.run_id, int(step), **{k: float(v) for k, v in metrics.items()})
        val = metrics.get("val_loss")
        if val is not None and 0 < step < total:  # the final eval is the score, not a pruning point
            self.last_value = self.to_metric(float(val))
            if self.on_val is not None and self.on_val(step, self.last_value):
                self.pruned = True
        if self.progress is not None:
            self.progress(step, message)


def _gpt_trial(registry: Registry, workspace: Any, config: dict[str, Any], name: str, tags: dict[str, Any],
               metric: str, on_val, progress, stop) -> dict[str, Any]:  # fmt: skip
    # torch and the trainer load only when a trial runs; the CLI imports this module to plan
    from scratchlab.training.data import ensure_dataset
    from scratchlab.training.gpt_config import TrainConfig
    from scratchlab.training.trainer import train

    meta = ensure_dataset(config["dataset"], config["tokenizer"], workspace.dir("datasets"))
    art = registry.add_artifact("run", name, "", config=config, metrics={"status": "running", **tags})
    run_dir = workspace.dir("runs") / art.id
    cfg = {**config, "data_dir": str(meta.path), "out_dir": str(run_dir), "resume": False,
           "plot_path": str(workspace.dir("plots") / f"{art.id}-loss.png")}  # fmt: skip
    registry.update_artifact(art.id, path=str(run_dir), config=cfg)

    def to_metric(v: float) -> float:
        return meta.bits_per_unit(v, "val", "chars") if metric == "bits_per_char" else v

    rep = TrialReporter(registry, art.id, on_val, progress, stop, to_metric)
    try:
        res = train(TrainConfig.from_dict(cfg), rep)
    except (TrainError, ValueError) as e:  # e.g. n_embd not divisible by n_head: this trial fails
        registry.update_artifact(art.id, metrics={"status": "failed", "error": str(e)[:300]})
        return {"status": "failed", "run": art.id, "error": str(e), "value": None, "steps": rep.last_step}
    status = "pruned" if rep.pruned else res["status"]
    status = "done" if status == "target" else status
    value = to_metric(res["val_loss"]) if status == "done" else rep.last_value
    registry.update_artifact(art.id, metrics={**{k: res.get(k) for k in GPT_METRICS}, "status": status})
    return {"status": status, "run": art.id, "value": value, "steps": res["step"], "result": res}


def _lora_trial(registry: Registry, workspace: Any, config: dict[str, Any], name: str, tags: dict[str, Any],
                metric: str, on_val, progress, stop) -> dict[str, Any]:  # fmt: skip
    from scratchlab.training.lora import Progress, run_finetune  # torch + peft: loaded when a trial runs
    from scratchlab.training.lora_config import LoraError, LoraTrainConfig

    out_dir = workspace.dir("adapters") / registry.free_name("adapter", name, workspace.dir("adapters"))
    cfg = {**config, "out_dir": str(out_dir), "resume": False, "eval_generate": 0}
    art = registry.add_artifact("adapter", out_dir.name, out_dir, config={**cfg, "status": "training"},
                                metrics={**tags}, parent=config.get("base_ref") or None)  # fmt: skip
    rep = TrialReporter(registry, art.id, on_val, progress, stop, lambda v: v)

    def on_progress(p: Progress) -> None:
        rep.update(p.step, p.total, p.message, **{k: v for k, v in p.metrics.items() if v is not None})

    try:
        res = run_finetune(LoraTrainConfig.from_dict(cfg), on_progress, lambda: rep.stop_requested)
    except (LoraError, TrainError, ValueError) as e:
        registry.update_artifact(art.id, config={"status": "failed"}, metrics={"error": str(e)[:300]})
        return {"status": "failed", "run": art.id, "error": str(e), "value": None, "steps": rep.last_step}
    res.pop("model", None)
    res.pop("base", None)
    status = "pruned" if rep.pruned else res["status"]
    value = res.get("val_loss_after") if status == "done" else rep.last_value
    registry.update_artifact(art.id, config={"status": "done" if status == "done" else status},
                             metrics={**{k: res.get(k) for k in LORA_METRICS}, "status": status})  # fmt: skip
    return {"status": status, "run": art.id, "value": value, "steps": res.get("steps", rep.last_step),
            "result": {k: v for k, v in res.items() if k != "samples"}}  # fmt: skip


def run_trial(
    registry: Registry,
    workspace: Any,
    kind: str,
    config: dict[str, Any],
    name: str,
    *,
    metric: str = "val_loss",
    on_val: Callable[[int, float], bool] | None = None,
    progress: Callable[[int, str], None] | None = None,
    stop: Callable[[], bool] | None = None,
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one trial as a registered run and score it.

    Args:
        registry, workspace: the lab the run is registered in.
        kind: "gpt" (a `TrainConfig` dict with dataset and tokenizer resolved) or "lora" (a
            `LoraTrainConfig` dict with base and data resolved).
        config: the run's settings; lab paths (out_dir, data_dir, plot) are filled in here.
        name: the run's name (a free variant is taken for LoRA adapters).
        metric: "val_loss" or "bits_per_char" (GPT; for sweeps over tokenizers).
        on_val: called with (step, score) at every eval; True stops the trial as pruned.
        progress: called with (step, message) on every report.
        stop: polled by the trainer; True stops the trial as "cancelled" (checkpoint kept).
        tags: stored in the run's metrics (sweep id, trial number, seed).

    Returns:
        {"status": "done" | "pruned" | "cancelled" | "failed", "run": id, "value": final score (None
        when failed), "steps", "seconds", "result" (the trainer's result dict), "error" (when failed)}.
    """
    t0 = time.monotonic()
    fn = _gpt_trial if kind == "gpt" else _lora_trial
    out = fn(registry, workspace, config, name, tags or {}, metric, on_val, progress, stop)
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def run_dir_of(registry: Registry, run_id: str) -> Path:
    """The folder of a trial's run."""
    return Path(registry.get_artifact(run_id).path)
