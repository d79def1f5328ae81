"""Loss-curve and ablation charts (matplotlib, Agg backend, PNG written atomically).

    from scratchlab.training.plots import plot_losses, plot_compare, plot_ablation
    plot_losses(history, "plots/run-3-loss.png")                  # train vs val of one run
    plot_compare({"run-3": h3, "run-4": h4}, "plots/compare.png")  # val (and train) of several runs
    plot_ablation(rows, "plots/ablation.png")                      # bar chart of val loss per variant

`history` is the trainer's `history.json`: {"eval": [{"step", "train_loss", "val_loss", ...}],
"log": [[step, minibatch_loss], ...]}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scratchlab.lab.atomic import atomic_path

DPI = 110
FIGSIZE = (8, 4.5)


def _plt():
    # matplotlib is optional and slow to import; the headless "Agg" backend must be chosen before pyplot
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt  # after use("Agg"), as said above

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    _plt().close(fig)
    return path


def plot_losses(history: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Train (minibatch, faint; fixed-window eval, solid) and val loss against step. Returns the PNG path."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    log = history.get("log") or []
    if log:
        ax.plot(
            [s for s, _ in log],
            [v for _, v in log],
            color="tab:blue",
            alpha=0.25,
            lw=1,
            label="train (batch)",
        )
    ev = history.get("eval") or []
    if ev:
        steps = [e["step"] for e in ev]
        ax.plot(steps, [e["train_loss"] for e in ev], "o-", color="tab:blue", ms=3, label="train (eval)")
        ax.plot(steps, [e["val_loss"] for e in ev], "o-", color="tab:orange", ms=3, label="val")
        best = min(ev, key=lambda e: e["val_loss"])
        ax.annotate(f"best val {best['val_loss']:.3f}", (best["step"], best["val_loss"]),
                    textcoords="offset points", xytext=(-60, 12), fontsize=9)  # fmt: skip
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"{title} loss" if title else "loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_compare(histories: dict[str, dict[str, Any]], path: str | Path, title: str = "val loss") -> Path:
    """Overlay the val loss (solid) and eval train loss (dashed) of several runs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for i, (label, h) in enumerate(histories.items()):
        ev = h.get("eval") or []
        if not ev:
            continue
        color = f"C{i % 10}"
        steps = [e["step"] for e in ev]
        ax.plot(steps, [e["val_loss"] for e in ev], "-", color=color, lw=1.8, label=f"{label} val")
        ax.plot(steps, [e["train_loss"] for e in ev], "--", color=color, lw=1, alpha=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(f"{title} (dashed: train)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_ablation(
    rows: list[dict[str, Any]], path: str | Path, title: str = "ablation: final val loss"
) -> Path:
    """Horizontal bars of val loss per variant (baseline first), labelled with the delta."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FIGSIZE[0], 0.5 * len(rows) + 1.2))
    names = [r["variant"] for r in rows]
    vals = [r["val_loss"] for r in rows]
    colors = [
        "tab:gray" if i == 0 else ("tab:red" if r.get("delta", 0) > 0 else "tab:green")
        for i, r in enumerate(rows)
    ]
    ax.barh(names, vals, color=colors)
    for i, r in enumerate(rows):
        d = r.get("delta")
        label = f"{r['val_loss']:.3f}" + ("" if i == 0 or d is None else f" ({d:+.3f})")
        ax.text(r["val_loss"], i, " " + label, va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(min(vals) * 0.9 if vals else 0, max(vals) * 1.15 if vals else 1)
    ax.set_xlabel("val loss (nats/token)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
