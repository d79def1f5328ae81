"""Router tuning (issue 20): does the exported adapter match peft, does it route better, does it still answer?

Three parts, each writing into benchmarks/results/agent_tune.json (merged) and agent_tune.md:

    # 1. export check: peft vs llama.cpp(+adapter GGUF over the quantized base), next-token choice at the
    #    action position of 50 unseen requests (commands_test9.jsonl) in the runtime's own prompt
    python benchmarks/agent_tune.py check --base 0.5b --adapter ~/.local/share/scratchlab/adapters/router-0.5b
    # 2. general answering: 20 general questions through the agent (dry run), untuned vs tuned replies
    python benchmarks/agent_tune.py general --base 0.5b --home /tmp/tunehome --n-threads 1
    # 3. the before/after table from agent_eval / agent_conversations result files (run those first:
    #    agent_eval.py --model local:0.5b+tuned --split test10 --data benchmarks/data/commands_test10.jsonl ...)
    python benchmarks/agent_tune.py table --singles test10 --conversations test9

Every part records the load average before and after (a shared machine makes latencies meaningless;
quality numbers do not depend on load). The scores that `scratchlab models` shows come from "scores".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from scratchlab.lab.atomic import atomic_write_json, atomic_write_text

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
OUT = RESULTS / "agent_tune"
UNSEEN = ROOT / "data" / "commands_test9.jsonl"
GENERAL = [
    "what is attention?", "what is a transformer?", "explain backpropagation in two sentences",
    "what does a tokenizer do?", "what is overfitting?", "why do we use layer normalization?",
    "what is the difference between precision and recall?", "what is a learning rate warmup?",
    "explain dropout", "what is byte pair encoding?", "what is perplexity?", "what is an embedding?",
    "what is gradient clipping for?", "what is the softmax function?", "how does beam search work?",
    "what is RLHF?", "what is a residual connection?", "what does weight decay do?",
    "what is a KV cache?", "what is the difference between a GPT and BERT?",
]  # fmt: skip
MODELS = ("local:1.5b", "local:0.5b", "local:0.5b+tuned")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def merge(part: str, payload: dict[str, Any]) -> dict[str, Any]:
    path = OUT.with_suffix(".json")
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[part] = {**payload, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "command": "python " + " ".join(sys.argv)}  # fmt: skip
    atomic_write_json(path, data)
    atomic_write_text(OUT.with_suffix(".md"), render(data))
    return data


# ---- 1. export check ------------------------------------------------------------------------------
def check(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from scratchlab.agent.prompts import fixed_system_prompt, lab_state_text
    from scratchlab.agent.router import ACTION_PREFIX
    from scratchlab.agent.tune import ADAPTER_GGUF, tool_dicts
    from scratchlab.agent.tune_data import catalogue_prefix, runtime_prompt
    from scratchlab.lab.workspace import get_workspace
    from scratchlab.models.weights import gguf_path
    from scratchlab.training.lora_model import read_adapter_meta
    from scratchlab.training.next_tokens import agreement, hf_next_tokens, llama_next_tokens, load_llama

    torch.set_num_threads(args.n_threads)
    ws = get_workspace(args.home)
    adapter = Path(args.adapter).expanduser()
    base_dir = read_adapter_meta(adapter)["base"]["path"]
    tools = tool_dicts(ws)
    tuned_on = json.loads((adapter / "tune.json").read_text()).get("config", {}).get("prompt", "catalogue")
    compact = tuned_on == "compact"  # the prompt the adapter was tuned on (and runs with)
    system = fixed_system_prompt(tools, compact=compact) + "\n" + lab_state_text([])
    prefix = catalogue_prefix(
        tools, compact
    )  # run by the base, as the tune trained it and the runtime runs it
    reqs = [json.loads(line)["request"] for line in UNSEEN.read_text().splitlines() if line.strip()][: args.n]
    prompts = [runtime_prompt(system, r) + ACTION_PREFIX for r in reqs]
    l0 = load()
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(base_dir)
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(adapter)).eval()
    hf = hf_next_tokens(peft, tok, prompts, base_prefix=prefix)
    with peft.disable_adapter():
        hf_base = hf_next_tokens(peft, tok, prompts)
    del peft
    base_gguf = gguf_path(args.base, ws.dir("models"))
    cpp_base = llama_next_tokens(load_llama(base_gguf, n_threads=args.n_threads), prompts)
    cpp = llama_next_tokens(load_llama(base_gguf, adapter / ADAPTER_GGUF, n_threads=args.n_threads), prompts,
                            base_prefix=prefix)  # fmt: skip
    res = {
        "base": args.base, "adapter": str(adapter), "prompt": tuned_on, "note": args.note, "n_prompts": len(prompts),
        "agreement_tuned": agreement(cpp, hf), "agreement_base": agreement(cpp_base, hf_base),
        "changed_by_adapter": 1 - agreement(hf, hf_base),
        "disagreements": [{"request": r, "peft": tok.decode([a]), "llama_cpp": tok.decode([b])}
                          for r, a, b in zip(reqs, hf, cpp, strict=True) if a != b],
        "seconds": round(time.time() - t0, 1), "load_before": l0, "load_after": load(),
    }  # fmt: skip
    merge("check", res)
    return res


# ---- 2. general answering ---------------------------------------------------------------------------
def general(args: argparse.Namespace) -> dict[str, Any]:
    from scratchlab.agent.llm import get_chat_model
    from scratchlab.agent.session import LabSession
    from scratchlab.lab.workspace import get_workspace
    from scratchlab.training.lora_eval import text_metrics

    ws = get_workspace(args.home)
    l0 = load()
    replies: dict[str, list[dict[str, Any]]] = {}
    for spec in (f"local:{args.base}", f"local:{args.base}+tuned"):
        chat = get_chat_model(spec, workspace=ws, n_threads=args.n_threads)
        session = LabSession(home=str(ws.root), model=chat, auto_confirm=True)
        out = []
        for q in GENERAL[: args.n]:
            r = session.ask(q, dry_run=True)
            out.append({"question": q, "action": r["action"] if not r["tool_calls"] else r["tool_calls"][0]["name"],
                        "answer": r["answer"], "decision_s": round(r["decision_seconds"], 3)})  # fmt: skip
        replies[spec] = out
        session.close()
    untuned, tuned = replies[f"local:{args.base}"], replies[f"local:{args.base}+tuned"]
    answered = {spec: sum(1 for r in rs if r["action"] == "answer" and len(r["answer"].split()) >= 5) / len(rs)
                for spec, rs in replies.items()}  # fmt: skip
    sim = text_metrics([r["answer"] or "-" for r in tuned], [r["answer"] or "-" for r in untuned])
    res = {"base": args.base, "n": len(tuned), "answered": answered, "tuned_vs_untuned": sim,
           "mean_words": {s: statistics.mean(len(r["answer"].split()) for r in rs) for s, rs in replies.items()},
           "replies": replies, "load_before": l0, "load_after": load()}  # fmt: skip
    merge("general", res)
    return res


# ---- 3. the table ----------------------------------------------------------------------------------
def slug(model: str) -> str:
    return model.replace(":", "-").replace("+", "-")


def eval_row(model: str, singles: str, conversations: str) -> dict[str, Any]:
    """Scores of `model` from agent_eval (split `singles`) and agent_conversations (`conversations`) files."""
    row: dict[str, Any] = {}
    p = RESULTS / f"agent_eval_{slug(model)}_{singles}.json"
    if p.is_file():
        d = json.loads(p.read_text())
        cats = d["summary"]["categories"]
        n = sum(c["n"] for c in cats.values())
        row["first_action_args"] = round(sum(c["action_and_args"] * c["n"] for c in cats.values()) / n, 3)
        row["first_action"] = round(sum(c["first_action"] * c["n"] for c in cats.values()) / n, 3)
        nt = [c for k, c in cats.items() if c.get("no_tool") is not None]
        if nt:
            row["no_tool_chitchat"] = round(
                sum(c["no_tool"] * c["n"] for c in nt) / sum(c["n"] for c in nt), 3
            )
        row["decision_median_s"] = d["summary"]["overall"]["median_s"]  # over all requests
        row["singles_n"] = n
        row["singles_date"] = d.get("date")
    names = {model.replace(":", "-"), slug(model)}  # agent_conversations keeps the "+"
    runs = [p for n in names for p in RESULTS.glob(f"agent_conversations_{n}_{conversations}*.json")]
    if runs:  # the newest run of those conversations
        c = max(runs, key=lambda p: json.loads(p.read_text()).get("date", ""))
        s = json.loads(c.read_text())["summary"]
        row["multi_turn"] = f"{s['turns_right']}/{s['turns']}"
        row["multi_turn_accuracy"] = s["turn_accuracy"]
        row["multi_turn_file"] = c.name
    return row


def table(args: argparse.Namespace) -> dict[str, Any]:
    scores = {m: eval_row(m, args.singles, args.conversations) for m in MODELS}
    return merge("scores", {**{m: s for m, s in scores.items() if s},
                            "splits": {"singles": args.singles, "conversations": args.conversations}})  # fmt: skip


def render(data: dict[str, Any]) -> str:
    lines = ["# Router tuning (issue 20): the 0.5B tuned on scratchlab's tools", ""]
    sc = data.get("scores", {})
    if sc:
        cols = (
            "first_action_args",
            "first_action",
            "no_tool_chitchat",
            "multi_turn",
            "decision_median_s",
            "singles_n",
        )
        lines += ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for m, s in sc.items():
            if isinstance(s, dict) and m.startswith("local:"):
                lines.append(f"| {m} | " + " | ".join(str(s.get(k, "")) for k in cols) + " |")
        sp = sc.get("splits", {"singles": "test9", "conversations": "test9"})
        lines += ["", f"Single requests: split {sp['singles']} (never in the bank or the tuning set); "
                  f"multi-turn: conversations {sp['conversations']}. Latency: median decision time over all requests, "
                  "seconds; it depends on load (see the source files' dates and loads).", ""]  # fmt: skip
    if "check" in data:
        c = data["check"]
        lines += [f"## Export check ({c['date']})", "",
                  f"llama.cpp with the GGUF adapter over the quantized base vs the peft model, next token at the "
                  f"action position of {c['n_prompts']} unseen requests: agreement **{c['agreement_tuned']:.2f}** "
                  f"(untuned base vs its HF copy: {c['agreement_base']:.2f}); the adapter changed "
                  f"{c['changed_by_adapter']:.0%} of peft's choices. Load {c['load_before']} -> {c['load_after']}. "
            f"{c.get('note', '')}",
                  f"Command: `{c['command']}`", ""]  # fmt: skip
    if "general" in data:
        g = data["general"]
        lines += [f"## General answering ({g['date']})", "",
                  f"{g['n']} general questions through the agent: share answered in words (>= 5 words, no tool): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in g["answered"].items())
                  + f"; tuned vs untuned replies ROUGE-L {g['tuned_vs_untuned']['rougeL']}, mean words "
                  + ", ".join(f"{k} {v:.0f}" for k, v in g["mean_words"].items()) + ".",
                  g.get("note", ""), f"Command: `{g['command']}`", ""]  # fmt: skip
    if "tune" in data:
        lines += ["## The tune", "", "```", json.dumps(data["tune"], indent=1)[:1500], "```", ""]
    return "\n".join(lines)


def tune_info(args: argparse.Namespace) -> dict[str, Any]:
    """Record a finished tune's settings, wall time and losses (from its adapter folder)."""
    adapter = Path(args.adapter).expanduser()
    meta = json.loads((adapter / "tune.json").read_text())
    m = meta["metrics"]
    res = {"config": meta["config"], "n_records": meta["n_records"], "note": args.note,
           **{k: m.get(k) for k in ("val_loss_before", "val_loss_after", "steps", "train_seconds",
                                     "step_seconds", "seconds", "device", "world_size")}}  # fmt: skip
    merge("tune", res)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="part", required=True)
    for name in ("check", "general", "table", "tune"):
        p = sub.add_parser(name)
        p.add_argument("--base", default="0.5b", help="tuned base model key")
        p.add_argument("--adapter", default=None, help="the tune's adapter folder (check, tune)")
        p.add_argument("--home", default=None, help="workspace (default: $SCRATCHLAB_HOME)")
        p.add_argument("--n", type=int, default=50 if name == "check" else 20, help="prompts/questions")
        p.add_argument("--n-threads", type=int, default=1, help="CPU threads (1 on a busy machine)")
        p.add_argument("--note", default="", help="free text stored with `tune` (machine, load)")
        p.add_argument("--singles", default="test10", help="agent_eval split of the table's single requests")
        p.add_argument(
            "--conversations",
            default="test9_c11-20",
            help="agent_conversations file tag of the table (the newest file starting with it)",
        )
    args = ap.parse_args(argv)
    res = {"check": check, "general": general, "table": table, "tune": tune_info}[args.part](args)
    print(
        json.dumps(
            {k: v for k, v in res.items() if k not in ("replies", "disagreements")}, indent=1, default=str
        )[:3000]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
