"""`ChatTunedLlama`: the local chat model with the lab's own router adapter (`--model local:0.5b+tuned`).

    chat = tuned_chat_model("0.5b", workspace)      # base GGUF + <ws>/adapters/router-0.5b/adapter.gguf

The adapter (made by `scratchlab agent tune`, `scratchlab.agent.tune`) is a llama.cpp GGUF LoRA that
llama.cpp applies over the shipped quantized base at run time, so the base file is shared and the
adapter costs a few MB. The tune trained the adapter on what follows the tool catalogue, with the
catalogue's keys and values computed by the base (`scratchlab.training.lora_prefix`), so this model
evaluates the catalogue with the adapter off (`llama_runtime.adapter_off`) and everything after it with
the adapter on. The catalogue's saved state is then the base's own, shared with the untuned model.

A tune on the compact prompt (`TuneConfig.prompt`, the default) runs with it: the system message's
catalogue is replaced by the one-line-per-tool list the adapter was trained after (`_compact`), which
puts every decoded token at a ~1.5k-token context instead of ~5k.

The adapter routes; the base writes. Replies and code are generated with the adapter off and the
conversation after the catalogue re-evaluated by the base: the tune trained decisions only, and with the
adapter on, a 180-step tune answered 6 of 20 general questions with `{"args": {}}`
(`benchmarks/results/agent_tune.md`). Switching costs one pass over the conversation after the catalogue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage
from pydantic import PrivateAttr

from scratchlab.agent import router
from scratchlab.agent.llama_runtime import LOCK, adapter_off, load_llama
from scratchlab.agent.local_chat import ChatLocalLlama
from scratchlab.agent.prompts import LAB_STATE, fixed_system_prompt
from scratchlab.agent.tune import TUNE_META, TuneError, tuned_adapter
from scratchlab.models.weights import gguf_path
from scratchlab.training.lora_format import PREFIX_SLACK


class ChatTunedLlama(ChatLocalLlama):
    """`ChatLocalLlama` over a base GGUF with a GGUF LoRA adapter applied by llama.cpp after the catalogue.

    Attributes:
        lora_path: the adapter .gguf (`scratchlab.training.lora_gguf`).
        compact: the adapter was tuned after the compact catalogue (`prompts.fixed_system_prompt(compact=True)`).
    """

    lora_path: str
    compact: bool = False
    _n_catalogue: int = PrivateAttr(default=0)  # tokens of the catalogue in llama.cpp's cache (base KV)
    _mode: str = PrivateAttr(default="route")  # how the cache after the catalogue was computed

    @property
    def _llm_type(self) -> str:
        return "scratchlab-llama-cpp-tuned"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {**super()._identifying_params, "lora_path": self.lora_path}

    @property
    def llm(self):
        return load_llama(self.model_path, self.n_ctx, self.n_threads, lora_path=self.lora_path)

    def warm_start(self, system_prefix: str) -> None:
        """The catalogue's state as the base computes it (adapter off), rebuilt if another prompt evicted it."""
        key = system_prefix.rstrip()
        with LOCK:
            llm = self.llm
            want = llm.tokenize(f"{router.IM_START}system\n{key}".encode(), special=True)[:-PREFIX_SLACK]
            if key in self._warmed and not (
                llm.n_tokens >= len(want) and llm.input_ids[: len(want)].tolist() == want
            ):
                self._warmed.discard(key)
            with adapter_off(llm):
                super().warm_start(system_prefix)
            self._n_catalogue = len(want)

    def decide(self, messages: list[BaseMessage], tools: list[dict[str, Any]]) -> tuple[str, Any]:
        return super().decide(self._compact(messages, tools) if self.compact else messages, tools)

    @staticmethod
    def _compact(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> list[BaseMessage]:
        """`messages` with the system message's catalogue replaced by the compact one (its lab state kept)."""
        if not tools or not messages or not isinstance(messages[0], SystemMessage):
            return messages  # no tools: the base answers (adapter off), from the prompt as it came
        text = str(messages[0].content)
        cut = text.find(LAB_STATE)
        lab = text[cut:] if cut >= 0 else ""
        return [SystemMessage(fixed_system_prompt(tools, compact=True) + "\n" + lab), *messages[1:]]

    def _use(self, mode: str) -> None:
        """Before a decision ("route") or a reply ("write"): drop the cache after the catalogue if it was
        computed the other way, so the conversation is evaluated as the mode needs it."""
        if mode != self._mode:
            llm = self.llm
            llm.n_tokens = min(llm.n_tokens, self._n_catalogue)
            self._mode = mode

    def _choose(self, prompt: str, names: list[str], prior: dict[str, float]) -> str:
        with LOCK:
            self._use("route")
            return super()._choose(prompt, names, prior)

    def _complete(self, prompt: str, *, grammar: str, max_tokens: int = 64, forced=None) -> str:
        with LOCK:
            self._use("route")
            return super()._complete(prompt, grammar=grammar, max_tokens=max_tokens, forced=forced)

    def _stream_text(self, prompt: str, kwargs: dict[str, Any]) -> Iterator[str]:
        with LOCK:
            self._use("write")
            with adapter_off(self.llm):
                yield from super()._stream_text(prompt, kwargs)


def tuned_chat_model(base: str, workspace: Any, **kwargs: Any) -> ChatTunedLlama:
    """The chat model for `local:<base>+tuned`.

    Raises:
        scratchlab.agent.tune.TuneError: no finished tune for `base` (the message says how to make one).
        scratchlab.models.weights.WeightsError: the base weights are missing.
    """
    adapter = tuned_adapter(workspace, base)
    meta = adapter.parent / TUNE_META
    try:  # tunes made before `TuneConfig.prompt` existed have none: they used the full catalogue
        prompt = json.loads(meta.read_text(encoding="utf-8")).get("config", {}).get("prompt", "catalogue")
    except (OSError, ValueError) as e:
        raise TuneError(
            f"{meta} is unreadable ({e}); tune again with `scratchlab agent tune --base {base}`"
        ) from e
    return ChatTunedLlama(model_path=str(gguf_path(base, workspace.dir("models"))), lora_path=str(adapter),
                          state_cache_dir=str(workspace.dir("models")), compact=prompt == "compact", **kwargs)  # fmt: skip
