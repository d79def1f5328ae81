"""Budgeted hyperparameter sweeps on Optuna: every trial a registered run, losers pruned, study on disk.

    python -m scratchlab.training.sweep --config sweep.json --job-id job-4 --home ~/lab   # as a lab job
    run_sweep(config, reporter, registry, workspace)                                      # in-process

`config` is a `SweepConfig` dict: the fixed run settings (`base`), the search space
(`sweep_space.parse_space`), a budget in trials (`n_trials`) and/or seconds (`budget_s`), the sampler
("tpe", "grid" or "random"), the pruner ("median", "halving" or "none") and the Optuna storage URL.

- Each trial trains `base` + its values for `base["max_iters"]` steps (a fixed step budget, so trials
  compare), as a registered run (`sweep_trial.run_trial`), seed `base["seed"]` for all of them.
- Pruning: the trainer's eval reports (val loss every `eval_interval` steps) go to `trial.report`;
  `should_prune()` stops a trial that is losing (median rule or successive halving). Early stopping
  can prune a slow starter that ends best: a median-pruned grid over lr x warmup_iters pruned its best
  config (benchmarks/results/sweep.md); holding pruning back until a trial's warmup had ended only
  moved that to the next eval, 0.007 above the median, and cost every sweep a pruning point.
- The study lives in an Optuna RDB storage (SQLite `sweeps.db` next to `lab.db`) under the sweep's id,
  so a killed or cancelled sweep resumes: trials left RUNNING are marked failed and queued again, the
  time already spent counts against the budget (`spent_s` on the study).
- Seed noise: once the search ends, the best config is re-run with `seed_runs` more seeds; the ledger
  says which results are within that noise. With a time budget, those runs are reserved inside it.
- The ledger (`ledger.md`, `ledger.json`, best-so-far plot) is rewritten after every trial.

Source: Optuna (Akiba et al. 2019): TPE (Bergstra et al. 2011), median pruning (Golovin et al. 2017,
Vizier), successive halving (Jamieson & Talwalkar 2016; Li et al. 2020, ASHA).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import optuna

from scratchlab.lab.job_child import job_main
from scratchlab.training.report import fmt_eta
from scratchlab.training.sweep_report import best_row, noise_of, write_ledger
from scratchlab.training.sweep_space import VOCAB, fmt_params, grid, grid_size, suggest
from scratchlab.training.sweep_trial import run_trial

STORAGE_FILE = "sweeps.db"  # Optuna's own tables, in a file of their own next to lab.db
SAMPLERS = ("tpe", "grid", "random")
PRUNERS = ("median", "halving", "none")
TPE_STARTUP = 4  # random trials before TPE models the results
MEDIAN_STARTUP = 2  # complete trials before the median rule prunes


@dataclass
class SweepConfig:
    """A sweep job's configuration (saved as the job's config and on the sweep artifact)."""

    kind: str = "gpt"  # "gpt" | "lora"
    sweep_id: str = ""  # the registry id; also the Optuna study name
    name: str = "sweep"  # trial runs are "<name>-t<n>"
    base: dict[str, Any] = field(default_factory=dict)  # fixed run settings (TrainConfig / LoraTrainConfig)
    space: dict[str, dict[str, Any]] = field(default_factory=dict)  # sweep_space.parse_space
    tokenizers: dict[str, str] = field(default_factory=dict)  # vocab size -> tokenizer path (vocab sweeps)
    sampler: str = "tpe"
    pruner: str = "median"
    n_trials: int | None = None  # search trials (the seed re-runs not counted)
    budget_s: float | None = None  # wall-clock budget in seconds, seed re-runs included
    seed_runs: int = 2  # extra seeds for the best config
    metric: str = "val_loss"  # or "bits_per_char" (vocab sweeps)
    storage: str = ""  # Optuna storage URL
    out_dir: str = ""  # ledger.md / ledger.json
    plot_path: str = ""
    home: str = ""  # the workspace root
    title: str = ""
    trial_estimate_s: float = 0.0  # one full trial's estimated seconds, until a trial has finished

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepConfig:
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in d.items() if k in known})
        if cfg.sampler not in SAMPLERS or cfg.pruner not in PRUNERS:
            raise ValueError(f"sampler must be one of {SAMPLERS} and pruner one of {PRUNERS}")
        if not cfg.n_trials and not cfg.budget_s and cfg.sampler != "grid":
            raise ValueError("a sweep needs a budget: n_trials or budget_s (minutes * 60)")
        return cfg


def storage_url(workspace_root: str | Path) -> str:
    """The Optuna storage of a workspace: `sqlite:///<root>/sweeps.db`."""
    return f"sqlite:///{Path(workspace_root) / STORAGE_FILE}"


def _storage(url: str) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 30}})


def open_study(cfg: SweepConfig, create: bool = True) -> optuna.Study:
    """The sweep's study (created on first use). Raises KeyError when missing and `create` is False."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(cfg.storage)
    seed = int(cfg.base.get("seed", 1337))
    if cfg.sampler == "grid":
        sampler = optuna.samplers.GridSampler(grid(cfg.space), seed=seed)
    elif cfg.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP)
    warmup = int(cfg.base.get("eval_interval") or 1)
    pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP, n_warmup_steps=warmup),
              "halving": optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup, reduction_factor=3),
              "none": optuna.pruners.NopPruner()}[cfg.pruner]  # fmt: skip
    if not create:
        return optuna.load_study(study_name=cfg.sweep_id, storage=storage, sampler=sampler, pruner=pruner)
    return optuna.create_study(storage=storage, study_name=cfg.sweep_id, direction="minimize", sampler=sampler,
                               pruner=pruner, load_if_exists=True)  # fmt: skip


def requeue_interrupted(study: optuna.Study) -> int:
    """Mark trials a killed process left RUNNING as failed ("interrupted") and queue their values
    again. Returns how many."""
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "status", "interrupted")
        _tell(study, t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    return len(stale)


def _tell(study: optuna.Study, trial: Any, value: float | None = None, state: Any = None) -> None:
    """`study.tell`, where the grid sampler's "grid done" (`study.stop()`, which raises outside
    `optimize`) is ignored: the trial is stored all the same and our loop sees the grid's end itself."""
    try:
        study.tell(trial, value, state=state)
    except RuntimeError as e:
        if "Study.stop" not in str(e):
            raise


def trial_config(cfg: SweepConfig, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The run settings of a trial: the fixed ones, the trial's values, its seed."""
    out = {**cfg.base, **{k: v for k, v in params.items() if k != VOCAB}, "seed": seed}
    if VOCAB in params:
        out["tokenizer"] = cfg.tokenizers[str(params[VOCAB])]
    return out


def ledger_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """The study's trials as ledger rows (`sweep_report`), in trial order."""
    state = {
        "COMPLETE": "done",
        "PRUNED": "pruned",
        "FAIL": "failed",
        "RUNNING": "running",
        "WAITING": "queued",
    }
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        if t.state.name == "WAITING":
            continue
        value = t.value if t.value is not None else (t.intermediate_values[max(t.intermediate_values)]
                                                     if t.intermediate_values else None)  # fmt: skip
        rows.append({"n": t.number, "status": a.get("status") or state[t.state.name], "params": t.params,
                     "value": value, "seed": a.get("seed"), "run": a.get("run"), "seconds": a.get("seconds", 0),
                     "end_s": a.get("end_s", 0), "steps": a.get("steps")})  # fmt: skip
    return rows


def importances(study: optuna.Study) -> list[tuple[str, float]]:
    """(setting, importance 0-1) from Optuna's fANOVA-style evaluator, most first; [] when too few trials."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < 3 or len(study.best_trial.params) < 2:
        return [(k, 1.0) for k in (study.best_trial.params if done else {})]
    try:
        return sorted(optuna.importance.get_param_importances(study).items(), key=lambda kv: -kv[1])
    except (RuntimeError, ValueError, ZeroDivisionError):
        return []


def summarize(cfg: SweepConfig, study: optuna.Study, status: str) -> dict[str, Any]:
    """Rewrite the ledger files and return their summary."""
    rows = ledger_rows(study)
    noise_runs = study.user_attrs.get("noise", [])
    best = best_row(rows)
    noise = noise_of([best["value"], *[n["value"] for n in noise_runs]]) if best and noise_runs else None
    extra = {"status": status, "sweep": cfg.sweep_id, "space": cfg.space, "sampler": cfg.sampler, "pruner": cfg.pruner,
             "budget_s": cfg.budget_s, "n_trials_budget": cfg.n_trials, "spent_s": round(study.user_attrs.get("spent_s", 0), 1),
             "noise_runs": noise_runs, "max_iters": cfg.base.get("max_iters")}  # fmt: skip
    return write_ledger(cfg.out_dir, cfg.plot_path or Path(cfg.out_dir) / "ledger.png", title=cfg.title or cfg.sweep_id,
                        metric=cfg.metric, rows=rows, noise=noise, helped=importances(study), extra=extra)  # fmt: skip


class _Clock:
    """Seconds spent on the study, across processes (the study's `spent_s` plus this session)."""

    def __init__(self, study: optuna.Study):
        self.study, self.before, self.t0 = (
            study,
            float(study.user_attrs.get("spent_s", 0.0)),
            time.monotonic(),
        )

    @property
    def spent(self) -> float:
        return self.before + time.monotonic() - self.t0

    def save(self) -> None:
        self.study.set_user_attr("spent_s", round(self.spent, 2))


def run_sweep(
    config: dict[str, Any], reporter: Any = None, registry: Any = None, workspace: Any = None
) -> dict[str, Any]:
    """Run (or resume) the sweep `config` until its budget, its grid or a cancel ends it.

    Args:
        config: a `SweepConfig` dict.
        reporter: the job's reporter (progress; `stop_requested` on cancel), or None.
        registry, workspace: the lab (default: from `config["home"]`).

    Returns:
        The ledger summary (`sweep_report.write_ledger`) with "status" "done" or "cancelled".
    """
    cfg = SweepConfig.from_dict(config)
    if registry is None or workspace is None:
        from scratchlab.lab.registry import Registry  # the job face opens the lab itself
        from scratchlab.lab.workspace import get_workspace

        workspace = get_workspace(cfg.home or None)
        registry = Registry.from_workspace(workspace)
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    study = open_study(cfg)
    requeue_interrupted(study)
    clock = _Clock(study)
    seed = int(cfg.base.get("seed", 1337))
    iters = int(cfg.base.get("max_iters", 1))
    stop = (lambda: bool(reporter.stop_requested)) if reporter is not None else (lambda: False)
    total_trials = (cfg.n_trials or 0) + cfg.seed_runs
    n_grid = grid_size(cfg.space) if cfg.sampler == "grid" else None

    def counts() -> tuple[int, int, int]:
        ts = study.get_trials(deepcopy=False)
        return (sum(t.state.name in ("COMPLETE", "PRUNED") for t in ts), sum(t.state.name == "PRUNED" for t in ts),
                sum(t.state.name == "FAIL" for t in ts))  # fmt: skip

    def full_trial_s() -> float:
        secs = [
            t.user_attrs.get("seconds", 0)
            for t in study.get_trials(deepcopy=False)
            if t.state.name == "COMPLETE"
        ]
        return statistics.median(secs) if secs else float(cfg.trial_estimate_s)

    def report(label: str, step: int = 0) -> None:
        if reporter is None:
            return
        done, pruned, _ = counts()
        try:
            b = study.best_trial
            best = f"best {b.value:.4f} ({fmt_params(b.params)})"
        except ValueError:
            best = "no finished trial yet"
        if cfg.budget_s:
            eta, units, total = (
                cfg.budget_s - clock.spent,
                int(min(clock.spent, cfg.budget_s)),
                int(cfg.budget_s),
            )
        else:
            left = total_trials - done - len(study.user_attrs.get("noise", []))
            eta = max(0.0, left * (full_trial_s() or 0) - step / max(iters, 1) * (full_trial_s() or 0))
            units, total = done * iters + step, total_trials * iters
        msg = f"{label} · {done} tried, {pruned} pruned · {best} · ETA {fmt_eta(max(0, eta))}"
        reporter.update(units, max(1, total), msg)

    def budget_left(reserve_noise: bool) -> bool:
        done, _, failed = counts()
        if cfg.n_trials and done >= cfg.n_trials:
            return False
        if n_grid is not None and done + failed >= n_grid:
            return False
        if failed > max(3, 2 * done + 2):  # every trial fails: a setting is wrong, say so instead of looping
            return False
        if cfg.budget_s:
            need = full_trial_s() * (1 + (cfg.seed_runs if reserve_noise else 0))
            return clock.spent + need <= cfg.budget_s
        return True

    status = "done"
    while budget_left(reserve_noise=True) and not stop():
        trial = study.ask()
        params = suggest(trial, cfg.space)
        trial.set_user_attr("seed", seed)  # recorded at the start: a killed trial's row still says it
        label = f"trial {trial.number}: {fmt_params(params)}"
        report(label)

        def on_val(step: int, value: float, trial=trial) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        out = run_trial(registry, workspace, cfg.kind, trial_config(cfg, params, seed), registry.free_name("run", f"{cfg.name}-t{trial.number}"),
                        metric=cfg.metric, on_val=on_val, progress=lambda s, m, label=label: report(label, s), stop=stop,
                        tags={"sweep": cfg.sweep_id, "trial": trial.number, "seed": seed})  # fmt: skip
        for k, v in (("seed", seed), ("run", out["run"]), ("seconds", out["seconds"]), ("steps", out["steps"]),
                     ("end_s", round(clock.spent, 1))):  # fmt: skip
            trial.set_user_attr(k, v)
        clock.save()
        if out["status"] == "done" and out["value"] is not None:
            _tell(study, trial, out["value"])
        elif out["status"] == "pruned":
            _tell(study, trial, state=optuna.trial.TrialState.PRUNED)
        elif out["status"] == "cancelled":
            trial.set_user_attr("status", "interrupted")
            _tell(study, trial, state=optuna.trial.TrialState.FAIL)
            study.enqueue_trial(params, user_attrs={"retry_of": trial.number})
            status = "cancelled"
            break
        else:
            trial.set_user_attr("error", (out.get("error") or "")[:300])
            _tell(study, trial, state=optuna.trial.TrialState.FAIL)
        summarize(cfg, study, "running")
    if stop():
        status = "cancelled"
    if status == "done":
        status = _noise_runs(cfg, study, registry, workspace, clock, stop, report)
    clock.save()
    return summarize(cfg, study, status)


def _noise_runs(
    cfg: SweepConfig, study: optuna.Study, registry, workspace, clock: _Clock, stop, report
) -> str:
    """Re-run the best config with `seed_runs` more seeds (once per study). Returns the sweep status."""
    try:
        best = study.best_trial
    except ValueError:
        return "done"
    seed = int(cfg.base.get("seed", 1337))
    runs = list(study.user_attrs.get("noise", []))
    for i in range(1, cfg.seed_runs + 1):
        if any(r["seed"] == seed + i for r in runs):
            continue
        label = f"seed noise: best config, seed {seed + i}"
        report(label)
        out = run_trial(registry, workspace, cfg.kind, trial_config(cfg, best.params, seed + i),
                        registry.free_name("run", f"{cfg.name}-best-seed{seed + i}"), metric=cfg.metric,
                        progress=lambda s, m, label=label: report(label, s), stop=stop,
                        tags={"sweep": cfg.sweep_id, "noise_of": best.number, "seed": seed + i})  # fmt: skip
        if out["status"] == "cancelled" or stop():
            return "cancelled"
        if out["value"] is not None:
            runs.append(
                {"seed": seed + i, "value": out["value"], "run": out["run"], "seconds": out["seconds"]}
            )
            study.set_user_attr("noise", runs)
        clock.save()
    return "done"


def run_job(config: dict[str, Any], reporter: Any = None) -> dict[str, Any]:
    """Job entry (`scratchlab.lab.job_child.run_job_main`): run the sweep and return its summary."""
    out = run_sweep(config, reporter)
    out.pop("rows", None)  # the job row keeps the summary; the ledger files keep the rows
    best = out.get("best") or {}
    out.update(best_value=best.get("value"), best_run=best.get("run"))
    return out


def main(argv: list[str] | None = None) -> int:
    return job_main(argv, prog="python -m scratchlab.training.sweep", what="Run a sweep.", config_name="SweepConfig",
                    work=run_job, alone=lambda config: print(json.dumps(
                        {k: v for k, v in run_job(config).items() if k != "rows"}, indent=2, default=str)) or 0)  # fmt: skip


__all__ = ["SweepConfig", "asdict", "open_study", "run_sweep", "storage_url", "summarize"]

if __name__ == "__main__":
    sys.exit(main())
