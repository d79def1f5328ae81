"""The ledger of a sweep or research loop: a table, a plot of best-so-far against time, seed noise.

    from scratchlab.training.sweep_report import write_ledger, noise_of, within_noise
    summary = write_ledger(out_dir, plot_path, title="sweep-3: lr on shakespeare", metric="val_loss",
                           rows=rows, noise=noise, helped=[("lr", 0.82), ...])
    # writes ledger.json (the record), ledger.md (the table) and the PNG; returns the summary dict

A row is one trial: {"n", "status" ("done" | "pruned" | "failed" | "kept" | "discarded" |
"interrupted"), "params", "change" (research loops), "value" (the score, lower is better), "seed",
"run", "seconds", "end_s" (the experiment's clock when it ended, seconds), "steps"}.

Seed noise: the best config re-run with more seeds gives values v_1..v_k; their sample standard
deviation is the noise. Two results are "within noise" when they differ by less than `NOISE_SIGMAS`
standard deviations of that noise (a difference of two noisy values has sqrt(2) times the noise of one;
2 sigma is a plain, slightly generous threshold for three runs).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from scratchlab.lab.atomic import atomic_write_json, atomic_write_text
from scratchlab.training.sweep_space import fmt_params

NOISE_SIGMAS = 2.0
MAX_TABLE_ROWS = 60
LEDGER_JSON, LEDGER_MD = "ledger.json", "ledger.md"
FINISHED = ("done", "kept", "discarded")  # rows whose value is a full run's score


def noise_of(values: list[float]) -> dict[str, Any] | None:
    """{"values", "mean", "std", "range"} of one config's scores over seeds, or None for < 2 values."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if len(vals) < 2:
        return None
    return {"values": vals, "mean": statistics.fmean(vals), "std": statistics.stdev(vals),
            "range": max(vals) - min(vals)}  # fmt: skip


def within_noise(a: float, b: float, noise: dict[str, Any] | None) -> bool | None:
    """True when |a - b| < NOISE_SIGMAS * noise std; None when the noise is not measured."""
    if noise is None:
        return None
    return abs(a - b) < NOISE_SIGMAS * noise["std"]


def best_curve(rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(seconds, best score so far) at the end of every finished trial, in time order."""
    out, best = [], math.inf
    for r in sorted(rows, key=lambda r: r.get("end_s") or 0):
        if r.get("status") in FINISHED and r.get("value") is not None and r["value"] < best:
            best = r["value"]
        if best < math.inf:
            out.append((float(r.get("end_s") or 0), best))
    return out


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [r for r in rows if r.get("status") in FINISHED and r.get("value") is not None]
    return min(done, key=lambda r: r["value"]) if done else None


def _f(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, int | float) and math.isfinite(v) else "—"


def markdown(title: str, metric: str, rows: list[dict[str, Any]], noise: dict[str, Any] | None,
             lines: list[str]) -> str:  # fmt: skip
    """The ledger as Markdown: summary lines, then one table row per trial (best marked)."""
    best = best_row(rows)
    research = any("change" in r for r in rows)
    head = "| # | status | change | " if research else "| # | status | settings | "
    out = [f"# {title}", "", *[f"- {ln}" for ln in lines], "",
           head + f"{metric} | vs best | seed | steps | s | run |", "|---:|---|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in rows[-MAX_TABLE_ROWS:]:
        v = r.get("value")
        d = "" if best is None or v is None else f"{v - best['value']:+.4f}"
        if best is not None and v is not None and r is not best and within_noise(v, best["value"], noise):
            d += " (noise)"
        what = r.get("change") or fmt_params(r.get("params") or {})
        mark = " **best**" if r is best else ""
        out.append(f"| {r['n']} | {r['status']}{mark} | {what} | {_f(v)} | {d} | {r.get('seed', '')} | "
                   f"{r.get('steps', '')} | {r.get('seconds', 0):.0f} | {r.get('run', '')} |")  # fmt: skip
    return "\n".join(out) + "\n"


def plot_ledger(rows: list[dict[str, Any]], path: str | Path, title: str, metric: str,
                start: float | None = None) -> Path:  # fmt: skip
    """Best-so-far against minutes (a step line) over every trial's score (dots; pruned: x at its last
    eval; discarded research steps: grey). Returns the PNG path."""
    from scratchlab.training.plots import FIGSIZE, _plt, _save  # matplotlib: slow to import, only here

    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    styles = {"done": ("o", "tab:blue", "trial"), "kept": ("o", "tab:green", "kept"),
              "discarded": ("o", "tab:gray", "discarded"), "pruned": ("x", "tab:red", "pruned (last eval)")}  # fmt: skip
    for status, (marker, color, label) in styles.items():
        pts = [
            (r["end_s"] / 60, r["value"])
            for r in rows
            if r.get("status") == status and r.get("value") is not None
        ]
        if pts:
            ax.scatter(*zip(*pts, strict=True), marker=marker, color=color, s=28, label=label, zorder=3)
    curve = best_curve(rows)
    if curve:
        xs, ys = [c[0] / 60 for c in curve], [c[1] for c in curve]
        ax.step(xs, ys, where="post", color="black", lw=1.8, label="best so far", zorder=2)
    if start is not None:
        ax.axhline(start, color="tab:orange", ls="--", lw=1, label=f"start {start:.3f}")
    ax.set_xlim(left=0)
    ax.set_xlabel("minutes")
    ax.set_ylabel(f"{metric} (lower is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def write_ledger(out_dir: str | Path, plot_path: str | Path | None, *, title: str, metric: str,
                 rows: list[dict[str, Any]], noise: dict[str, Any] | None = None,
                 helped: list[tuple[str, float]] | None = None, start: float | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Write ledger.json, ledger.md and the plot into `out_dir`; return the summary.

    Args:
        rows: the trials (see the module docstring).
        noise: `noise_of` the best config over seeds, or None.
        helped: (what, how much) pairs, most first: parameter importances (sweeps) or kept changes
            with their gain (research loops).
        start: the starting score (research loops), drawn as a line.
        extra: more fields for the JSON (status, budget, ...).

    Returns:
        {"best": row, "within_noise": [trial numbers within noise of the best], "helped", "noise",
        "n_done", "n_pruned", "n_failed", "markdown", "json", "plot", ...extra}.
    """
    out_dir = Path(out_dir)
    best = best_row(rows)
    near = []
    if best is not None and noise is not None:
        near = [r["n"] for r in rows if r is not best and r.get("status") in FINISHED and r.get("value") is not None
                and within_noise(r["value"], best["value"], noise)]  # fmt: skip
    count = {s: sum(r.get("status") == s for r in rows) for s in ("pruned", "failed", "interrupted")}
    finished = sum(r.get("status") in FINISHED for r in rows)
    lines = [f"{len(rows)} trials: {finished} finished, {count['pruned']} pruned, {count['failed']} failed"
             + (f", {count['interrupted']} interrupted (run again)" if count["interrupted"] else "")]  # fmt: skip
    if best is not None:
        what = best.get("change") or fmt_params(best.get("params") or {})
        lines.append(
            f"best: #{best['n']} {what}: {metric} {_f(best['value'])} (seed {best.get('seed')}, {best.get('run')})"
        )
    if start is not None and best is not None:
        lines.append(f"start: {_f(start)}; gain {start - best['value']:+.4f}")
    if noise is not None:
        lines.append(
            f"seed noise of the best config: {', '.join(_f(v) for v in noise['values'])} "
            f"(std {noise['std']:.4f}); results closer than {NOISE_SIGMAS * noise['std']:.4f} are within noise"
        )
        lines.append("within noise of the best: " + (", ".join(f"#{n}" for n in near) or "none"))
    if helped:
        lines.append("what helped most: " + "; ".join(f"{k} ({v:+.4f})" if "=" in k or "→" in k else f"{k} ({v:.2f})"
                                                      for k, v in helped[:5]))  # fmt: skip
    md = markdown(title, metric, rows, noise, lines)
    plot = None
    if plot_path is not None and rows:
        plot = str(plot_ledger(rows, plot_path, title, metric, start))
    summary = {"title": title, "metric": metric, "best": best, "within_noise": near, "helped": helped or [],
               "noise": noise, "n_trials": len(rows), "n_pruned": count["pruned"], "n_failed": count["failed"],
               "start": start, "rows": rows, "lines": lines, "plot": plot, **(extra or {})}  # fmt: skip
    atomic_write_json(out_dir / LEDGER_JSON, summary)
    atomic_write_text(out_dir / LEDGER_MD, md)
    return {**summary, "markdown": str(out_dir / LEDGER_MD), "json": str(out_dir / LEDGER_JSON)}
