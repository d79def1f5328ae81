"""A keep/discard research loop: change one setting at a time, keep what lowers the val loss.

    python -m scratchlab.training.research --config research.json --job-id job-5 --home ~/lab
    run_research(config, reporter, registry, workspace)

The loop (after karpathy/autoresearch, without an outside coding agent and on a CPU):
1. Train the starting config (`base`) as run 0; it is the kept config.
2. The proposer picks the next change from the ledger: one setting of `space` moved one notch from the
   kept config (lr x2 or /2, a layer more or less, the next value of a list, ...). Deterministic:
   a direction that helped before is tried again first (momentum), then settings not tried yet in
   order, then directions that once hurt; a config already run is never run twice.
3. The change is a registered run with the same step budget and seed. If its score beats the kept one
   by more than `min_delta`, it is kept (the new base), else discarded.
4. Stop on the budget (seconds or runs), on the target score, on a plateau (`plateau` discards in a
   row) or when no untried change is left; then re-run the best config with `seed_runs` more seeds.

Why not Optuna here: one change per run makes "what helped most?" a plain reading of the ledger (the
kept changes and their gains), which a joint sampler cannot give. The sweeps (`training.sweep`) are the
Optuna side. The score is the trainer's val loss on the dataset's fixed val split (see
`sweep_trial`); `space` can only hold model and optimiser settings (`sweep_space.SWEEPABLE`), never
the data, the eval windows or the scorer, so the loop cannot improve its number by changing its test.

State (`research.json`, atomic) is rewritten after every run, so a killed loop resumes where it was.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from scratchlab.lab.atomic import atomic_write_json
from scratchlab.lab.job_child import job_main
from scratchlab.training.report import fmt_eta
from scratchlab.training.sweep_report import noise_of, write_ledger
from scratchlab.training.sweep_space import value_type
from scratchlab.training.sweep_trial import run_trial

STATE_FILE = "research.json"
DEFAULT_SPACE = ("lr", "n_layer", "n_embd", "dropout", "warmup_iters", "batch_size")


@dataclass
class ResearchConfig:
    """A research loop's configuration (the job's config and the research artifact's)."""

    kind: str = "gpt"
    research_id: str = ""
    name: str = "research"
    base: dict[str, Any] = field(default_factory=dict)  # the starting run settings
    space: dict[str, dict[str, Any]] = field(default_factory=dict)  # what the loop may change
    budget_s: float | None = None
    max_trials: int | None = None  # runs, the start included (seed re-runs not counted)
    target: float | None = None  # stop once the kept score is <= this
    plateau: int = 4  # stop after this many discards in a row
    min_delta: float = 0.002  # a change must beat the kept score by more than this to be kept
    seed_runs: int = 2
    metric: str = "val_loss"
    out_dir: str = ""
    plot_path: str = ""
    home: str = ""
    title: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResearchConfig:
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in d.items() if k in known})
        if not cfg.budget_s and not cfg.max_trials and cfg.target is None:
            raise ValueError("a research loop needs a budget (budget_s or max_trials) or a target")
        return cfg


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def moves(name: str, value: Any, spec: dict[str, Any], kind: str = "gpt") -> list[tuple[str, Any]]:
    """(direction, new value) one notch away from `value` inside `spec`: "up"/"down", or "=v" for
    unordered choices."""
    if "choices" in spec:
        ch = list(spec["choices"])
        if isinstance(ch[0], str | bool):
            return [(f"={c}", c) for c in ch if c != value]
        ordered = sorted(ch)
        below = [c for c in ordered if c < value]
        above = [c for c in ordered if c > value]
        return [m for m in (("up", above[0]) if above else None, ("down", below[-1]) if below else None) if m]
    lo, hi = spec["low"], spec["high"]
    if spec.get("log"):
        up, down = value * 2, value / 2
    else:
        d = (hi - lo) / 4
        up, down = value + d, value - d
    if value_type(kind, name) is int:
        up, down = int(round(max(up, value + 1))), int(round(min(down, value - 1)))
    else:
        up, down = float(f"{up:.4g}"), float(f"{down:.4g}")
    return [(k, v) for k, v in (("up", min(up, hi)), ("down", max(down, lo))) if v != value]


def propose(current: dict[str, Any], space: dict[str, dict[str, Any]], rows: list[dict[str, Any]],
            kind: str = "gpt") -> tuple[str, Any, str] | None:  # fmt: skip
    """The next change (setting, new value, direction) from the ledger, or None when none is left."""
    tried = {json.dumps(r["params"], sort_keys=True) for r in rows}
    history: dict[tuple[str, str], float] = {}  # (setting, direction) -> gain of its latest try
    for r in rows:
        if r.get("move"):
            history[tuple(r["move"])] = r.get("gain") or 0.0
    scored = []
    for order, (name, spec) in enumerate(space.items()):
        for direction, value in moves(name, current[name], spec, kind):
            if json.dumps({**current, name: value}, sort_keys=True) in tried:
                continue
            gain = history.get((name, direction))
            rank = (0, -gain) if gain is not None and gain > 0 else (1, 0.0) if gain is None else (2, -gain)
            scored.append((rank, order, name, value, direction))
    if not scored:
        return None
    _, _, name, value, direction = min(scored, key=lambda s: (s[0], s[1]))
    return name, value, direction


def _start_params(cfg: ResearchConfig) -> dict[str, Any]:
    from scratchlab.training.sweep_space import CONFIGS  # the config defaults fill what base leaves out

    defaults = CONFIGS[cfg.kind]()
    return {k: cfg.base.get(k, getattr(defaults, k)) for k in cfg.space}


def _load(cfg: ResearchConfig) -> dict[str, Any]:
    p = Path(cfg.out_dir) / STATE_FILE
    if p.exists():
        return json.loads(p.read_text(encoding="utf-8"))
    return {"rows": [], "current": _start_params(cfg), "kept_value": None, "start_value": None, "spent_s": 0.0,
            "noise": [], "stopped_because": None}  # fmt: skip


def run_research(
    config: dict[str, Any], reporter: Any = None, registry: Any = None, workspace: Any = None
) -> dict[str, Any]:
    """Run (or resume) the loop until budget, target, plateau or cancel. Returns the ledger summary
    (`sweep_report.write_ledger`) with "status" and "stopped_because"."""
    cfg = ResearchConfig.from_dict(config)
    if registry is None or workspace is None:
        from scratchlab.lab.registry import Registry  # the job face opens the lab itself
        from scratchlab.lab.workspace import get_workspace

        workspace = get_workspace(cfg.home or None)
        registry = Registry.from_workspace(workspace)
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    st = _load(cfg)
    rows = st["rows"]
    t0, before = time.monotonic(), float(st["spent_s"])
    seed = int(cfg.base.get("seed", 1337))
    stop = (lambda: bool(reporter.stop_requested)) if reporter is not None else (lambda: False)

    def spent() -> float:
        return before + time.monotonic() - t0

    def save() -> None:
        st["spent_s"] = round(spent(), 2)
        atomic_write_json(Path(cfg.out_dir) / STATE_FILE, st)

    def run_s() -> float:
        secs = [r["seconds"] for r in rows if r["status"] in ("kept", "discarded")]
        return statistics.median(secs) if secs else 0.0

    def report(label: str, step: int = 0) -> None:
        if reporter is None:
            return
        kept = st["kept_value"]
        best = f"kept {kept:.4f}" if kept is not None else "starting"
        if cfg.budget_s:
            units, total, eta = int(min(spent(), cfg.budget_s)), int(cfg.budget_s), cfg.budget_s - spent()
        else:
            n = cfg.max_trials or len(rows) + 1
            units, total = len(rows) * 100 + int(100 * step / max(1, cfg.base.get("max_iters", 1))), n * 100
            eta = (n - len(rows)) * run_s()
        reporter.update(
            units, max(1, total), f"{label} · {len(rows)} runs · {best} · ETA {fmt_eta(max(0, eta))}"
        )

    def why_stop() -> str | None:
        if st["kept_value"] is not None and cfg.target is not None and st["kept_value"] <= cfg.target:
            return f"target {cfg.target} reached"
        tail = [r["status"] for r in rows[-cfg.plateau :]]
        if (
            cfg.plateau
            and len(tail) == cfg.plateau
            and all(s != "kept" for s in tail)
            and len(rows) > cfg.plateau
        ):
            return f"plateau: no gain in the last {cfg.plateau} runs"
        if cfg.max_trials and len(rows) >= cfg.max_trials:
            return f"budget: {cfg.max_trials} runs"
        if cfg.budget_s and rows and spent() + run_s() * (1 + cfg.seed_runs) > cfg.budget_s:
            return f"budget: {cfg.budget_s / 60:.0f} minutes"
        return None

    status = "done"
    while not stop():
        reason = why_stop()
        if reason:
            st["stopped_because"] = reason
            break
        current = dict(st["current"])
        if not rows:
            params, change, move = current, "start", None
        else:
            nxt = propose(current, cfg.space, rows, cfg.kind)
            if nxt is None:
                st["stopped_because"] = "every one-notch change of the kept config was tried"
                break
            name, value, direction = nxt
            params, change, move = (
                {**current, name: value},
                f"{name} {_fmt(current[name])}→{_fmt(value)}",
                [name, direction],
            )
        label = f"run {len(rows)}: {change}"
        report(label)
        run_cfg = {**cfg.base, **params, "seed": seed}
        out = run_trial(registry, workspace, cfg.kind, run_cfg, registry.free_name("run", f"{cfg.name}-r{len(rows)}"),
                        metric=cfg.metric, progress=lambda s, m, label=label: report(label, s), stop=stop,
                        tags={"research": cfg.research_id, "change": change, "seed": seed})  # fmt: skip
        if out["status"] == "cancelled":
            status = "cancelled"
            break
        v = out["value"]
        kept = st["kept_value"]
        ok = v is not None and math.isfinite(v) and (kept is None or v < kept - cfg.min_delta)
        row = {"n": len(rows), "status": "kept" if ok else ("failed" if v is None else "discarded"), "change": change,
               "params": params, "value": v, "seed": seed, "run": out["run"], "seconds": out["seconds"],
               "end_s": round(spent(), 1), "steps": out["steps"], "move": move,
               "gain": None if kept is None or v is None else round(kept - v, 5)}  # fmt: skip
        rows.append(row)
        if ok:
            st["current"], st["kept_value"] = params, v
            if st["start_value"] is None:
                st["start_value"] = v
        save()
        _write(cfg, st, "running")
    if stop():
        status = "cancelled"
    if status == "done" and st["kept_value"] is not None:
        status = _noise(cfg, st, registry, workspace, seed, stop, report, save)
    save()
    return _write(cfg, st, status)


def _noise(cfg, st, registry, workspace, seed, stop, report, save) -> str:
    best = min((r for r in st["rows"] if r["status"] == "kept"), key=lambda r: r["value"])
    for i in range(1, cfg.seed_runs + 1):
        if any(n["seed"] == seed + i for n in st["noise"]):
            continue
        label = f"seed noise: kept config, seed {seed + i}"
        report(label)
        out = run_trial(registry, workspace, cfg.kind, {**cfg.base, **best["params"], "seed": seed + i},
                        registry.free_name("run", f"{cfg.name}-best-seed{seed + i}"), metric=cfg.metric,
                        progress=lambda s, m, label=label: report(label, s), stop=stop,
                        tags={"research": cfg.research_id, "seed": seed + i})  # fmt: skip
        if out["status"] == "cancelled" or stop():
            return "cancelled"
        if out["value"] is not None:
            st["noise"].append({"seed": seed + i, "value": out["value"], "run": out["run"]})
        save()
    return "done"


def _write(cfg: ResearchConfig, st: dict[str, Any], status: str) -> dict[str, Any]:
    rows = st["rows"]
    kept = [r for r in rows if r["status"] == "kept" and r["gain"] is not None]
    helped = [(r["change"], r["gain"]) for r in sorted(kept, key=lambda r: -r["gain"])]
    best = min((r for r in rows if r["status"] == "kept"), key=lambda r: r["value"], default=None)
    noise = noise_of([best["value"], *[n["value"] for n in st["noise"]]]) if best and st["noise"] else None
    extra = {"status": status, "research": cfg.research_id, "stopped_because": st.get("stopped_because"),
             "spent_s": st.get("spent_s"), "budget_s": cfg.budget_s, "target": cfg.target, "kept": st["current"],
             "noise_runs": st["noise"], "space": cfg.space, "max_iters": cfg.base.get("max_iters")}  # fmt: skip
    return write_ledger(cfg.out_dir, cfg.plot_path or Path(cfg.out_dir) / "ledger.png", title=cfg.title or cfg.research_id,
                        metric=cfg.metric, rows=rows, noise=noise, helped=helped, start=st["start_value"], extra=extra)  # fmt: skip


def run_job(config: dict[str, Any], reporter: Any = None) -> dict[str, Any]:
    """Job entry (`scratchlab.lab.job_child.run_job_main`)."""
    out = run_research(config, reporter)
    out.pop("rows", None)
    best = out.get("best") or {}
    out.update(best_value=best.get("value"), best_run=best.get("run"))
    return out


def main(argv: list[str] | None = None) -> int:
    return job_main(argv, prog="python -m scratchlab.training.research", what="Run a research loop.",
                    config_name="ResearchConfig", work=run_job,
                    alone=lambda config: print(json.dumps(run_job(config), indent=2, default=str)) or 0)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
