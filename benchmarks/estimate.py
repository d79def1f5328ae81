"""Benchmark: the run-time estimate against the measured wall time of GPT and LoRA runs.

    .venv/bin/python benchmarks/estimate.py                 # 10 runs, results to benchmarks/results/estimate.{json,md}
    .venv/bin/python benchmarks/estimate.py --only g1,l1    # a subset (results still written)

For each configuration the estimate is computed in this process, as the agent's tools do
(`estimate.estimate_gpt`, `lora_estimate.estimate_finetune`), and the run is then timed as a job
runs it: a fresh `python -m scratchlab.training.trainer` (or `.lora`) child process, from spawn to
exit. GPT runs use the shakespeare char dataset; LoRA runs adapt a freshly initialised GPT base (a
run folder with a char tokenizer over the demo instruction set, `benchmarks/data/lora_demo.jsonl`).
The machine is shared: the 1-minute load average is recorded before and after each run, and both
the estimate and the run see the load of their moment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "estimate"
DEMO = ROOT / "benchmarks" / "data" / "lora_demo.jsonl"
LORA_RECORDS = 160  # demo records used by the LoRA runs

GPT_RUNS = {  # name -> TrainConfig overrides (shakespeare, char)
    "g1": dict(n_layer=2, n_head=2, n_embd=64, block_size=32, batch_size=8, max_iters=300, eval_interval=100),
    "g2": dict(max_iters=300, eval_interval=100),  # the default 4-layer model, shorter
    "g3": dict(max_iters=600),  # default eval_interval 250
    "g4": dict(
        n_layer=6, n_head=6, n_embd=192, block_size=128, batch_size=8, max_iters=120, eval_interval=40
    ),
    "g5": dict(
        n_layer=2, n_embd=128, batch_size=8, grad_accum=4, max_iters=100, eval_interval=25, eval_iters=40
    ),
    "g6": dict(max_iters=300, eval_interval=150, dtype="float32"),
}
LORA_BASES = {"small": dict(n_layer=2, n_head=2, n_embd=64, block_size=128),
              "mid": dict(n_layer=4, n_head=4, n_embd=128, block_size=192)}  # fmt: skip
LORA_RUNS = {  # name -> (base, LoraTrainConfig overrides)
    "l1": ("small", dict(r=8, max_iters=100, batch_size=4, eval_generate=4, max_new_tokens=32)),
    "l2": ("mid", dict(r=16, max_iters=60, batch_size=8, eval_generate=2, max_new_tokens=64)),
    "l3": ("mid", dict(r=4, max_iters=120, batch_size=4, grad_accum=2, eval_interval=40, eval_generate=0)),
    "l4": ("mid", dict(r=8, max_iters=40, batch_size=4, eval_generate=6, max_new_tokens=48)),
}


def _gpt_base(work: Path, name: str, shape: dict) -> Path:
    """A run folder (ckpt.pt + config.json) of a freshly initialised GPT with a char tokenizer over the demo set."""
    import torch

    from scratchlab.models.gpt import GPT, GPTConfig
    from scratchlab.training.data import prepare_dataset
    from scratchlab.training.gpt_io import save_checkpoint

    text = DEMO.read_text() + "\n### Instruction:\n### Response:\n### System:\n<|end|>\n"
    meta = prepare_dataset("demo", "char", work / "datasets" / "demo-char", text=text)
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=meta.vocab_size, **shape)
    run = work / "runs" / f"base-{name}"
    run.mkdir(parents=True, exist_ok=True)
    save_checkpoint(run / "ckpt.pt", {"model_config": cfg.to_dict(), "model": GPT(cfg).state_dict(), "train_config": {},
                                      "data_dir": str(meta.path), "tokenizer": "char", "vocab_size": meta.vocab_size,
                                      "eot_id": None, "step": 0})  # fmt: skip
    (run / "config.json").write_text(json.dumps({"out_dir": str(run)}))
    return run


def _time_child(module: str, config: dict, work: Path, tag: str) -> tuple[float, dict]:
    cpath = work / f"{tag}.json"
    cpath.write_text(json.dumps(config))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", module, "--config", str(cpath)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{tag} failed:\n{proc.stderr[-3000:]}")
    return wall, config


def run_gpt(name: str, work: Path) -> dict:
    from scratchlab.training.data import ensure_dataset
    from scratchlab.training.estimate import estimate_gpt
    from scratchlab.training.gpt_config import TrainConfig

    meta = ensure_dataset("shakespeare", "char", work / "datasets")
    cfg = TrainConfig(**GPT_RUNS[name], out_dir=str(work / "runs" / name), data_dir=str(meta.path))
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    est = estimate_gpt(cfg)
    est_s = time.perf_counter() - t0
    wall, _ = _time_child("scratchlab.training.trainer", cfg.to_dict(), work, name)
    result = json.loads((Path(cfg.out_dir) / "result.json").read_text())
    return {"name": name, "kind": "gpt", "config": GPT_RUNS[name], "estimated_s": est["estimated_seconds"],
            "actual_s": round(wall, 2), "estimate_took_s": round(est_s, 2), "threads_estimate": est["threads"],
            "threads_run": result["num_threads"], "dtype": result["dtype"], "loadavg_before": load0,
            "loadavg_after": os.getloadavg()[0], "detail": {k: v for k, v in est.items() if k != "data_dir"}}  # fmt: skip


def run_lora(name: str, work: Path) -> dict:
    from scratchlab.training.lora_estimate import estimate_finetune
    from scratchlab.training.lora_model import LoraTrainConfig

    base_name, over = LORA_RUNS[name]
    base = work / "runs" / f"base-{base_name}"
    if not base.exists():
        _gpt_base(work, base_name, LORA_BASES[base_name])
    data = work / "lora.jsonl"
    if not data.exists():
        data.write_text("".join(DEMO.read_text().splitlines(keepends=True)[:LORA_RECORDS]))
    cfg = LoraTrainConfig(base_kind="gpt", base_path=str(base), data=str(data), out_dir=str(work / "adapters" / name),
                          ckpt_interval=0, **over)  # fmt: skip
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    est = estimate_finetune(cfg)
    est_s = time.perf_counter() - t0
    from dataclasses import asdict

    wall, _ = _time_child("scratchlab.training.lora", asdict(cfg), work, name)
    meta = json.loads((Path(cfg.out_dir) / "lora_meta.json").read_text())
    return {"name": name, "kind": "lora", "config": {"base": base_name, **LORA_BASES[base_name], **over},
            "estimated_s": est["estimated_seconds"], "actual_s": round(wall, 2), "estimate_took_s": round(est_s, 2),
            "threads_estimate": est["threads"], "threads_run": None, "dtype": meta["metrics"].get("dtype"),
            "loadavg_before": load0, "loadavg_after": os.getloadavg()[0], "detail": est}  # fmt: skip


def write(rows: list[dict]) -> None:
    for r in rows:
        r["ratio"] = round(r["estimated_s"] / r["actual_s"], 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
    RESULTS.with_suffix(".json").write_text(json.dumps({"info": info, "runs": rows}, indent=2) + "\n")
    within = sum(0.5 <= r["ratio"] <= 2.0 for r in rows)
    lines = [
        "# Run-time estimate vs measured wall time",
        "",
        f"`benchmarks/estimate.py`, {info['date']}, {info['cpus']} CPUs (shared machine), Python {info['python']}.",
        "Estimated: in the calling process from timed steps (first step, median step, one eval pass, one",
        "checkpoint save; LoRA: base load, val pass, one generation). Actual: wall time of the job's child",
        "process from spawn to exit. Ratio = estimated / actual; the goal is 0.5-2.",
        "",
        "| run | kind | settings | estimated s | actual s | ratio | threads (est/run) | dtype | load before | load after |",
        "|---|---|---|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in rows:
        conf = ", ".join(f"{k}={v}" for k, v in r["config"].items())
        lines.append(f"| {r['name']} | {r['kind']} | {conf} | {r['estimated_s']:.1f} | {r['actual_s']:.1f} | "
                     f"{r['ratio']:.2f} | {r['threads_estimate']}/{r['threads_run'] or '-'} | {r['dtype']} | "
                     f"{r['loadavg_before']:.2f} | {r['loadavg_after']:.2f} |")  # fmt: skip
    lines += ["", f"{within} of {len(rows)} runs within 2x."]
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Check the run-time estimate against measured runs.")
    ap.add_argument("--only", default="", help="comma-separated run names (default: all of g1-g6, l1-l4)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    a = ap.parse_args(argv)
    names = [n for n in a.only.split(",") if n] or [*GPT_RUNS, *LORA_RUNS]
    rows = []
    with tempfile.TemporaryDirectory(prefix="estimate-bench-") as tmp:
        work = Path(a.work or tmp)
        for n in names:
            row = run_gpt(n, work) if n in GPT_RUNS else run_lora(n, work)
            print(f"{n}: estimated {row['estimated_s']:.1f}s, actual {row['actual_s']:.1f}s, "
                  f"load {row['loadavg_before']:.2f}->{row['loadavg_after']:.2f}", flush=True)  # fmt: skip
            rows.append(row)
    write(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
