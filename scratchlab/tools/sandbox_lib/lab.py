"""The lab's runs, read-only, for code in the sandbox: ``from lab import runs, curve, plot_runs``.

`scratchlab.tools.sandbox` mounts this folder at /lab/lib (on ``sys.path``) and exports the lab's
runs to /lab/metrics: ``runs.json`` (newest first) and ``<run-id>.csv`` (step,key,value rows of the
logged metrics). Standard library only, plus matplotlib in `plot_runs`.

    from lab import runs, curve, plot_runs
    runs()[0]["name"]                 # the newest run
    steps, losses = curve("last", "val_loss")
    plot_runs(2)                      # train/val loss of the two newest runs -> loss.png
"""

from __future__ import annotations

import csv
import json
import os

METRICS_DIR = os.environ.get("SCRATCHLAB_LAB_METRICS", "/lab/metrics")
LATEST = ("last", "latest", "newest")


def runs(n: int | None = None) -> list[dict]:
    """The lab's runs, newest first: dicts with 'id', 'name', 'config' and 'metrics' (final values).

    Args:
        n: keep only the n newest (None: all exported, at most 50).
    """
    with open(os.path.join(METRICS_DIR, "runs.json"), encoding="utf-8") as f:
        found = json.load(f)
    return found[:n] if n is not None else found


def run(ref: str | int | dict = "last") -> dict:
    """One run by id ("run-3"), name, both as the lab lists them ("run-3 gpt-3"), "last", position in
    `runs()` (0 = newest) or a dict from `runs()`.

    Raises:
        LookupError: no run matches (the message lists the runs there are).
    """
    if isinstance(ref, dict):
        return ref
    found = runs()
    if isinstance(ref, int):
        if 0 <= ref < len(found):
            return found[ref]
    elif str(ref).lower() in LATEST and found:
        return found[0]
    else:
        for r in found:  # also as the lab prints it: "run-2 tiber2" (list_runs), "tiber2 (run-2)"
            rid, name = r.get("id"), r.get("name")
            if str(ref).strip() in (rid, name, f"{rid} {name}", f"{name} ({rid})"):
                return r
    names = ", ".join(f"{r.get('name')} ({r.get('id')})" for r in found) or "none yet"
    raise LookupError(f"no run {ref!r}; runs: {names}")


def curve(ref: str | int | dict = "last", key: str = "val_loss") -> tuple[list[int], list[float]]:
    """(steps, values) of one logged metric of a run, in step order.

    Args:
        ref: the run (see `run`).
        key: the metric: "train_loss", "val_loss" (others the run logged: see its CSV).

    Raises:
        LookupError: unknown run, or the run logged no such metric (the message lists the keys it has).
    """
    r = run(ref)
    path = os.path.join(METRICS_DIR, f"{r['id']}.csv")
    points, keys = [], set()
    if os.path.exists(path):
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                keys.add(row["key"])
                if row["key"] == key:
                    points.append((int(float(row["step"])), float(row["value"])))
    if not points:
        raise LookupError(
            f"run {r.get('name')} ({r['id']}) has no {key!r} values; it has: {sorted(keys) or 'none'}"
        )
    points.sort()
    return [s for s, _ in points], [v for _, v in points]


def plot_runs(
    refs: int | list = 2, keys: tuple[str, ...] | str = ("train_loss", "val_loss"), path: str = "loss.png"
) -> str:
    """Plot metrics of several runs on one chart and save it as a PNG.

    Args:
        refs: how many of the newest runs (int), or a list of runs (see `run`).
        keys: the metric(s) to draw per run.
        path: the picture to write (in the current folder, so it is returned as an artifact).

    Returns:
        `path`. Prints which runs and keys were drawn.
    """
    import matplotlib  # lazy: slow to import, and only plots need it (the rest is standard library)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg")

    chosen = runs(refs) if isinstance(refs, int) else [run(r) for r in refs]
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = []
    for r in chosen:
        for key in keys:
            try:
                steps, values = curve(r, key)
            except LookupError:
                continue
            ax.plot(steps, values, label=f"{r.get('name')} {key}", linestyle="--" if key.startswith("train") else "-",
                    marker="o" if len(steps) <= 20 else None, markersize=3)  # fmt: skip  # few points: show them
            drawn.append(f"{r.get('name')}:{key}")
    if not drawn:
        raise LookupError(
            f"nothing to plot: runs {[r.get('name') for r in chosen]} have no {list(keys)} values"
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss" if all("loss" in k for k in keys) else ", ".join(keys))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"saved {path}: {', '.join(drawn)}")
    return path
