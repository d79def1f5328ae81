"""LoRA benchmark: step time and memory of LoRA vs full fine-tuning, our loop vs transformers.Trainer,
and val loss / BLEU / ROUGE before and after on the demo instruction set.

    .venv/bin/python benchmarks/lora.py                       # everything, results to benchmarks/results/lora.{json,md}
    .venv/bin/python benchmarks/lora.py --steps 6 --demo-iters 40 --base qwen2.5-coder-0.5b

Every measurement runs in a fresh child process (`--variant NAME`), so peak memory is that
variant's alone: the resident set size is sampled every 5 ms during the timed steps, and
`train_peak_mb` is the peak minus the size just before training (the model already loaded).
Step times are medians over `--steps` steps after `--warmup` untimed ones, all on one fixed batch.

1. our GPT (6 layers, 384 wide, block 256, char tokenizer over the demo set): LoRA (r=8 on
   c_attn/c_proj/c_fc) vs full fine-tuning, same batch, same loop (`lora.train_step`);
2. the converted pretrained base: our LoRA loop vs a plain `transformers.Trainer` on the same
   peft model, data and batch (Trainer computes the same masked loss inside the model);
3. `run_finetune` on the demo set (`benchmarks/data/lora_demo.jsonl`, built by
   `python -m scratchlab.training.lora_demo`): val loss, perplexity, BLEU and ROUGE-L before/after.

The machine is shared: `os.getloadavg()` is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "benchmarks" / "data" / "lora_demo.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "lora"
GPT_SHAPE = {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256}
GPT_MAX_TOKENS = 160  # batch length cap for our GPT (char tokens)


class RssSampler:
    """Peak resident set size (bytes) of this process, sampled in a background thread."""

    def __init__(self, every_s: float = 0.005):
        import psutil

        self.proc = psutil.Process()
        self.every_s = every_s
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self):
        self.start_rss = self.proc.memory_info().rss
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _fixed_examples(base, n: int, max_tokens: int):
    """`n` demo examples of one common length (the commonest length <= max_tokens): a real batch with
    no padding and no truncation, so every batch, ours or the Trainer's, has the same shape and content."""
    from collections import Counter

    from scratchlab.training import lora_data as D

    exs = D.tokenize_records(D.read_records(DEMO), base.fmt, base.max_len)
    counts = Counter(len(e) for e in exs if len(e) <= max_tokens)
    T = max((c, t) for t, c in counts.items() if c >= n)[1]
    return [e for e in exs if len(e) == T][:n], T


def _repeat(batch):
    while True:
        yield batch


def _time_loop(model, base, batch, steps: int, warmup: int, lr: float):
    """Median seconds per optimizer step of our loop (`train_step`) on a fixed batch, and peak memory."""
    import torch

    from scratchlab.training.lora import LoraTrainConfig, train_step

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    # float32, as the plain transformers.Trainer it is compared with (training itself autocasts to
    # bf16 on CPUs with native bf16, like the GPT trainer: `precision.autocast_dtype`)
    cfg = LoraTrainConfig(
        base_kind=base.kind, lr=lr, max_iters=steps + warmup, warmup_iters=0, dtype="float32"
    ).resolved()
    it = _repeat(batch)
    model.train()
    times, losses = [], []
    with RssSampler() as mem:
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            row = train_step(model, opt, params, it, cfg, base.kind, torch.device("cpu"), i)
            dt = time.perf_counter() - t0
            losses.append(row["train_loss"])
            if i >= warmup:
                times.append(dt)
    return {"step_s": statistics.median(times), "step_s_all": [round(t, 4) for t in times],
            "rss_before_mb": mem.start_rss / 2**20, "peak_rss_mb": mem.peak / 2**20,
            "train_peak_mb": (mem.peak - mem.start_rss) / 2**20, "loss_first": losses[0], "loss_last": losses[-1]}  # fmt: skip


def _saved_activations_mb(model, batch, kind: str) -> float:
    """Bytes autograd keeps for backward in one forward (unique storages, parameters excluded), in MB."""
    import torch

    from scratchlab.training.lora import lm_logits, masked_lm_loss

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = masked_lm_loss(lm_logits(model, batch, kind), batch["labels"])
    del loss
    return sum(seen.values()) / 2**20


def _state_mb(model) -> dict:
    """Analytic memory: weights, gradients and AdamW moments (float32) of the trainable params."""
    seen, total, trainable = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel() * p.element_size()
        trainable += p.numel() * 4 if p.requires_grad else 0
    return {"weights_mb": total / 2**20, "grads_mb": trainable / 2**20, "adam_mb": 2 * trainable / 2**20}


def _gpt_base(home: Path):
    """A fresh GPT of GPT_SHAPE with a char tokenizer over the demo set, as a LoadedBase."""
    import torch

    from scratchlab.models.gpt import GPT, GPTConfig
    from scratchlab.training.data import CharTokenizer
    from scratchlab.training.lora_base import GPTLM, LoadedBase, gpt_format

    tok = CharTokenizer.from_text(DEMO.read_text() + "\n### Instruction:Response:System")
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=tok.vocab_size, **GPT_SHAPE))
    return LoadedBase(
        "gpt", GPTLM(gpt), gpt_format(tok), home, "bench", GPT_SHAPE["block_size"], "bench-gpt", tok
    )


def variant(name: str, a: argparse.Namespace) -> dict:
    import torch

    from scratchlab.lab.workspace import get_workspace
    from scratchlab.training import lora_data as D
    from scratchlab.training.lora import LoraTrainConfig, add_lora, count_params

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    ws = get_workspace(a.home)
    if name in ("gpt_lora", "gpt_full"):
        base = _gpt_base(ws.root)
        exs, T = _fixed_examples(base, a.gpt_batch, GPT_MAX_TOKENS)
        model = (
            add_lora(base, LoraTrainConfig(base_kind="gpt", r=a.r).resolved())
            if name == "gpt_lora"
            else base.model
        )
        lr = 1e-3 if name == "gpt_lora" else 3e-4
    else:
        from scratchlab.training.hf_base import ensure_base
        from scratchlab.training.lora_base import load_hf

        path = ensure_base(a.base, ws.dir("bases"), ws.dir("models"))
        base = load_hf(path, "cpu", qlora=False)
        exs, T = _fixed_examples(base, a.hf_batch, a.hf_tokens)
        model = add_lora(base, LoraTrainConfig(base_kind="hf", r=a.r).resolved())
        lr = 2e-4
    trainable, total = count_params(model)
    batch = D.collate(exs, base.fmt.pad_id)
    info = {"variant": name, "batch_shape": [len(exs), T], "trainable_params": trainable, "total_params": total,
            "threads": torch.get_num_threads(), **_state_mb(model),
            "activations_mb": _saved_activations_mb(model, batch, base.kind)}  # fmt: skip
    if name == "hf_trainer":
        info.update(_time_trainer(model, exs, base.fmt.pad_id, a.steps, a.warmup, lr))
    else:
        steps = a.gpt_steps if base.kind == "gpt" else a.steps
        info.update(_time_loop(model, base, batch, steps, a.warmup, lr))
    return info


def _time_trainer(model, exs, pad_id: int, steps: int, warmup: int, lr: float) -> dict:
    """The same fixed batch through a plain transformers.Trainer; step time from callbacks."""
    import tempfile

    from transformers import Trainer, TrainerCallback, TrainingArguments

    from scratchlab.training import lora_data as D

    class Timer(TrainerCallback):
        def __init__(self):
            self.t0, self.times = 0.0, []

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self.t0)

    n = warmup + steps
    data = [{"input_ids": e.input_ids, "labels": e.labels} for e in exs] * n
    timer = Timer()
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=len(exs), max_steps=n, learning_rate=lr,
                                 lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
                                 logging_steps=10**6, save_strategy="no", report_to=[], use_cpu=True,
                                 dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True, seed=0)  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=data,
                          data_collator=lambda feats: D.collate([D.Example(f["input_ids"], f["labels"]) for f in feats], pad_id),
                          callbacks=[timer])  # fmt: skip
        with RssSampler() as mem:
            trainer.train()
    times = timer.times[warmup:]
    return {"step_s": statistics.median(times), "step_s_all": [round(t, 4) for t in times],
            "rss_before_mb": mem.start_rss / 2**20, "peak_rss_mb": mem.peak / 2**20,
            "train_peak_mb": (mem.peak - mem.start_rss) / 2**20}  # fmt: skip


def demo_run(a: argparse.Namespace) -> dict:
    """`run_finetune` on the demo set with the pretrained base: before/after metrics."""
    import tempfile

    from scratchlab.lab.workspace import get_workspace
    from scratchlab.training.hf_base import ensure_base
    from scratchlab.training.lora import LoraTrainConfig, run_finetune

    ws = get_workspace(a.home)
    path = ensure_base(a.demo_base, ws.dir("bases"), ws.dir("models"))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = LoraTrainConfig(base_kind="hf", base_path=str(path), data=str(DEMO), out_dir=tmp, r=a.r, num_threads=a.threads,
                              max_iters=a.demo_iters, batch_size=a.hf_batch, max_len=a.demo_max_len,
                              eval_generate=a.demo_generate, max_new_tokens=24, ckpt_interval=0, device="cpu")  # fmt: skip
        res = run_finetune(cfg)
    keep = ("val_loss_before", "val_loss_after", "val_ppl_before", "val_ppl_after", "bleu_before", "bleu_after",
            "rouge1_before", "rouge1_after", "rougeL_before", "rougeL_after", "steps", "train_seconds",
            "step_seconds", "tokens_per_s", "trainable_params", "total_params", "seconds", "samples")  # fmt: skip
    return {
        "variant": "demo",
        "base": a.demo_base,
        "r": a.r,
        "batch_size": a.hf_batch,
        **{k: res.get(k) for k in keep},
    }


def run_child(name: str, a: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--variant", name, "--base", a.base, "--steps", str(a.steps), "--warmup", str(a.warmup), "--gpt-steps", str(a.gpt_steps),
           "--r", str(a.r), "--gpt-batch", str(a.gpt_batch), "--hf-batch", str(a.hf_batch), "--hf-tokens", str(a.hf_tokens),
           "--demo-iters", str(a.demo_iters), "--demo-generate", str(a.demo_generate),
           "--demo-base", a.demo_base, "--demo-max-len", str(a.demo_max_len), "--threads", str(a.threads)]  # fmt: skip
    if a.home:
        cmd += ["--home", a.home]
    print(f"== {name}", flush=True)
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        print(p.stderr[-3000:], file=sys.stderr)
        return {
            "variant": name,
            "error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}",
        }
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["wall_s"] = round(time.time() - t0, 1)
    print(json.dumps({k: v for k, v in res.items() if k not in ("step_s_all", "samples")}), flush=True)
    return res


def write_md(res: dict, path: Path) -> None:
    v = res["variants"]
    lines = ["# LoRA benchmark", "", f"Command: `{res['command']}`  ", f"Machine: {res['machine']}; load average "
             f"before {res['loadavg_before']}, after {res['loadavg_after']} (shared machine).", ""]  # fmt: skip
    lines += ["| variant | batch (B x T) | trainable / total params | step (s) | train peak RSS (MB) | grads+Adam (MB) | saved activations (MB) |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in ("gpt_full", "gpt_lora", "hf_lora", "hf_trainer"):
        r = v.get(name, {})
        if "error" in r or not r:
            lines.append(f"| {name} | error: {r.get('error', 'not run')} | | | | | |")
            continue
        lines.append(f"| {name} | {r['batch_shape'][0]} x {r['batch_shape'][1]} | {r['trainable_params']:,} / {r['total_params']:,} "
                     f"| {r['step_s']:.3f} | {r['train_peak_mb']:.0f} | {r['grads_mb'] + r['adam_mb']:.1f} | {r['activations_mb']:.1f} |")  # fmt: skip
    s = res.get("summary", {})
    lines += ["", *[f"- {k}: {val}" for k, val in s.items()]]
    lines += ["", "Notes:", "",
              "- step = median seconds per optimizer step on one fixed batch (same examples, same shape for every variant of a pair).",
              "- train peak RSS = peak resident memory sampled every 5 ms during the steps minus the size before them (model loaded);",
              "  grads+Adam = float32 gradients and AdamW moments of the trainable parameters; saved activations = tensors autograd",
              "  keeps for backward in one forward with full logits (saved-tensor hooks; the same number for both loops).",
              "- LoRA saves the gradient/optimizer state (and the weight-gradient matmuls) but not the backward through the",
              "  activations; with a small model and lora_dropout > 0 its extra dropout copies and A/B products can cost more",
              "  activation memory and time than they save.",
              "- ours vs Trainer: same peft model, batch, AdamW, clipping and loss; our loop runs the LM head only at positions",
              "  whose next token is trained (`logits_to_keep`), the Trainer projects every position onto the vocabulary."]  # fmt: skip
    d = v.get("demo", {})
    if d and "error" not in d:
        lines += ["", f"## Demo set ({d['base']}, r={d['r']}, {d['steps']} steps, batch {d['batch_size']})", "",
                  "| metric | before | after |", "|---|---|---|"]  # fmt: skip
        for m in ("val_loss", "val_ppl", "bleu", "rouge1", "rougeL"):
            if d.get(f"{m}_before") is not None:
                lines.append(f"| {m} | {d[f'{m}_before']} | {d[f'{m}_after']} |")
        if d.get("label_note"):
            lines += ["", f"Note: {d['label_note']}."]
        lines += ["", "Samples (base vs tuned):", ""]
        for x in (d.get("samples") or [])[:4]:
            lines.append(
                f"- Q: {x['prompt']!r} ref: {x['reference']!r}; base: {x['base']!r}; tuned: {x['tuned']!r}"
            )
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default=None, help="(internal) run one measurement and print JSON")
    ap.add_argument("--base", default="qwen2.5-coder-0.5b", help="pretrained base name")
    ap.add_argument(
        "--home", default=os.environ.get("SCRATCHLAB_HOME"), help="workspace (holds the converted base)"
    )
    ap.add_argument("--steps", type=int, default=4, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--gpt-steps", type=int, default=12, help="timed steps per variant on our GPT")
    ap.add_argument("--r", type=int, default=8, help="LoRA rank")
    ap.add_argument("--gpt-batch", type=int, default=8, help="batch size for our GPT")
    ap.add_argument("--hf-batch", type=int, default=4, help="batch size for the pretrained base")
    ap.add_argument("--hf-tokens", type=int, default=64, help="sequence length cap for the pretrained base")
    ap.add_argument("--demo-iters", type=int, default=40, help="steps of the demo fine-tune (0 skips it)")
    ap.add_argument("--demo-base", default="smollm2-135m", help="pretrained base for the demo fine-tune")
    ap.add_argument("--demo-max-len", type=int, default=128, help="max tokens per demo example")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads in every variant (same for ours and Trainer)",
    )
    ap.add_argument("--demo-generate", type=int, default=8, help="val prompts answered for BLEU/ROUGE")
    ap.add_argument(
        "--only",
        default=None,
        help="comma-separated variants to run (gpt_full,gpt_lora,hf_lora,hf_trainer,demo)",
    )
    ap.add_argument("--out", default=str(RESULTS), help="results path without extension")
    ap.add_argument("--md-only", action="store_true", help="rewrite the .md from an existing .json and exit")
    a = ap.parse_args()
    if a.md_only:
        write_md(json.loads(Path(a.out).with_suffix(".json").read_text()), Path(a.out).with_suffix(".md"))
        return 0
    if a.variant:
        out = demo_run(a) if a.variant == "demo" else variant(a.variant, a)
        print(json.dumps(out, default=str))
        return 0
    names = (
        a.only.split(",")
        if a.only
        else ["gpt_full", "gpt_lora", "hf_lora", "hf_trainer"] + (["demo"] if a.demo_iters else [])
    )
    res = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "threads": a.threads, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
           "loadavg_before": [round(x, 2) for x in os.getloadavg()], "variants": {}}  # fmt: skip
    for n in names:
        res["variants"][n] = run_child(n, a)
    res["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    v, s = res["variants"], {}
    if "step_s" in v.get("gpt_full", {}) and "step_s" in v.get("gpt_lora", {}):
        s["gpt LoRA step time / full FT"] = round(v["gpt_lora"]["step_s"] / v["gpt_full"]["step_s"], 3)
        s["gpt LoRA train peak / full FT"] = round(
            v["gpt_lora"]["train_peak_mb"] / max(1e-9, v["gpt_full"]["train_peak_mb"]), 3
        )
    if "step_s" in v.get("hf_lora", {}) and "step_s" in v.get("hf_trainer", {}):
        ratio = v["hf_lora"]["step_s"] / v["hf_trainer"]["step_s"]
        s["ours / Trainer step time (target <= 1.1)"] = round(ratio, 3)
    res["summary"] = s
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    write_md(res, out.with_suffix(".md"))
    print(json.dumps(s, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
