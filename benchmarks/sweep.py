"""Sweep and research-loop benchmark on the CPU Shakespeare config (issue 19's targets).

    nice -n 5 .venv/bin/python benchmarks/sweep.py                 # full: 500 steps/trial, 10-minute sweep
    nice -n 5 .venv/bin/python benchmarks/sweep.py --steps 100 --minutes 3 --research-minutes 3 --tag quick

Writes benchmarks/results/sweep[_TAG].md and .json. Measures, on a fresh workspace:
1. defaults: one run of the default config (4 layers, 128 wide, block 64, `--steps` steps);
2. a `--minutes` sweep (TPE + median pruning) over lr, warmup_iters and dropout, seed re-runs inside
   the budget: best val loss vs the defaults (target: >= 0.05 better), trials run and pruned;
3. full grid vs pruned grid over the same discrete space (`--grid-space`, 12 configs): every config to
   the end, then the same grid in the same order with `--grid-pruner` stopping losing configs at their
   evals (target: the same best loss in <= 50% of the grid's wall time; median pruning: successive
   halving pruned the best config at its first rung in a reduced run, sweep_quick_halving.md). With
   warmup_iters in the space, early stopping prunes the slow starter that ends best (sweep.md);
4. the research loop from the defaults with 3 seeds, `--research-minutes` each (target: 3 of 3 improve).
Quality numbers do not depend on load; wall times and trial counts do (load average recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratchlab.lab.registry import Registry  # noqa: E402
from scratchlab.lab.workspace import get_workspace  # noqa: E402
from scratchlab.training.research import run_research  # noqa: E402
from scratchlab.training.sweep import run_sweep, storage_url  # noqa: E402
from scratchlab.training.sweep_space import parse_space  # noqa: E402
from scratchlab.training.sweep_trial import run_trial  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BASE = {
    "dataset": "shakespeare",
    "tokenizer": "char",
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "block_size": 64,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500, help="steps per trial")
    ap.add_argument("--minutes", type=float, default=10.0, help="budget of the sweep (part 2)")
    ap.add_argument(
        "--research-minutes", type=float, default=10.0, help="budget of each research loop (part 4)"
    )
    ap.add_argument("--n-layer", type=int, default=4, help="model depth (4: the issue's config)")
    ap.add_argument("--n-embd", type=int, default=128, help="model width (128: the issue's config)")
    ap.add_argument("--home", default="/tmp/scratchlab-bench-sweep", help="fresh workspace (deleted first)")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--grid-space", nargs="+", default=["lr=1e-4,3e-4,1e-3,3e-3,1e-2,3e-2", "dropout=0,0.1"],
                    help="the discrete space of part 3")  # fmt: skip
    ap.add_argument("--grid-pruner", default="median", choices=("median", "halving"), help="pruner of part 3")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: sweep,grid,research")
    a = ap.parse_args()
    shutil.rmtree(a.home, ignore_errors=True)
    ws = get_workspace(a.home)
    reg = Registry.from_workspace(ws)
    reg.setup()
    base = {
        **BASE,
        "n_layer": a.n_layer,
        "n_embd": a.n_embd,
        "max_iters": a.steps,
        "eval_interval": max(1, a.steps // 5),
    }
    out: dict = {
        "steps": a.steps,
        "n_layer": a.n_layer,
        "n_embd": a.n_embd,
        "load_before": os.getloadavg(),
        "cpus": os.cpu_count(),
        "started": time.time(),
    }
    skip = set(a.skip.split(",")) - {""}

    def sweep(name, space, **kw):
        cfg = {"sweep_id": name, "name": name, "base": base, "space": parse_space(space), "storage": storage_url(a.home),
               "out_dir": str(Path(a.home) / "runs" / name), "home": a.home,
               "trial_estimate_s": out["defaults"]["seconds"], **kw}  # fmt: skip
        t = time.monotonic()
        res = run_sweep(cfg, None, reg, ws)
        return res, time.monotonic() - t

    t = time.monotonic()
    d = run_trial(reg, ws, "gpt", base, "defaults")
    out["defaults"] = {"val_loss": d["value"], "seconds": round(time.monotonic() - t, 1)}
    print("defaults", out["defaults"], flush=True)

    if "sweep" not in skip:
        res, wall = sweep("budget", ["lr", "warmup_iters", "dropout=0..0.2"], budget_s=a.minutes * 60)
        best = res["best"]
        out["sweep"] = {"budget_min": a.minutes, "wall_s": round(wall, 1), "best": best["value"], "best_params": best["params"],
                        "gain_vs_defaults": out["defaults"]["val_loss"] - best["value"], "trials": res["n_trials"],
                        "pruned": res["n_pruned"], "failed": res["n_failed"], "noise": res["noise"], "plot": res["plot"]}  # fmt: skip
        print("sweep", out["sweep"], flush=True)

    if "grid" not in skip:
        full, g_wall = sweep("grid", a.grid_space, sampler="grid", pruner="none", seed_runs=0)
        pruned, p_wall = sweep("pruned", a.grid_space, sampler="grid", pruner=a.grid_pruner, seed_runs=0)
        out["grid"] = {"grid_best": full["best"]["value"], "grid_params": full["best"]["params"], "grid_wall_s": round(g_wall, 1),
                       "grid_trials": full["n_trials"], "pruned_best": pruned["best"]["value"],
                       "pruned_params": pruned["best"]["params"], "pruned_wall_s": round(p_wall, 1),
                       "pruned_trials": pruned["n_trials"], "pruned_pruned": pruned["n_pruned"],
                       "same_best": pruned["best"]["params"] == full["best"]["params"], "space": a.grid_space,
                       "pruner": a.grid_pruner, "wall_ratio": round(p_wall / g_wall, 3)}  # fmt: skip
        print("grid", out["grid"], flush=True)

    if "research" not in skip:
        out["research"] = []
        for seed in (1, 2, 3):
            name = f"research-seed{seed}"
            cfg = {"research_id": name, "name": name, "base": {**base, "seed": seed}, "space": parse_space(["lr", "n_layer=2,3,4,6", "dropout", "warmup_iters"]),
                   "budget_s": a.research_minutes * 60, "out_dir": str(Path(a.home) / "runs" / name), "home": a.home}  # fmt: skip
            res = run_research(cfg, None, reg, ws)
            r = {"seed": seed, "start": res["start"], "best": res["best"]["value"], "runs": res["n_trials"],
                 "improved": res["best"]["value"] < res["start"], "helped": res["helped"][:3],
                 "stopped_because": res["stopped_because"], "plot": res["plot"]}  # fmt: skip
            out["research"].append(r)
            print("research", r, flush=True)
    out["load_after"] = os.getloadavg()
    write(out, a.tag)
    return 0


def write(out: dict, tag: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"sweep{'_' + tag if tag else ''}"
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2, default=str))
    lb, la = out["load_before"], out["load_after"]
    lines = [f"# Sweeps and research loop ({out['steps']} steps per trial, {out['n_layer']}L {out['n_embd']}d block 64, "
             "char Shakespeare)", "",
             f"Machine: {out['cpus']} CPUs; load average before {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}, after "
             f"{la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f} (a busy machine runs fewer trials per minute).", "",
             f"Defaults: val loss {out['defaults']['val_loss']:.4f} ({out['defaults']['seconds']:.0f} s per run).", ""]  # fmt: skip
    if "sweep" in out:
        s = out["sweep"]
        ok = "met" if s["gain_vs_defaults"] >= 0.05 else "NOT met"
        lines += [f"## {s['budget_min']:g}-minute sweep (TPE + median pruning; lr, warmup_iters, dropout)", "",
                  f"- best {s['best']:.4f} ({s['best_params']}), gain vs defaults {s['gain_vs_defaults']:+.4f} (target >= 0.05: {ok})",
                  f"- {s['trials']} trials, {s['pruned']} pruned, {s['failed']} failed; wall {s['wall_s']:.0f} s incl. 2 seed re-runs",
                  f"- seed noise of the best: {s['noise']}", f"- plot: {s['plot']}", ""]  # fmt: skip
    if "grid" in out:
        g = out["grid"]
        ok = "met" if g["same_best"] and g["wall_ratio"] <= 0.5 else "NOT met"
        lines += [f"## Full grid vs the same grid with {g['pruner']} pruning ({' x '.join(g['space'])})", "",
                  f"- grid: best {g['grid_best']:.4f} {g['grid_params']} in {g['grid_wall_s']:.0f} s ({g['grid_trials']} runs)",
                  f"- pruned grid: best {g['pruned_best']:.4f} {g['pruned_params']} in {g['pruned_wall_s']:.0f} s "
                  f"({g['pruned_trials']} trials, {g['pruned_pruned']} pruned); same best config: {g['same_best']}; "
                  f"wall {g['wall_ratio']:.0%} of the grid's (target: same best in <= 50%: {ok})", ""]  # fmt: skip
    if "research" in out:
        n = sum(r["improved"] for r in out["research"])
        lines += [f"## Research loop from the defaults: improved in {n} of {len(out['research'])} seeds", "",
                  "| seed | start | best | runs | stopped because | what helped most |", "|---:|---:|---:|---:|---|---|"]  # fmt: skip
        for r in out["research"]:
            helped = "; ".join(f"{k} ({v:+.3f})" for k, v in r["helped"])
            lines.append(
                f"| {r['seed']} | {r['start']:.4f} | {r['best']:.4f} | {r['runs']} | {r['stopped_because']} | {helped} |"
            )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.md")


if __name__ == "__main__":
    raise SystemExit(main())
