"""Test doubles for the agent's routing: a bag-of-words embedder for the example bank, and a local chat
model whose action choice and argument JSON are scripted (no llama.cpp)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from scratchlab.agent import router
from scratchlab.agent.bank import Bank, Example, tokens
from scratchlab.agent.local_chat import ChatLocalLlama, lab_state_last

DIM = 256


class WordEmbedder:
    """Hashes each word to a dimension: requests that share words are near (cosine)."""

    def encode(self, texts):
        return np.stack([self.encode_query(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def encode_query(self, text):
        v = np.zeros(DIM, np.float32)
        for w in tokens(text):
            v[int(hashlib.md5(w.encode()).hexdigest(), 16) % DIM] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v


def bank(*rows: tuple) -> Bank:
    """A bank from (request, action[, args[, flags]]) tuples, on the word embedder."""
    exs = []
    for i, row in enumerate(rows):
        req, action, args, flags = (*row, {}, {})[:4]
        exs.append(Example(id=f"ex-{i}", request=req, action=action, args=args, **flags))
    return Bank(exs, embedder=WordEmbedder())


class ScriptedLocal(ChatLocalLlama):
    """The model's part is scripted: `choice` picks the action (default: the prior's best), `args` gives
    the argument JSON per tool, answers are `reply`."""

    args: dict[str, dict] = {}
    reply: str = "Done."
    choice: str | None = None
    prompts: list[str] = []

    def _fit(self, messages):
        return router.render_chatml(lab_state_last(messages)) + f"{router.IM_START}assistant\n"

    def warm_start(self, system_prefix):
        pass

    def _fit_threads(self):
        pass

    def _answer_stream(self, prompt, max_tokens=None):
        self.prompts.append(prompt)
        return iter([self.reply])

    def _choose(self, prompt, names, prior):
        if self.choice in names:
            return self.choice
        return max(names, key=lambda n: prior.get(n, 0.0))

    def _complete(self, prompt, *, grammar, max_tokens=64, forced=None):
        action = prompt.rsplit('{"action": "', 1)[1].split('"', 1)[0]
        return json.dumps(self.args.get(action, {}))


def local(bank_: Bank, **kw) -> ScriptedLocal:
    m = ScriptedLocal(model_path="unused.gguf", **kw)
    m._bank = bank_
    return m
