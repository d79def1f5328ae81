"""`scratchlab agent tune`: the lab tunes its own router, a LoRA on the local chat model for its tools.

    from scratchlab.agent.tune import TuneConfig, start_tune
    job = start_tune(ws, registry, TuneConfig(base="0.5b", max_iters=180))     # a background job
    # ... then `--model local:0.5b+tuned` runs the base GGUF with <ws>/adapters/router-0.5b/adapter.gguf

    python -m scratchlab.agent.tune --config cfg.json [--job-id ID --home DIR]   # the job itself

The job (1) builds the training set (`scratchlab.agent.tune_data`: the example bank rendered as the
runtime renders a decision, with label-preserving augmentations), (2) trains a LoRA on the Hugging Face
copy of the shipped GGUF (`scratchlab.training.hf_base`) with scratchlab's LoRA engine
(`scratchlab.training.lora`: progress, checkpoints every `ckpt_interval` steps, resume when started
again with the same name), and (3) exports the adapter in llama.cpp's GGUF LoRA format
(`scratchlab.training.lora_gguf`), which llama.cpp applies at run time over the quantized base.
Running the same tune again resumes from the checkpoint; a finished adapter is never overwritten.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from scratchlab.lab.atomic import atomic_write_json

TUNE_META = "tune.json"
ADAPTER_GGUF = "adapter.gguf"
TUNE_MODULE = "scratchlab.agent.tune"
BASES = {"0.5b": "qwen2.5-coder-0.5b", "smollm2": "smollm2-135m"}  # chat model key -> convertible base
MAX_LEN = 8192  # tokens: the full tool catalogue (~4.9k tokens for the 0.5B) + request + target, never cut
TUNED_SUFFIX = "+tuned"
PROMPTS = ("compact", "catalogue")  # see TuneConfig.prompt


class TuneError(ValueError):
    """A bad tune request (unknown base, a finished adapter in the way); the message says what to do."""


@dataclass
class TuneConfig:
    """One router tune (saved as the job's config and in `tune.json`).

    Attributes:
        base: chat model key of the base ("0.5b" or "smollm2").
        name: adapter folder name under `<workspace>/adapters/` (default "router-<base>").
        n_augment: label-preserving variants per bank example.
        limit: use only the first `limit` bank examples (tests); None for all.
        tools: only these tools in the catalogue (tests); None for all of scratchlab's tools.
        bank: a folder of bank `*.jsonl` files (tests); None for the agent's own bank.
        accepted: also train on the workspace's accepted turns (`tune_data.accepted_turns`).
        max_iters, batch_size, grad_accum, lr, r, lora_dropout, ckpt_interval, device, num_threads,
        seed: the LoRA engine's settings (`scratchlab.training.lora_config.LoraTrainConfig`).
        max_len: longest example in tokens.
        prompt: the system prompt the router is tuned on and then runs with: "compact" (one line per
            tool with its arguments, `prompts.fixed_system_prompt(compact=True)`) or "catalogue" (the untuned model's full catalogue).
            Tunes made before this setting existed used "catalogue".
    """

    base: str = "0.5b"
    name: str = ""
    n_augment: int = 1
    limit: int | None = None
    tools: list[str] | None = None
    bank: str | None = None
    accepted: bool = False
    max_iters: int = 180  # ~22 minutes for the 0.5B on 2 idle cores, compact prompt (README)
    batch_size: int = 1  # one sequence per micro step: no padding, so SDPA keeps its causal kernel
    grad_accum: int = 4
    lr: float = 4e-4
    r: int = 16
    lora_dropout: float = 0.05
    ckpt_interval: int = 10
    max_len: int = MAX_LEN
    device: str = "auto"
    num_threads: int | None = None
    seed: int = 0
    prompt: str = "compact"

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise TuneError(f"cannot tune base {self.base!r}; tunable bases: {sorted(BASES)}")
        if self.prompt not in PROMPTS:
            raise TuneError(f"unknown prompt {self.prompt!r}; choose one of {list(PROMPTS)}")
        self.name = self.name or f"router-{self.base}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TuneConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def adapter_dir(workspace: Any, name: str) -> Path:
    return Path(workspace.dir("adapters")) / name


def tuned_adapter(workspace: Any, base: str, name: str | None = None) -> Path:
    """The exported `adapter.gguf` of a finished tune of `base`.

    Raises:
        TuneError: no finished tune (the message gives the command that makes one).
    """
    path = adapter_dir(workspace, name or f"router-{base}") / ADAPTER_GGUF
    if not path.is_file():
        raise TuneError(
            f"no tuned adapter for local:{base} ({path} missing); make it with `scratchlab agent tune --base {base}`"
        )
    return path


def tool_dicts(workspace: Any, only: list[str] | None = None) -> list[dict[str, Any]]:
    """The OpenAI-format tools the runtime binds (all scratchlab tools, in catalogue order)."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from scratchlab.tools import all_tools

    tools = [convert_to_openai_tool(t) for t in all_tools(workspace)]
    if only:
        unknown = set(only) - {t["function"]["name"] for t in tools}
        if unknown:
            raise TuneError(f"unknown tools {sorted(unknown)}")
        tools = [t for t in tools if t["function"]["name"] in only]
    return tools


def workspace_threads(workspace: Any) -> list[list[Any]]:
    """The messages of every conversation thread in the workspace (LangGraph checkpointer, latest state)."""
    from scratchlab.agent import memory

    saver, _store, conn = memory.open_memory(workspace.db_path)
    try:
        ids = {c.config["configurable"]["thread_id"] for c in saver.list(None)}
        out = []
        for t in sorted(ids):
            tup = saver.get_tuple({"configurable": {"thread_id": t}})
            if tup is not None:
                out.append(list(tup.checkpoint.get("channel_values", {}).get("messages", [])))
        return out
    finally:
        conn.close()


def prepare(workspace: Any, cfg: TuneConfig, on_status=print) -> dict[str, Any]:
    """Build the training set and the LoRA engine's config for `cfg` (converting the base once).

    Returns:
        A `LoraTrainConfig` dict (data in `<adapter dir>/router_data.jsonl`).
    """
    from scratchlab.agent.bank import load_examples
    from scratchlab.agent.tune_data import (
        accepted_turns,
        build_records,
        catalogue_prefix,
        empty_system,
        write_records,
    )
    from scratchlab.training.hf_base import ensure_base

    out = adapter_dir(workspace, cfg.name)
    base = ensure_base(BASES[cfg.base], workspace.dir("bases"), workspace.dir("models"), on_status)
    examples = load_examples(Path(cfg.bank)) if cfg.bank else load_examples()
    if cfg.limit:
        examples = examples[: cfg.limit]
    tools = tool_dicts(workspace, cfg.tools)
    compact = cfg.prompt == "compact"
    extra = accepted_turns(workspace_threads(workspace), empty_system(tools, compact)) if cfg.accepted else []
    records = build_records(tools, examples, cfg.n_augment, cfg.seed, extra=extra, compact=compact)
    data = out / "router_data.jsonl"
    write_records(records, data)
    on_status(f"training set: {len(records)} decisions from {len(examples)} bank examples -> {data}")
    return {
        "base_kind": "hf", "base_path": str(base), "base_ref": BASES[cfg.base], "data": str(data),
        "out_dir": str(out), "r": cfg.r, "lora_dropout": cfg.lora_dropout, "max_iters": cfg.max_iters,
        "lr": cfg.lr, "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "max_len": cfg.max_len,
        "cached_prefix": catalogue_prefix(tools, compact), "val_fraction": 0.05, "eval_generate": 0, "eval_iters": 4, "ckpt_interval": cfg.ckpt_interval,
        "device": cfg.device, "num_threads": cfg.num_threads, "seed": cfg.seed, "resume": True,
    }  # fmt: skip


def check_free(workspace: Any, cfg: TuneConfig) -> None:
    """Raise TuneError when `cfg.name` already holds a finished adapter (names are never reused)."""
    from scratchlab.training.lora import TRAIN_STATE

    out = adapter_dir(workspace, cfg.name)
    if (out / ADAPTER_GGUF).is_file() and not (out / TRAIN_STATE).is_file():
        raise TuneError(
            f"{out} already holds a finished tune; pick another --name or delete that folder to tune again"
        )


def run_tune(config: dict[str, Any], reporter: Any = None, workspace: Any = None) -> dict[str, Any]:
    """The job's work: build data, train (or resume), export to GGUF, write `tune.json`.

    Args:
        config: a `TuneConfig` dict.
        reporter: a `scratchlab.lab.jobs.JobReporter` (progress, stop requests) or None.
        workspace: the workspace (default: `$SCRATCHLAB_HOME`'s).

    Returns:
        The LoRA engine's result plus `adapter_gguf`, `n_records` and `status`.
    """
    from scratchlab.lab.workspace import get_workspace
    from scratchlab.training.lora import run_job
    from scratchlab.training.lora_gguf import export_adapter_gguf

    ws = workspace or get_workspace()
    cfg = TuneConfig.from_dict(config)
    say = (lambda m: reporter.update(0, cfg.max_iters, m)) if reporter is not None else print
    lcfg = prepare(ws, cfg, on_status=say)
    res = run_job(lcfg, reporter)
    if res.get("status") != "done":
        return res
    out = Path(lcfg["out_dir"])
    gguf = export_adapter_gguf(out, out / ADAPTER_GGUF, base_dir=lcfg["base_path"])
    n = sum(1 for _ in open(lcfg["data"], encoding="utf-8"))
    meta = {"base": cfg.base, "config": asdict(cfg), "n_records": n, "adapter_gguf": str(gguf),
            "metrics": {k: v for k, v in res.items() if isinstance(v, int | float | str) or v is None}}  # fmt: skip
    atomic_write_json(out / TUNE_META, meta)
    return {**res, "adapter_gguf": str(gguf), "n_records": n}


def start_tune(workspace: Any, registry: Any, cfg: TuneConfig) -> Any:
    """Start the tune as a background job (`scratchlab.lab.jobs`); resumes a stopped tune of the same name.

    Raises:
        TuneError: a finished adapter already has this name.
        scratchlab.lab.jobs.JobError: the child process could not start.
    """
    from scratchlab.lab import jobs

    check_free(workspace, cfg)
    out = adapter_dir(workspace, cfg.name)
    return jobs.start_job(workspace, registry, "tune", TUNE_MODULE, asdict(cfg), run_dir=out,
                          total=cfg.max_iters, resume_hint=f"Run `scratchlab agent tune --base {cfg.base} "
                          f"--name {cfg.name}` again to resume from its checkpoint.")  # fmt: skip


def tune_scores(workspace: Any) -> dict[str, dict[str, Any]]:
    """{"local:<base>+tuned": tune.json} for every finished router tune in the workspace."""
    out = {}
    for meta_path in sorted(Path(workspace.dir("adapters")).glob(f"*/{TUNE_META}")):
        meta = json.loads(meta_path.read_text())
        out.setdefault(f"local:{meta['base']}{TUNED_SUFFIX}", {**meta, "folder": str(meta_path.parent)})
    return out


def job_main(argv: list[str] | None = None) -> int:
    """`python -m scratchlab.agent.tune --config cfg.json [--job-id ID --home DIR]`."""
    from scratchlab.lab import job_child  # the job face (imports the registry)

    return job_child.job_main(argv, prog=f"python -m {TUNE_MODULE}", what="tune the local router",
                              config_name="TuneConfig", work=run_tune, alone=_alone)  # fmt: skip


def _alone(config: dict[str, Any]) -> int:
    from scratchlab.training.report import SignalStop  # lazy: torch, only for a foreground run

    res = run_tune(config, SignalStop(sys.stderr))
    print(json.dumps({k: v for k, v in res.items() if k not in ("model", "base")}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(job_main())
