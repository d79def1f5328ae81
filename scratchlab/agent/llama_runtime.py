"""The llama.cpp runtime under `ChatLocalLlama`: one shared `Llama` per model file, the threads it may
use on a busy machine, its saved prompt states, and loop detection for small models' output.

    llm = load_llama("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")   # cached per (file, n_ctx)
    IdleCores()()                                                   # cores other processes leave idle
    save_state(llm, path); load_state(llm, path)                   # the KV cache after the fixed prompt
    with adapter_off(llm): llm.eval(prefix_tokens)                 # a LoRA model's prefix, as its base
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_N_CTX = 8192
ENV_THREADS = "SCRATCHLAB_LLAMA_THREADS"  # llama.cpp threads; default: the idle cores (at most 8)
LOOP_WINDOW = 40  # characters; see `is_looping`
LOAD_WINDOW_S = 0.5  # a decision within this long of the last one reuses its thread count
MAX_STATE_FILES = 3  # saved prompt states kept per model (~60 MB each for the 1.5B); the oldest go
LOCK = threading.RLock()  # one llama.cpp context: one caller at a time
_LLAMAS: dict[tuple, Any] = {}


def load_llama(
    model_path: str, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None, lora_path: str | None = None
):
    """One shared `llama_cpp.Llama` per (file, n_ctx, LoRA adapter); `lora_path` is a GGUF LoRA adapter
    llama.cpp applies over the base at run time (`scratchlab.agent.tune`).

    Raises:
        FileNotFoundError: the .gguf does not exist.
        RuntimeError: llama.cpp could not load it (corrupt or unsupported file).
    """
    key = (str(model_path), n_ctx) if not lora_path else (str(model_path), n_ctx, str(lora_path))
    with LOCK:
        if key not in _LLAMAS:
            if not Path(model_path).is_file():
                raise FileNotFoundError(f"model file {model_path} not found")
            from llama_cpp import Llama

            try:
                with _quiet_stderr() if lora_path else contextlib.nullcontext():  # per-tensor adapter notes
                    _LLAMAS[key] = Llama(
                        model_path=str(model_path),
                        n_ctx=n_ctx,
                        n_threads=n_threads
                        or int(os.environ.get(ENV_THREADS, 0))
                        or max(1, min(os.cpu_count() or 2, 8)),
                        n_batch=512,
                        verbose=False,
                        **({"lora_path": str(lora_path)} if lora_path else {}),
                    )
            except (ValueError, RuntimeError) as e:
                raise RuntimeError(
                    f"llama.cpp could not load {model_path} ({e}); the file may be corrupt: delete it and "
                    "scratchlab will re-assemble it from the installed weights packages"
                ) from e
        return _LLAMAS[key]


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null meanwhile: llama.cpp writes a line per LoRA tensor it cannot
    repack, whatever `verbose` says, straight into the REPL's screen."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):  # llama-cpp-python's log
            os.dup2(null.fileno(), 2)  # llama.cpp's own
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def adapter_off(llm: Any):
    """Evaluate with the base alone: the `Llama`'s LoRA adapter (`lora_path`) is detached, then put back.

    The KV cache keeps what was computed meanwhile, so a prompt prefix evaluated here holds the base's
    keys and values, as the router tune trained it (`scratchlab.training.lora_prefix`). A `Llama`
    without an adapter is left alone.
    """
    import llama_cpp

    adapter = getattr(llm, "_lora_adapter", None)
    if adapter is None:
        yield llm
        return
    llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, None, 0, None)
    try:
        yield llm
    finally:
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(llm.lora_scale)
        if llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, adapters, 1, scales):
            raise RuntimeError("llama.cpp could not put the LoRA adapter back")


class IdleCores:
    """How many cores other processes leave idle, measured since the previous call.

    llama.cpp's worker threads spin-wait at every barrier of a forward pass, so a thread that shares
    its core with another busy process stalls the others: with a training job on one of 2 cores, the
    1.5B decoded a token in 2.2 s with 2 threads and in 0.2 s with 1 (`n_threads` 2 vs 1, same load).
    This process's own CPU time is left out, so a conversation does not slow itself down.
    """

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process()
        self._t, self._busy, self._own = time.monotonic(), self._total_busy(), self._own_cpu()
        self._last = os.cpu_count() or 1

    def _total_busy(self) -> float:
        t = self._psutil.cpu_times()
        return (
            t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        )

    def _own_cpu(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def __call__(self) -> int:
        """Idle cores (at least 1), averaged over the time since the last call."""
        now = time.monotonic()
        if now - self._t < LOAD_WINDOW_S:
            return self._last
        busy, own = self._total_busy(), self._own_cpu()
        others = max(0.0, (busy - self._busy) - (own - self._own)) / (now - self._t)
        self._t, self._busy, self._own = now, busy, own
        cpus = os.cpu_count() or 1
        self._last = max(1, min(cpus, int(cpus - others + 0.5)))
        return self._last


def is_looping(text: str, window: int = LOOP_WINDOW) -> bool:
    """True when the last `window` characters already occurred twice before (a degenerate loop)."""
    if len(text) < 3 * window:
        return False
    tail = text[-window:]
    return text[:-window].count(tail) >= 2


def trim_loop(text: str, window: int = LOOP_WINDOW) -> str:
    """`text` up to the end of the first copy of a repeated tail (see `is_looping`); else `text`.

    Cuts at a line break where there is one, so code keeps whole lines.
    """
    if not is_looping(text, window):
        return text
    first = text.find(text[-window:])
    cut = text.rfind("\n", 0, first + window)
    return text[: cut if cut > 0 else first + window]


def prune_states(folder: Path, prefix: str, keep: Path) -> None:
    """Delete all but the newest MAX_STATE_FILES saved states of one model (a new prompt or tool list
    makes a new file; old ones would pile up)."""
    files = sorted(folder.glob(f"{prefix}*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [f for f in files if f != keep][MAX_STATE_FILES - 1 :]:
        old.unlink(missing_ok=True)


def save_state(llm, path: Path) -> None:
    import numpy as np

    from scratchlab.lab.atomic import atomic_path

    st = llm.save_state()
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                input_ids=np.asarray(st.input_ids),
                n_tokens=np.int64(st.n_tokens),
                llama_state=np.frombuffer(bytes(st.llama_state), dtype=np.uint8),
                llama_state_size=np.int64(st.llama_state_size),
                seed=np.int64(st.seed),
            )


def load_state(llm, path: Path) -> bool:
    import numpy as np
    from llama_cpp import LlamaState

    try:
        with np.load(path) as z:
            n = int(z["n_tokens"])
            st = LlamaState(
                input_ids=z["input_ids"].copy(),
                scores=llm.scores[:n, :].copy(),  # logits are recomputed: only the shape matters
                n_tokens=n,
                llama_state=z["llama_state"].tobytes(),
                llama_state_size=int(z["llama_state_size"]),
                seed=int(z["seed"]),
            )
        llm.load_state(st)
        return True
    except Exception:  # a stale or truncated cache file: recompute
        path.unlink(missing_ok=True)
        return False


def llama_set_n_threads(ctx: Any, n_threads: int, n_threads_batch: int) -> None:
    """Set a llama.cpp context's decode and batch thread counts (takes effect at the next eval)."""
    import llama_cpp  # lazy: a compiled extension, loaded only with a local model

    llama_cpp.llama_set_n_threads(ctx, n_threads, n_threads_batch)
