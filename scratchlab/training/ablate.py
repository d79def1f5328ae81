"""Ablation runner: a baseline GPT and one variant per switch, same data, steps and seed.

    python -m scratchlab.training.ablate --config ablation.json     # {"base": TrainConfig, "switches": [...]}

Switches are names (`no_pos_emb`, `rope`, `no_residual`, `no_layernorm`, `relu`) or `key=value`
overrides of any model/optimisation field (`mlp_ratio=2`, `n_head=1`, `n_layer=2`, `dropout=0.2`); see
`scratchlab.training.switches`.
Each variant trains in `<out_dir>/<variant>/`; the table (val loss, delta vs baseline, params, time)
is written as `ablation.md` and `ablation.json`, and a bar chart as `ablation.png`.

Source: the classic transformer ablations (Vaswani et al. 2017, table 3; nanoGPT-style small runs).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from scratchlab.lab.atomic import atomic_write_json, atomic_write_text
from scratchlab.lab.job_child import job_main
from scratchlab.training.switches import DEFAULT_SWITCHES, parse_switch
from scratchlab.training.trainer import Reporter, TrainConfig, TrainError, train

MAX_VARIANTS = 12


class _VariantReporter:
    """Maps one variant's progress onto the whole ablation's (variant i of n)."""

    def __init__(self, parent: Reporter | None, index: int, count: int, label: str):
        self.parent, self.index, self.count, self.label = parent, index, count, label

    @property
    def stop_requested(self) -> bool:
        return bool(self.parent is not None and self.parent.stop_requested)

    def update(self, step: int, total: int, message: str = "", **metrics: float) -> None:
        if self.parent is not None:
            self.parent.update(self.index * total + step, self.count * total, f"[{self.label}] {message}",
                               **{f"{self.label}.{k}": v for k, v in metrics.items()})  # fmt: skip


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | val loss | Δ vs baseline | best val | params | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(rows):
        delta = "—" if i == 0 else f"{r['delta']:+.3f}"
        lines.append(f"| {r['variant']} | {r['val_loss']:.3f} | {delta} | {r['best_val_loss']:.3f} | "
                     f"{r['params'] / 1e6:.2f}M | {r['seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run_ablation(
    base: TrainConfig, switches: list[str] | None, out_dir: str | Path, reporter: Reporter | None = None,
    plot_path: str | Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train the baseline and each switch's variant; write the table, JSON and chart.

    Returns:
        {"status", "rows": [{"variant", "overrides", "val_loss", "best_val_loss", "delta", "params",
        "seconds", "run_dir"}], "n_runs" (models trained, the baseline among them), "max_iters" (steps
        each), "markdown", "json", "plot", "out_dir"}.

    Raises:
        ValueError: a bad switch, or more than MAX_VARIANTS variants.
    """
    variants = [parse_switch(s) for s in (switches or DEFAULT_SWITCHES)]
    if len(variants) > MAX_VARIANTS:
        raise ValueError(f"at most {MAX_VARIANTS} switches per ablation, got {len(variants)}")
    variants = [("baseline", {}), *variants]
    out_dir = Path(out_dir)
    base_dict = base.to_dict()
    rows: list[dict[str, Any]] = []
    status = "done"
    for i, (label, overrides) in enumerate(variants):
        safe = label.replace("=", "-").replace(".", "_")
        cfg = TrainConfig.from_dict({**base_dict, **overrides, "out_dir": str(out_dir / safe), "resume": False,
                                     "plot_path": None, "target_loss": None})  # fmt: skip
        try:
            res = train(cfg, _VariantReporter(reporter, i, len(variants), label))
        except (TrainError, ValueError) as e:  # e.g. n_embd not divisible by n_head: report, go on
            rows.append({"variant": label, "overrides": overrides, "error": str(e)})
            continue
        rows.append({"variant": label, "overrides": overrides, "val_loss": res["val_loss"],
                     "best_val_loss": res["best_val_loss"], "params": res["params"], "seconds": res["seconds"],
                     "run_dir": res["run_dir"]})  # fmt: skip
        if res["status"] == "cancelled":
            status = "cancelled"
            break
    ok = [r for r in rows if "val_loss" in r]
    base_loss = ok[0]["val_loss"] if ok and ok[0]["variant"] == "baseline" else None
    for r in ok:
        r["delta"] = None if base_loss is None else r["val_loss"] - base_loss
    md = markdown_table([r for r in ok if r["delta"] is not None]) if base_loss is not None else ""
    errors = [f"- {r['variant']}: {r['error']}" for r in rows if "error" in r]
    if errors:
        md += "\nFailed variants:\n" + "\n".join(errors) + "\n"
    result = {"status": status, "rows": rows, "n_runs": len(ok), "max_iters": base.max_iters,
              "base_config": base_dict, "out_dir": str(out_dir)}  # fmt: skip
    atomic_write_json(out_dir / "ablation.json", result)
    atomic_write_text(out_dir / "ablation.md", md)
    chart = None
    if base_loss is not None:
        from scratchlab.training.plots import plot_ablation  # matplotlib: optional, and slow to import

        chart = str(plot_ablation(ok, plot_path or out_dir / "ablation.png",
                                  title=f"ablation: val loss after {base.max_iters} steps"))  # fmt: skip
    return {**result, "markdown": md, "json": str(out_dir / "ablation.json"), "plot": chart}


def run_job(config: dict[str, Any], reporter: Reporter | None = None) -> dict[str, Any]:
    """Job entry: {"base": TrainConfig dict, "switches": [...], "out_dir": str, "plot_path": str|None}."""
    base = TrainConfig.from_dict(config["base"])
    return run_ablation(base, config.get("switches"), config["out_dir"], reporter, config.get("plot_path"))


def main(argv: list[str] | None = None) -> int:
    return job_main(argv, prog="python -m scratchlab.training.ablate", what="Run a GPT ablation.",
                    config_name="object: base (TrainConfig), switches, out_dir", work=run_job,
                    alone=lambda config: print(run_job(config)["markdown"]) or 0)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
