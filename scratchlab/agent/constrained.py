"""Grammar-constrained greedy decoding that checks the grammar only on the top candidates.

llama-cpp-python applies a GBNF grammar to the whole vocabulary (151,936 tokens for Qwen2.5) before
every sampled token, which costs more than the forward pass of a 0.5B model on a CPU. Greedy decoding
only needs the best token the grammar allows, so, like llama.cpp's own `common_sampler` (which samples
first and applies the grammar to the full vocabulary only when the sampled token is rejected), this
checks the `TOP_N` highest logits first and falls back to the full vocabulary only when none of them
is allowed. The result is identical to full-vocabulary constrained greedy decoding.

    text = constrained_greedy(llm, prompt, 'root ::= ("yes" | "no")', max_tokens=4)

Where the text so far leaves only one way on (the rest of the only key that starts with what the
model wrote, the rest of the only enum value), `forced` names it and the tokens are evaluated in one
batch instead of one forward pass each: "jump-forward" decoding, as in SGLang's compressed finite
state machines (Zheng et al. 2024, "SGLang: Efficient Execution of Structured Language Model
Programs"). On a CPU a batch costs far less than its tokens one at a time (with the 1.5B on 2 cores,
4 tokens about 80 ms against 38 ms for one), so the argument object's keys and the tails of its
grounded numbers come cheap. llama.cpp's batched kernels round a little differently from its
one-token ones, so where two choices are nearly tied a later token can differ from plain decoding.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence

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


def constrained_greedy(
    llm,
    prompt: str,
    grammar: str,
    max_tokens: int,
    top_n: int = TOP_N,
    forced: Callable[[str], str] | None = None,
) -> str:
    """Greedy continuation of `prompt` under a GBNF `grammar` (root rule `root`).

    Args:
        llm: a `llama_cpp.Llama`.
        prompt: text to continue (special tokens such as <|im_start|> are parsed).
        grammar: GBNF text.
        max_tokens: generation cap in tokens.
        top_n: candidates checked against the grammar before falling back to the full vocabulary.
        forced: text so far -> the only continuation the grammar leaves ("" when there is a choice),
            e.g. `json_object_forcing`. Its tokens are checked against the grammar one by one (a
            token the grammar refuses ends the jump) and evaluated in one batch.

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
        while len(out) < max_tokens:
            cancel.check()  # Ctrl-C in the REPL: stop at the next token (raises TurnCancelled)
            ahead = forced(llm.detokenize(out).decode("utf-8", errors="replace")) if forced else ""
            if ahead and (jump := _accept_all(llm, smpl, ahead, max_tokens - len(out))):
                out.extend(jump)
                llm.eval(jump)
                continue
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


def _accept_all(llm, smpl, text: str, limit: int) -> list[int]:
    """The tokens of `text` the grammar accepts in turn (up to the first it refuses), accepted."""
    import llama_cpp

    taken: list[int] = []
    for tok in llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)[:limit]:
        allowed, _ = _check(smpl, np.array([tok], dtype=np.int64), np.zeros(1, dtype=np.float32))
        if not np.isfinite(allowed).any():
            break
        llama_cpp.llama_sampler_accept(smpl, tok)
        taken.append(tok)
    return taken


WHITESPACE = " \t\n\r"


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in WHITESPACE:
        i += 1
    return i


def _value_end(text: str, i: int) -> int | None:
    """Index just past the JSON value starting at `text[i]`, or None while it may still go on."""
    if text[i] not in '"[{':  # a number, true, false or null: at the end it may have more to come
        j = i
        while j < len(text) and text[j] not in WHITESPACE + ",}]":
            j += 1
        return j if j < len(text) else None
    depth, in_str, j = 0, False, i
    while j < len(text):
        c = text[j]
        j += 1
        if in_str:
            if c == "\\":
                j += 1
            in_str = c != '"'
            if not in_str and depth == 0:
                return j
            continue
        if c == '"':
            in_str = True
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return j
    return None


def _only_way(partial: str, options: Sequence[str]) -> str | None:
    """The rest of the one option that starts with `partial` ("" if it is complete); None if several
    or none do."""
    fits = [o for o in options if o.startswith(partial)]
    return fits[0][len(partial) :] if len(fits) == 1 else None


def _list_tail(written: str) -> tuple[list[str], str]:
    """The complete string items of a JSON list being written, and what follows the last of them
    (the open item, or "" / whitespace between items)."""
    items, i = [], _skip_space(written, 1)
    while i < len(written) and written[i] == '"':
        end = _value_end(written, i)
        if end is None:
            return items, written[i:]
        items.append(written[i + 1 : end - 1])
        i = _skip_space(written, end)
        if i < len(written) and written[i] == ",":
            i = _skip_space(written, i + 1)
        elif i < len(written):
            return items, written[i:]
    return items, written[i:]


def _dooming(written: str, doomed: Callable[[str, bool], bool]) -> str:
    """What closes a string value, or a list of strings, that `doomed` says will be dropped: the
    quote of an open string, the bracket after a complete item; "" otherwise."""
    if written[:1] == '"':
        return '"' if doomed(written[1:], False) else ""
    if written[:1] != "[":
        return ""
    items, tail = _list_tail(written)
    lost = any(doomed(item, True) for item in items)  # the list is dropped: end it
    if tail[:1] == '"':
        return '"]' if lost or doomed(tail[1:], False) else ""
    if lost and not tail.strip():
        return '""]' if written.rstrip().endswith(",") else "]"
    return ""


def json_object_forcing(
    keys: Sequence[str],
    values: dict[str, Sequence[str]],
    verbatim: dict[str, str] | None = None,
    doomed: dict[str, Callable[[str, bool], bool]] | None = None,
    leading: str = "",
) -> Callable[[str], str]:
    """A `forced` function for one flat JSON object (a tool's arguments).

    Args:
        keys: every key the grammar may write.
        values: {key: the JSON texts its value may take} for keys with a closed set of values (an
            enum, null, the spellings of a grounded number); keys missing here take free values.
        verbatim: {key: lower-case text} for string keys whose value is kept afterwards only if the
            text holds it (a new artifact's name the user spelled out): once what the model wrote of
            the value cannot occur there, the string is closed, since the rest would be dropped.
        doomed: {key: (string so far, whether it is complete) -> True when the value will be dropped
            afterwards}, for free strings and lists of them: an open string that is doomed is closed,
            and a list that holds a doomed item is ended (one dropped item drops the list).
        leading: text the object starts with whatever the model would write (the values a request
            sets, `router.fixed_prefix`), forced while the text so far is a part of it.

    Returns:
        text so far -> the rest of the only key that fits what the model started (with its colon),
        the rest of the only value that fits, or the quote that closes a doomed string; "" where
        the model has a choice to make.
    """
    verbatim, doomed = verbatim or {}, doomed or {}

    def forced(text: str) -> str:
        if len(text) < len(leading) and leading.startswith(text):
            return leading[len(text) :]
        i = _skip_space(text, 0)
        if i == len(text) or text[i] != "{":
            return ""
        i, done = _skip_space(text, i + 1), set()
        while i < len(text):
            if text[i] != '"':
                return ""
            close = text.find('"', i + 1)
            if close < 0:  # inside a key: the rest of the only unwritten key that starts this way
                written = text[i + 1 :]
                rest = _only_way(written, [k for k in keys if k not in done])
                return "" if rest is None else rest + '":'
            key = text[i + 1 : close]
            i = _skip_space(text, close + 1)
            if i == len(text):
                return ":"
            if text[i] != ":":
                return ""
            i = _skip_space(text, i + 1)
            if i == len(text):
                return ""  # the value's first token is the model's choice (null or a value)
            end = _value_end(text, i)
            if end is None:
                written = text[i:]
                if key in verbatim and written[:1] == '"' and written[1:].lower() not in verbatim[key]:
                    return '"'
                if key in doomed and (close := _dooming(written, doomed[key])):
                    return close
                return _only_way(written, values.get(key, ())) or ""
            done.add(key)
            i = _skip_space(text, end)
            if i == len(text) or text[i] != ",":
                return ""
            i = _skip_space(text, i + 1)
        return ""

    return forced


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
