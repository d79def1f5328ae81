"""Benchmark: scratchlab's GPT trainer vs karpathy/nanoGPT `train.py` on nanoGPT's documented CPU config.

    python benchmarks/gpt_train.py --nanogpt /tmp/nanogpt            # a local clone (never committed)
    python benchmarks/gpt_train.py --nanogpt /tmp/nanogpt --iters 200 --no-ablation   # quick look

Both train on the same corpus (`scratchlab.datasets.load_text("shakespeare")`, char level, first 90%
train / last 10% val, stored as uint16 in nanoGPT's `data/<name>/{train,val}.bin` + `meta.pkl`
layout) with nanoGPT README's CPU command line: block 64, batch 12, 4 layers, 4 heads, 128 wide,
2000 iters, lr 1e-3 -> 1e-4 cosine, warmup 100, dropout 0, eval every 250 steps on 20 batches, no
compile. Each program runs as its own process, back to back, alternating, in these modes:

- `default`: each at its own defaults (nanoGPT: torch's thread count, fp32; scratchlab: `auto_num_threads`,
  which counts the idle cores from the runnable threads now, and `dtype="auto"`: bf16 autocast on a
  CPU with native bf16 (AVX512-BF16/AMX), fp32 elsewhere),
- `warm`: as `default`, run after it, with the Inductor kernel cache the default run filled (what a
  second run of the same model shape costs a user),
- `threads=N`: both pinned to the same intra-op thread count (OMP_NUM_THREADS / num_threads), both eager fp32.

Reported per run: tokens/s over the training loop (evals included, as each program times it) and
over the whole process, the program's own final val loss, and the val loss of its final weights on
the *whole* val split (non-overlapping 64-char windows) computed here the same way for both. An
ablation table (scratchlab only, shorter) is compared with the seed tutorial's ordering.
Results: benchmarks/results/gpt_train.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import subprocess
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from scratchlab.lab.atomic import atomic_write_json, atomic_write_text
from scratchlab.training.ablate import run_ablation
from scratchlab.training.data import load_meta, prepare_dataset
from scratchlab.training.trainer import TrainConfig, cpu_has_native_bf16, load_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_THREADS = torch.get_num_threads()  # what a fresh torch process uses
DATASET = "scratchlab_shakespeare_char"
NANO_ARGS = ["--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1", "--block_size=64",
             "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--dropout=0.0"]  # fmt: skip
OURS = dict(block_size=64, batch_size=12, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False, lr=1e-3,
            min_lr=1e-4, warmup_iters=100, weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0,
            eval_interval=250, eval_iters=20, log_interval=10, seed=1337)  # fmt: skip
# The seed tutorial's ablation table (Project 2, a 6-layer char model): delta val loss vs baseline.
SEED_DELTAS = {"no_residual": 0.82, "no_layernorm": 0.47, "no_pos_emb": 0.37, "n_layer=2": 0.20,
               "n_head=1": 0.14, "mlp_ratio=2": 0.07, "relu": 0.03}  # fmt: skip
ABLATION_SWITCHES = [
    "no_pos_emb",
    "n_head=1",
    "no_residual",
    "no_layernorm",
    "relu",
    "mlp_ratio=2",
    "n_layer=2",
]
ITER_RE = re.compile(r"iter (\d+): loss ([\d.]+), time ([\d.]+)ms")
EVAL_RE = re.compile(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)")


def prepare(work: Path) -> tuple[Path, Path]:
    """Our prepared dataset and a nanoGPT working dir holding the same ids in its layout."""
    ours = work / "data_ours"
    meta = load_meta(ours) if (ours / "meta.json").exists() else prepare_dataset("shakespeare", "char", ours)
    nano = work / "nano"
    d = nano / "data" / DATASET
    d.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        (d / f"{split}.bin").write_bytes((ours / f"{split}.bin").read_bytes())
    chars = meta.chars
    with open(d / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": meta.vocab_size, "itos": dict(enumerate(chars)),
                     "stoi": {c: i for i, c in enumerate(chars)}}, f)  # fmt: skip
    return ours, nano


def run_nanogpt(
    clone: Path, nano_dir: Path, iters: int, threads: int | None, tag: str, python: str, eval_interval: int
) -> dict:
    """Run nanoGPT's train.py (README CPU flags; checkpoint at every eval so the final weights are kept)."""
    out_dir = nano_dir / f"out-{tag.replace('=', '')}"
    link = nano_dir / "configurator.py"  # train.py exec()s ./configurator.py from its working dir
    if not link.exists():
        link.symlink_to(clone / "configurator.py")
    cmd = [python, str(clone / "train.py"), str(clone / "config" / "train_shakespeare_char.py"), *NANO_ARGS,
           f"--max_iters={iters}", f"--lr_decay_iters={iters}", f"--dataset={DATASET}", f"--out_dir={out_dir}",
           f"--eval_interval={eval_interval}", "--always_save_checkpoint=True"]  # fmt: skip
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=nano_dir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"nanoGPT failed:\n{proc.stderr[-3000:]}")
    its = [(int(a), float(b), float(c)) for a, b, c in ITER_RE.findall(proc.stdout)]
    evals = [(int(a), float(b), float(c)) for a, b, c in EVAL_RE.findall(proc.stdout)]
    loop_s = sum(t for _, _, t in its) / 1000.0
    tokens = len(its) * 12 * 64
    return {"program": "nanoGPT", "mode": tag, "threads": threads or f"default ({DEFAULT_THREADS})", "iters": len(its),
            "loop_seconds": round(loop_s, 2), "wall_seconds": round(wall, 2),
            "tokens_per_sec": round(tokens / loop_s, 1), "tokens_per_sec_wall": round(tokens / wall, 1),
            "reported_val_loss": evals[-1][2] if evals else None, "checkpoint": str(out_dir / "ckpt.pt"),
            "loadavg_before": load0, "loadavg_after": os.getloadavg()}  # fmt: skip


def run_ours(
    data_dir: Path, work: Path, iters: int, threads: int | None, tag: str, eval_interval: int
) -> dict:
    """Run `python -m scratchlab.training.trainer` with the same hyperparameters."""
    out_dir = work / f"ours-{tag.replace('=', '')}"
    params = {**OURS, "eval_interval": eval_interval}
    shipped = tag in ("default", "warm")  # pinned-thread modes: the same eager fp32 kernels as nanoGPT
    cfg = TrainConfig(**params, out_dir=str(out_dir), data_dir=str(data_dir), max_iters=iters,
                      lr_decay_iters=iters, num_threads=threads, compile="auto" if shipped else False,
                      dtype="auto" if shipped else "float32")  # fmt: skip
    cpath = work / f"ours-{tag.replace('=', '')}.json"
    cpath.write_text(json.dumps(cfg.to_dict()))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    env = {
        **os.environ,
        # a fresh Inductor cache per mode (cold compile); "warm" reuses the one "default" filled
        "TORCHINDUCTOR_CACHE_DIR": str(
            work / f"inductor-{'default' if tag == 'warm' else tag.replace('=', '')}"
        ),
    }
    proc = subprocess.run([sys.executable, "-m", "scratchlab.training.trainer", "--config", str(cpath)],
                          cwd=ROOT, capture_output=True, text=True, env=env)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"scratchlab trainer failed:\n{proc.stderr[-3000:]}")
    r = json.loads((out_dir / "result.json").read_text())
    tokens = r["step"] * 12 * 64
    threads_s = threads or f"auto ({r.get('num_threads')})"
    threads_s = f"{threads_s}, {'compiled' if r.get('compiled') else 'eager'}, {r.get('dtype', 'float32')}"
    return {"program": "scratchlab", "mode": tag, "threads": threads_s, "iters": r["step"],
            "loop_seconds": r["session_seconds"], "wall_seconds": round(wall, 2),
            "tokens_per_sec": r["tokens_per_sec"], "tokens_per_sec_wall": round(tokens / wall, 1),
            "reported_val_loss": r["val_loss"], "checkpoint": str(out_dir / "ckpt.pt"),
            "loadavg_before": load0, "loadavg_after": os.getloadavg()}  # fmt: skip


@torch.no_grad()
def full_val_loss(model, val: np.ndarray, block: int = 64, batch: int = 256) -> float:
    """Mean next-char loss over all non-overlapping `block` windows of the val split."""
    n = (len(val) - 1) // block
    starts = np.arange(n) * block
    offs = np.arange(block + 1)
    total = 0.0
    for i in range(0, n, batch):
        chunk = torch.from_numpy(val[starts[i : i + batch, None] + offs].astype(np.int64))
        _, loss = model(chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous())
        total += float(loss) * len(chunk)
    return total / n


def load_nano_model(clone: Path, ckpt_path: str):
    sys.path.insert(0, str(clone))
    try:
        import model as nano_model  # nanoGPT's model.py from the clone
    finally:
        sys.path.pop(0)
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    m = nano_model.GPT(nano_model.GPTConfig(**ck["model_args"]))
    m.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ck["model"].items()})
    return m.eval(), int(ck["iter_num"])


def interleaved_steps(clone: Path, data_dir: Path, rounds: int, steps: int, threads: int) -> dict:
    """Steady-state step time, A/B/C interleaved in one process so machine drift hits all alike.

    nanoGPT's model.py + its optimizer (eager, fp32); scratchlab eager in fp32; scratchlab eager with bf16
    autocast (only where the CPU has native bf16, as `dtype="auto"` would pick); scratchlab with
    `torch.compile` at the shipped dtype (compiled before the first round; compile time reported apart).
    Same config, same batches.
    Returns per-program median ms/step over `rounds` rounds of `steps` optimizer steps each.
    """
    from contextlib import nullcontext

    from scratchlab.models.gpt import GPT, GPTConfig

    torch.set_num_threads(threads)
    sys.path.insert(0, str(clone))
    try:
        import model as nano_model
    finally:
        sys.path.pop(0)
    train = np.fromfile(data_dir / "train.bin", dtype=np.uint16)
    vocab = load_meta(data_dir).vocab_size
    rng = np.random.default_rng(0)
    offs = np.arange(65)

    def batch():
        w = torch.from_numpy(train[rng.integers(0, len(train) - 65, 12)[:, None] + offs].astype(np.int64))
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()

    def make(kind: str):
        torch.manual_seed(1337)
        if kind == "nanoGPT":
            m = nano_model.GPT(nano_model.GPTConfig(block_size=64, vocab_size=vocab, n_layer=4, n_head=4,
                                                    n_embd=128, dropout=0.0, bias=False))  # fmt: skip
            opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.99), "cpu")
        else:
            m = GPT(GPTConfig(vocab_size=vocab, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False))
            opt = m.configure_optimizer(0.1, 1e-3, (0.9, 0.99), "cpu")
        fwd = torch.compile(m) if "compiled" in kind else m
        amp = "bf16" in kind or ("compiled" in kind and cpu_has_native_bf16())
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if amp else nullcontext()

        def step(x, y):
            with ctx:
                _, loss = fwd(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step

    kinds = ["nanoGPT", "scratchlab eager fp32"]
    kinds += ["scratchlab eager bf16"] if cpu_has_native_bf16() else []
    kinds += [f"scratchlab compiled {'bf16' if cpu_has_native_bf16() else 'fp32'}"]
    programs = {k: make(k) for k in kinds}
    compile_s = {}
    for name, step in programs.items():  # warm up (and compile) before timing
        t0 = time.perf_counter()
        for _ in range(3):
            step(*batch())
        compile_s[name] = round(time.perf_counter() - t0, 1)
    times: dict[str, list[float]] = {k: [] for k in programs}
    for _ in range(rounds):
        for name, step in programs.items():
            batches = [batch() for _ in range(steps)]
            t0 = time.perf_counter()
            for x, y in batches:
                step(x, y)
            times[name].append((time.perf_counter() - t0) / steps * 1000)
    med = {k: round(float(np.median(v)), 2) for k, v in times.items()}
    return {"threads": threads, "rounds": rounds, "steps_per_round": steps, "median_ms_per_step": med,
            "ms_per_step": {k: [round(t, 2) for t in v] for k, v in times.items()},
            "first_3_steps_s": compile_s,
            "speedup_vs_nanogpt": {k: round(med["nanoGPT"] / v, 3) for k, v in med.items()}}  # fmt: skip


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def kendall_tau(a: list[float], b: list[float]) -> float:
    pairs = list(combinations(range(len(a)), 2))
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in pairs)
    return float(s / len(pairs)) if pairs else float("nan")


def ablation(data_dir: Path, work: Path, iters: int) -> dict:
    base = TrainConfig(**{**OURS, "eval_interval": max(1, iters // 5)}, out_dir=str(work / "abl"),
                       data_dir=str(data_dir), max_iters=iters, lr_decay_iters=iters, compile=False)  # fmt: skip
    t0 = time.perf_counter()
    res = run_ablation(base, ABLATION_SWITCHES, work / "ablation")
    rows = [r for r in res["rows"] if "val_loss" in r]
    ours = {r["variant"]: r["delta"] for r in rows if r["variant"] in SEED_DELTAS}
    common = [k for k in SEED_DELTAS if k in ours]
    ours_order = sorted(common, key=lambda k: -ours[k])
    seed_order = sorted(common, key=lambda k: -SEED_DELTAS[k])
    disagree = [(a, b) for a, b in combinations(common, 2)
                if np.sign(ours[a] - ours[b]) != np.sign(SEED_DELTAS[a] - SEED_DELTAS[b])]  # fmt: skip
    return {"iters": iters, "seconds": round(time.perf_counter() - t0, 1), "markdown": res["markdown"],
            "rows": [{k: r[k] for k in ("variant", "val_loss", "delta", "params", "seconds")} for r in rows],
            "our_order": ours_order, "seed_order": seed_order, "order_matches": ours_order == seed_order,
            "kendall_tau": kendall_tau([ours[k] for k in common], [SEED_DELTAS[k] for k in common]),
            "disagreeing_pairs": disagree}  # fmt: skip


def markdown(report: dict) -> str:
    lines = ["# GPT training: scratchlab vs nanoGPT (CPU, char-level shakespeare)", "",
             f"Machine: {report['machine']}; torch {report['torch']}; load average at start {report['loadavg_start']}.",
             f"Config: nanoGPT README CPU command (block 64, batch 12, 4L/4H/128, {report['iters']} iters, dropout 0, "
             "nanoGPT without compile and in fp32 (its CPU path has no autocast); scratchlab eager fp32 in `threads=N` modes, "
             "as shipped in `default` (`compile=\"auto\"`: eager below 10k CPU steps; `dtype=\"auto\"`: bf16 autocast when the "
             f"CPU has native bf16, which this one {'has' if report.get('cpu_native_bf16') else 'has not'})). Val loss (full split) = mean loss of each final model on every non-overlapping 64-char "
             "window of the val split, computed by this script the same way for both.", "",
             "| mode | program | threads | tokens/s (loop) | tokens/s (process) | loop s | own val loss | val loss (full split) |",
             "|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in report["runs"]:
        lines.append(f"| {r['mode']} ({r['iters']} it) | {r['program']} | {r['threads']} | {r['tokens_per_sec']:,.0f} | "
                     f"{r['tokens_per_sec_wall']:,.0f} | {r['loop_seconds']:.0f} | {r['reported_val_loss']:.4f} | "
                     f"{r.get('full_val_loss', float('nan')):.4f} |")  # fmt: skip
    lines += [
        "",
        "Notes: `threads=1` pins both programs to one intra-op thread (same kernels, same work); "
        "`default` runs each as shipped: nanoGPT with torch's thread count and README flags, scratchlab with "
        '`auto_num_threads()` (idle cores right now), `compile="auto"` and `dtype="auto"`. nanoGPT evaluates and checkpoints only at '
        "multiples of 250 steps, so for runs whose length is not a multiple of 250 its full-split val loss is "
        f"of an earlier checkpoint (iters: {[r.get('checkpoint_iter') for r in report['runs'] if 'checkpoint_iter' in r]}). "
        "Load averages before/after each run are in the JSON; pairs run back to back.",
    ]
    lines += ["", "| mode | speedup (loop tokens/s) | speedup (process) | val loss diff (ours - nanoGPT, full split) |",
              "|---|---:|---:|---:|"]  # fmt: skip
    for m, s in report["summary"].items():
        lines.append(f"| {m} | {s['speedup']:.2f}x | {s['speedup_wall']:.2f}x | {s['val_loss_diff']:+.4f} |")
    groups: dict[str, list[dict]] = {}
    for m, s in report["summary"].items():
        groups.setdefault(m.split(" #")[0], []).append(s)
    for m, ss in groups.items():
        if len(ss) > 1:  # repeated pairs: the median is the number to quote on this noisy machine
            lines.append(f"| **{m}, median of {len(ss)} pairs** | {np.median([s['speedup'] for s in ss]):.2f}x | "
                         f"{np.median([s['speedup_wall'] for s in ss]):.2f}x | "
                         f"{np.median([s['val_loss_diff'] for s in ss]):+.4f} |")  # fmt: skip
    if report.get("interleaved"):
        it = report["interleaved"]
        lines += ["", f"## Steady-state steps, interleaved ({it['rounds']} rounds x {it['steps_per_round']} steps, "
                  f"{it['threads']} threads, one process)", "", "| program | median ms/step | tokens/s | speedup vs nanoGPT | first 3 steps s |",
                  "|---|---:|---:|---:|---:|"]  # fmt: skip
        for k, v in it["median_ms_per_step"].items():
            lines.append(f"| {k} | {v:.2f} | {768 / v * 1000:,.0f} | {it['speedup_vs_nanogpt'][k]:.2f}x | "
                         f"{it['first_3_steps_s'][k]} |")  # fmt: skip
    if report.get("ablation"):
        a = report["ablation"]
        lines += ["", f"## Ablation (scratchlab, {a['iters']} iters per variant, same CPU config otherwise)", "",
                  a["markdown"], f"Our order (largest harm first): {', '.join(a['our_order'])}",
                  f"Seed order: {', '.join(a['seed_order'])}",
                  f"Order matches the seed's: {a['order_matches']} (Kendall tau {a['kendall_tau']:.2f}; "
                  f"disagreeing pairs: {a['disagreeing_pairs'] or 'none'})"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--nanogpt", type=Path, default=None, help="path of a karpathy/nanoGPT clone (train.py, model.py)"
    )
    p.add_argument("--iters", type=int, default=2000, help="training iterations per run")
    p.add_argument("--eval-interval", type=int, default=250, help="steps between evals (README: 250)")
    p.add_argument(
        "--modes",
        default="threads=1,default",
        help="comma list of default | warm | threads=N, each optionally :ITERS (e.g. default:300); warm = "
        "default with the Inductor kernel cache that the default run filled (run it after default); a mode "
        "may repeat (default,warm,warm,warm): the table adds the median speedup of its pairs",
    )
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temp dir)")
    p.add_argument("--python", default=sys.executable, help="interpreter for nanoGPT (needs torch + numpy)")
    p.add_argument("--ablation-iters", type=int, default=500, help="iterations per ablation variant")
    p.add_argument("--no-ablation", action="store_true", help="skip the ablation table")
    p.add_argument(
        "--interleaved", type=int, default=0, metavar="ROUNDS",
        help="also time steady-state steps A/B/C interleaved in this process (needs --nanogpt)",
    )  # fmt: skip
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpt_train", help="results stem"
    )
    args = p.parse_args()
    torch.set_num_threads(1)  # this process only evaluates; the runs are separate processes
    work = args.work or Path(tempfile.mkdtemp(prefix="gpt-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir, nano_dir = prepare(work)
    val = np.fromfile(data_dir / "val.bin", dtype=np.uint16)
    report = {"machine": f"{cpu_model()}, {os.cpu_count()} CPUs", "cpu_native_bf16": cpu_has_native_bf16(),
              "torch": torch.__version__,
              "loadavg_start": os.getloadavg(), "iters": args.iters, "runs": [], "summary": {},
              "corpus_chars": sum(load_meta(data_dir).splits[s]["chars"] for s in ("train", "val"))}  # fmt: skip

    def save() -> None:
        report["loadavg_end"] = os.getloadavg()
        atomic_write_json(args.out.with_suffix(".json"), report)
        atomic_write_text(args.out.with_suffix(".md"), markdown(report))

    for spec in filter(None, args.modes.split(",")):
        mode, _, n = spec.partition(":")
        iters = int(n) if n else args.iters
        threads = None if mode in ("default", "warm") else int(mode.split("=")[1])
        pair = []
        if args.nanogpt:
            r = run_nanogpt(
                args.nanogpt.resolve(), nano_dir, iters, threads, mode, args.python, args.eval_interval
            )
            m, it = load_nano_model(args.nanogpt.resolve(), r["checkpoint"])
            r["checkpoint_iter"] = it
            r["full_val_loss"] = round(full_val_loss(m, val), 4)
            pair.append(r)
            print(json.dumps(r), flush=True)
        r = run_ours(data_dir, work, iters, threads, mode, args.eval_interval)
        m, _ = load_model(r["checkpoint"])
        r["full_val_loss"] = round(full_val_loss(m, val), 4)
        pair.append(r)
        print(json.dumps(r), flush=True)
        report["runs"] += pair
        if len(pair) == 2:
            n, o = pair
            key = f"{mode} ({iters} iters)"
            repeat = sum(k.split(" #")[0] == key for k in report["summary"])
            report["summary"][key if not repeat else f"{key} #{repeat + 1}"] = {
                "speedup": o["tokens_per_sec"] / n["tokens_per_sec"],
                "speedup_wall": o["tokens_per_sec_wall"] / n["tokens_per_sec_wall"],
                "val_loss_diff": o["full_val_loss"] - n["full_val_loss"],
            }
        save()
    if args.interleaved and args.nanogpt:
        report["interleaved"] = interleaved_steps(
            args.nanogpt.resolve(), data_dir, args.interleaved, 100, DEFAULT_THREADS
        )
        torch.set_num_threads(1)
        save()
    if not args.no_ablation:
        report["ablation"] = ablation(data_dir, work, args.ablation_iters)
        save()
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
