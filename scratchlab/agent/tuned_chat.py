"""`ChatTunedLlama`: the local chat model with the lab's own router adapter (`--model local:0.5b+tuned`).

    chat = tuned_chat_model("0.5b", workspace)      # base GGUF + <ws>/adapters/router-0.5b/adapter.gguf

The adapter (made by `scratchlab agent tune`, `scratchlab.agent.tune`) is a llama.cpp GGUF LoRA that
llama.cpp applies over the shipped quantized base at run time, so the base file is shared and the
adapter costs a few MB. Saved prompt states depend on the weights, so a tuned model keeps them in its
own folder (`<ws>/models/tuned-<adapter name>/`), apart from the untuned model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scratchlab.agent.llama_runtime import load_llama
from scratchlab.agent.local_chat import ChatLocalLlama
from scratchlab.agent.tune import tuned_adapter
from scratchlab.models.weights import gguf_path


class ChatTunedLlama(ChatLocalLlama):
    """`ChatLocalLlama` over a base GGUF with a GGUF LoRA adapter applied by llama.cpp.

    Attributes:
        lora_path: the adapter .gguf (`scratchlab.training.lora_gguf`).
    """

    lora_path: str

    @property
    def _llm_type(self) -> str:
        return "scratchlab-llama-cpp-tuned"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {**super()._identifying_params, "lora_path": self.lora_path}

    @property
    def llm(self):
        return load_llama(self.model_path, self.n_ctx, self.n_threads, lora_path=self.lora_path)


def tuned_chat_model(base: str, workspace: Any, **kwargs: Any) -> ChatTunedLlama:
    """The chat model for `local:<base>+tuned`.

    Raises:
        scratchlab.agent.tune.TuneError: no finished tune for `base` (the message says how to make one).
        scratchlab.models.weights.WeightsError: the base weights are missing.
    """
    adapter = tuned_adapter(workspace, base)
    states = Path(workspace.dir("models")) / f"tuned-{adapter.parent.name}"
    states.mkdir(parents=True, exist_ok=True)
    return ChatTunedLlama(model_path=str(gguf_path(base, workspace.dir("models"))), lora_path=str(adapter),
                          state_cache_dir=str(states), **kwargs)  # fmt: skip
