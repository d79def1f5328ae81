"""What a LoRA tool or `scratchlab lora` command refers to: bases, data files and adapters.

    b = resolve_base(ctx, "run-3")          # BaseRef: a GPT run, a pretrained base name, or a merged model
    b = materialize(ctx, b)                 # converts a pretrained base on first use, registers it
    art = resolve_adapter(ctx, "last")      # the adapter artifact, its metrics synced from its folder

Base references: a GPT run id or name ("run-3"), "last" (the newest GPT run), a pretrained base
name ("qwen2.5-coder-0.5b", "smollm2-135m"; converted from the shipped GGUF on first use and
registered as kind "base"), or a merged model (kind "base" or "run"). Adapters are artifacts of
kind "adapter" saved under `<workspace>/adapters/<name>/`, parent = the base artifact.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from scratchlab.lab.registry import Artifact, ArtifactNotFound
from scratchlab.tools.base import ToolContext, ToolError
from scratchlab.training.hf_base import BASES, ensure_base, read_base_meta
from scratchlab.training.lora_config import LORA_META
from scratchlab.training.lora_demo import write_demo

ADAPTER = "adapter"
BASE = "base"
RUN = "run"
DEMO_DATA = "demo"
DEMO_FILE = "lora_demo.jsonl"
BASE_PARAMS = {"qwen2.5-coder-0.5b": 494_032_768, "smollm2-135m": 134_515_008}


@dataclass
class BaseRef:
    """A resolved base: kind "hf" | "gpt", its folder, registry id (None until converted), display name."""

    kind: str
    path: Path
    artifact_id: str | None
    name: str
    n_params: int
    needs_conversion: bool = False


def slug(s: str) -> str:
    """`s` as a folder- and registry-safe name: other characters become "-" ("adapter" if none left)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-.") or "adapter"


def _n_params_of(art: Artifact) -> int:
    for src in (art.metrics, art.config):
        for k in ("n_params", "params", "num_params"):
            if isinstance(src.get(k), int | float):
                return int(src[k])
    p = Path(art.path)
    for f, per in (("best.pt", 4), ("ckpt.pt", 12), ("model.safetensors", 4)):
        if (p / f).is_file():
            return (p / f).stat().st_size // per
    return 10_000_000


def resolve_base(ctx: ToolContext, ref: str | None) -> BaseRef:
    """Find the base a reference names, without side effects (conversion happens in `materialize`).

    Raises:
        ToolError: nothing matches (the message lists what exists and the pretrained names).
    """
    key = (ref or "last").strip()
    if key in BASES:
        try:
            art = ctx.registry.get_artifact(key, kind=BASE)
            if Path(art.path).is_dir():
                return BaseRef("hf", Path(art.path), art.id, key, _n_params_of(art))
        except ArtifactNotFound:
            pass
        path = ctx.workspace.dir("bases") / key
        return BaseRef("hf", path, None, key, BASE_PARAMS.get(key, 500_000_000), needs_conversion=True)
    for kind, engine_kind in ((RUN, "gpt"), (BASE, "hf")):
        try:
            art = ctx.registry.get_artifact(key, kind=kind)
        except ArtifactNotFound:
            continue
        if not Path(art.path).exists():
            raise ToolError(f"{art.id} ({art.name}) points to {art.path}, which no longer exists")
        return BaseRef(engine_kind, Path(art.path), art.id, art.name, _n_params_of(art))
    runs = [f"{a.name} ({a.id})" for a in ctx.registry.list_artifacts(RUN, limit=5)]
    hint = "no GPT runs yet (train one with train_gpt)" if not runs else "GPT runs: " + ", ".join(runs)
    raise ToolError(f"unknown base {key!r}: {hint}; pretrained bases: {sorted(BASES)}")


def materialize(ctx: ToolContext, b: BaseRef) -> BaseRef:
    """Convert a pretrained base on first use and register it (kind "base"); no-op otherwise."""
    if not b.needs_conversion and b.artifact_id:
        return b
    path = ensure_base(b.name, ctx.workspace.dir("bases"), ctx.workspace.dir("models"))
    meta = read_base_meta(path)
    # a base is its pinned weights: converting it again gives the same artifact
    old = ctx.registry.find_artifact(b.name, BASE)
    art = old or ctx.registry.add_artifact(BASE, b.name, path, config={k: meta.get(k) for k in ("architecture", "source_gguf", "gguf_sha256", "description")},
                                           metrics={"n_params": meta.get("n_params")})  # fmt: skip
    return BaseRef("hf", path, art.id, b.name, int(meta.get("n_params") or b.n_params))


def resolve_data(ctx: ToolContext, data: str) -> Path:
    """The data file for a reference: 'demo' (built once into datasets/) or an existing path.

    Raises:
        ToolError: the file does not exist.
    """
    if data.strip().lower() == DEMO_DATA:
        p = ctx.workspace.dir("datasets") / DEMO_FILE
        if not p.is_file():
            write_demo(p)
        return p
    p = Path(data).expanduser()
    if not p.is_file():
        raise ToolError(f"data file {data!r} not found; give a .jsonl of alpaca/chat records or 'demo'")
    return p


def resolve_adapter(ctx: ToolContext, ref: str | None) -> Artifact:
    """The adapter artifact (synced with its folder's metrics). Raises ToolError if unknown."""
    try:
        art = ctx.registry.get_artifact((ref or "last").strip(), kind=ADAPTER)
    except ArtifactNotFound as e:
        raise ToolError(f"{e}. Fine-tune one with finetune_lora.") from None
    return sync_adapter(ctx, art)


def sync_adapter(ctx: ToolContext, art: Artifact) -> Artifact:
    """Copy metrics from the adapter folder's lora_meta.json into the registry once training ended."""
    meta_path = Path(art.path) / LORA_META
    if art.config.get("status") == "done" or not meta_path.is_file():
        return art
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError:
        return art
    metrics = {
        **meta.get("metrics", {}),
        "trainable_params": meta["params"]["trainable"],
        "total_params": meta["params"]["total"],
    }
    base = meta.get("base", {})
    config = {
        "status": "done",
        "base_hash": base.get("hash"),
        "base_name": base.get("name"),
        "data_summary": meta.get("data", {}),
    }
    return ctx.registry.update_artifact(art.id, metrics=metrics, config=config)


def require_saved(art: Artifact) -> None:
    """Raise ToolError unless the adapter's weights are saved (its training finished)."""
    if not (Path(art.path) / LORA_META).is_file():
        job = art.config.get("job")
        raise ToolError(
            f"adapter {art.name} ({art.id}) has no saved weights yet"
            + (f"; its training job is {job}" if job else "")
        )


def unique_name(ctx: ToolContext, stem: str) -> str:
    """'<stem>-lora-<n>' with the smallest n that no adapter artifact or adapters/ folder uses."""
    taken = {a.name for a in ctx.registry.list_artifacts(ADAPTER)}
    folder = ctx.workspace.dir("adapters")
    n = 1
    while f"{stem}-lora-{n}" in taken or (folder / f"{stem}-lora-{n}").exists():
        n += 1
    return f"{stem}-lora-{n}"
