"""Grammar-constrained greedy decoding that checks the grammar only on the top candidates.

llama-cpp-python applies a GBNF grammar to the whole vocabulary (151,936 tokens for Qwen2.5) before
every sampled token, which costs more than the forward pass of a 0.5B model on a CPU. Greedy decoding
only needs the best token the grammar allows, so, like llama.cpp's own `common_sampler` (which samples
first and applies the grammar to the full vocabulary only when the sampled token is rejected), this
checks the `TOP_N` highest logits first and falls back to the full vocabulary only when none of them
is allowed. The result is identical to full-vocabulary constrained greedy decoding.

    text = constrained_greedy(llm, prompt, 'root ::= ("yes" | "no")', max_tokens=4)
"""

from __future__ import annotations

import ctypes

import numpy as np

from scratchlab.lab import cancel

TOP_N = 40


class GrammarError(ValueError):
    """llama.cpp rejected the GBNF grammar text."""


def _check(smpl, ids: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits of `ids` after the grammar sampler (-inf where the grammar forbids the token)."""
    import llama_cpp

    n = len(ids)
    arr = (llama_cpp.llama_token_data * n)()
    for i, (t, lg) in enumerate(zip(ids.tolist(), logits.tolist(), strict=True)):
        arr[i].id, arr[i].logit, arr[i].p = t, lg, 0.0
    cur = llama_cpp.llama_token_data_array(data=arr, size=n, selected=-1, sorted=False)
    llama_cpp.llama_sampler_apply(smpl, ctypes.byref(cur))
    return np.array([arr[i].logit for i in range(cur.size)], dtype=np.float32), np.array(
        [arr[i].id for i in range(cur.size)], dtype=np.int64
    )


def _full_check(smpl, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import llama_cpp

    n = len(logits)
    arr = (llama_cpp.llama_token_data * n)()
    buf = np.frombuffer(arr, dtype=np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)]))
    buf["id"] = np.arange(n, dtype=np.int32)
    buf["logit"] = logits
    buf["p"] = 0.0
    cur = llama_cpp.llama_token_data_array(data=arr, size=n, selected=-1, sorted=False)
    llama_cpp.llama_sampler_apply(smpl, ctypes.byref(cur))
    out = np.frombuffer(arr, dtype=buf.dtype, count=cur.size)
    return out["logit"].copy(), out["id"].astype(np.int64)


def prefill(llm, prompt: str) -> None:
    """Evaluate `prompt` in `llm`, reusing the longest cached prefix (as llama-cpp-python does)."""
    tokens = llm.tokenize(prompt.encode("utf-8"), special=True)
    cached = llm.input_ids[: llm.n_tokens].tolist()
    n = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        n += 1
    n = min(n, len(tokens) - 1)  # always evaluate at least one token to get fresh logits
    llm.n_tokens = n
    llm.eval(tokens[n:])


def constrained_greedy(llm, prompt: str, grammar: str, max_tokens: int, top_n: int = TOP_N) -> str:
    """Greedy continuation of `prompt` under a GBNF `grammar` (root rule `root`).

    Args:
        llm: a `llama_cpp.Llama`.
        prompt: text to continue (special tokens such as <|im_start|> are parsed).
        grammar: GBNF text.
        max_tokens: generation cap in tokens.
        top_n: candidates checked against the grammar before falling back to the full vocabulary.

    Returns:
        The generated text (without the end-of-generation token).

    Raises:
        GrammarError: the grammar does not parse.
    """
    import llama_cpp

    vocab = llm._model.vocab
    smpl = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
    if not smpl:
        raise GrammarError(f"llama.cpp could not parse the grammar:\n{grammar[:500]}")
    n_vocab = llm.n_vocab()
    out: list[int] = []
    try:
        prefill(llm, prompt)
        for _ in range(max_tokens):
            cancel.check()  # Ctrl-C in the REPL: stop at the next token (raises TurnCancelled)
            logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,))
            top = np.argpartition(-logits, top_n)[:top_n]
            allowed, ids = _check(smpl, top, logits[top])
            if not np.isfinite(allowed).any():
                allowed, ids = _full_check(smpl, logits)
                if not np.isfinite(allowed).any():
                    break  # the grammar admits nothing more
            tok = int(ids[int(np.argmax(allowed))])
            if llama_cpp.llama_vocab_is_eog(vocab, tok):
                break
            llama_cpp.llama_sampler_accept(smpl, tok)
            out.append(tok)
            llm.eval([tok])
    finally:
        llama_cpp.llama_sampler_free(smpl)
    return llm.detokenize(out).decode("utf-8", errors="replace")


def choose(
    llm, prompt: str, options: dict[str, list[int]], prior: dict[str, float], weight: float = 1.0
) -> str:
    """The option the model and a prior agree on best, decoded token by token over the options' token trie.

    At each step the candidates are the next tokens of the options still in play; each is scored by
    the model's log-probability of the token plus `weight` times the log of the prior mass of the
    options that continue with it. Decoding stops as soon as one option is left, so a choice among
    tools whose names start differently costs one forward pass.

    Args:
        llm: a `llama_cpp.Llama`.
        prompt: text ending where the option starts (e.g. `{"action": "`).
        options: {option: its token ids}.
        prior: {option: probability}; missing options count as a small floor.
        weight: how much the prior counts against the model (0: the model alone).

    Returns:
        The chosen option.
    """
    live = dict(options)
    prefill(llm, prompt)
    n_vocab = llm.n_vocab()
    pos = 0
    while len(live) > 1:
        done = [o for o, ids in live.items() if len(ids) <= pos]
        if done:
            return max(done, key=lambda o: prior.get(o, 0.0))
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,)).astype(np.float64)
        m = logits.max()
        logz = m + np.log(np.exp(logits - m).sum())
        groups: dict[int, list[str]] = {}
        for o, ids in live.items():
            groups.setdefault(ids[pos], []).append(o)
        best = max(
            groups,
            key=lambda t: (
                (logits[t] - logz) + weight * np.log(max(sum(prior.get(o, 0.0) for o in groups[t]), 1e-6))
            ),
        )
        live = {o: live[o] for o in groups[best]}
        if len(live) > 1:
            llm.eval([best])
        pos += 1
    return next(iter(live))
