"""Second-stage rerankers: a cross-encoder, late interaction (MaxSim), and LLM log-prob relevance.

    from scratchlab.retrieval.rerank import CrossEncoderReranker, MaxSimReranker, LLMReranker
    rr = CrossEncoderReranker(workspace / "models" / "rerank-minilm")  # any local CrossEncoder folder
    hits = index.search(query, k=5, reranker=rr)                      # top `depth` fused hits rescored

Each reranker rescores the first `depth` candidates of the first-stage ranking and reorders them,
reading each chunk as its context header plus text (`chunking.embed_text`):
- `CrossEncoderReranker`: (query, passage) read together by a BERT with a relevance head, one forward
  pass per pair (Nogueira & Cho 2019, "Passage Re-ranking with BERT"). No cross-encoder ships on
  PyPI; `rerank_train` fine-tunes one from the shipped MiniLM bi-encoder weights.
- `MaxSimReranker`: late interaction over MiniLM token embeddings: score = mean over query tokens of
  the best cosine with any passage token (Khattab & Zaharia 2020, ColBERT), no training needed.
- `LLMReranker`: the local chat model's log-odds of "yes" to "does the passage answer the question?"
  (Nogueira et al. 2020, monoT5 / "Document Ranking with a Pretrained Sequence-to-Sequence Model").
  The instruction and question are evaluated once; each passage continues that shared prefix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scratchlab.retrieval.chunking import embed_text

DEFAULT_RERANK_DEPTH = 20  # first-stage candidates rescored
DEFAULT_MAX_LENGTH = 256  # tokens of (query, passage) per pair (MiniLM's window)
MAXSIM_TOKENS = 256  # word pieces of a passage MaxSim reads (benchmarks/retrieval_maxsim.py)
LLM_PASSAGE_CHARS = 1200  # a passage is cut to this many characters for the chat model
LLM_PREFIX = ("<|im_start|>system\nYou judge whether a passage answers a question. Reply yes or no.<|im_end|>\n"
              "<|im_start|>user\nQuestion: {query}\n\nPassage: ")  # fmt: skip
LLM_SUFFIX = "\n\nDoes the passage answer the question?<|im_end|>\n<|im_start|>assistant\n"


class Reranker:
    """Base: `scores(query, texts)` -> (N,) float32, higher is more relevant; `rerank` reorders hits."""

    depth: int = DEFAULT_RERANK_DEPTH

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def rerank(self, query: str, hits: list) -> list:
        """Return `hits` reordered by score (stored in `hit.score`), best first."""
        if not hits:
            return hits
        s = self.scores(query, [embed_text(getattr(h, "context", ""), h.text) for h in hits])
        order = np.argsort(-s, kind="stable")
        out = []
        for i in order:
            hits[i].score = float(s[i])
            out.append(hits[i])
        return out


class CrossEncoderReranker(Reranker):
    """Rescore hits with a local sentence-transformers CrossEncoder.

    Args:
        model_path: a local CrossEncoder folder, or a loaded `CrossEncoder`.
        depth: how many first-stage candidates to rescore.
        batch_size: pairs per forward pass.

    Raises:
        FileNotFoundError: `model_path` is not a folder.
    """

    def __init__(
        self, model_path, depth: int = DEFAULT_RERANK_DEPTH, batch_size: int = 32, device: str = "cpu"
    ):
        if isinstance(model_path, str | os.PathLike):
            if not Path(model_path).is_dir():
                raise FileNotFoundError(f"cross-encoder folder {model_path} does not exist; give a local model "
                                        "folder (train one with `python -m scratchlab.retrieval.rerank_train`)")  # fmt: skip
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import CrossEncoder  # heavy (torch); loaded only when reranking

            trained = Path(model_path) / "train_config.json"  # written by rerank_train: read as trained
            max_length = json.loads(trained.read_text()).get("max_length") if trained.is_file() else None
            self.model = CrossEncoder(
                str(model_path), device=device, max_length=max_length or DEFAULT_MAX_LENGTH
            )
        else:
            self.model = model_path
        self.depth = int(depth)
        self.batch_size = batch_size

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(len(texts),) float32 relevance logits (higher is better)."""
        if not texts:
            return np.zeros(0, np.float32)
        out = self.model.predict(
            [(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False
        )
        out = np.asarray(out, dtype=np.float32)
        return out.reshape(len(texts), -1)[:, -1]  # one logit, or the last ("relevant") class


class MaxSimReranker(Reranker):
    """Late interaction (ColBERT MaxSim) over the MiniLM token embeddings of an `OnnxEmbedder`.

    Args:
        embedder: has `token_embeddings(texts, threads)` -> list of (T_i, dim) normalized arrays.
        depth: how many first-stage candidates to rescore.
        threads: ONNX Runtime threads for the passage batch (default: all cores).
        max_tokens: word pieces read per passage (`MAXSIM_TOKENS`; the query is read whole).
    """

    def __init__(
        self,
        embedder,
        depth: int = DEFAULT_RERANK_DEPTH,
        threads: int | None = None,
        max_tokens: int | None = None,
    ):
        self.embedder = embedder
        self.depth = int(depth)
        self.threads = threads or os.cpu_count() or 1
        self.max_tokens = max_tokens or MAXSIM_TOKENS

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(len(texts),) float32: mean over query tokens of the max cosine with the passage's tokens."""
        if not texts:
            return np.zeros(0, np.float32)
        q = self.embedder.token_embeddings([query], threads=1)[0]  # (Tq, C)
        passages = self.embedder.token_embeddings(
            list(texts), threads=self.threads, max_tokens=self.max_tokens
        )
        return np.array([float((q @ p.T).max(1).mean()) if len(p) else 0.0 for p in passages], np.float32)


class LLMReranker(Reranker):
    """Relevance as the chat model's log-odds of "yes" over "no", with a shared evaluated prefix.

    Args:
        llm: a `llama_cpp.Llama` (Qwen chat template) loaded with enough `n_ctx` for one passage.
        depth: how many first-stage candidates to rescore.
    """

    def __init__(self, llm, depth: int = 10):
        self.llm = llm
        self.depth = int(depth)
        self._yes = [self._token(w) for w in ("yes", "Yes")]
        self._no = [self._token(w) for w in ("no", "No")]

    def _token(self, word: str) -> int:
        ids = self.llm.tokenize(word.encode(), add_bos=False, special=False)
        return ids[0]

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(len(texts),) float32: logsumexp(yes logits) - logsumexp(no logits) after each passage."""
        llm = self.llm
        prefix = llm.tokenize(LLM_PREFIX.format(query=query).encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(prefix)
        out = []
        for t in texts:
            llm.n_tokens = len(prefix)  # eval() drops the KV cache past this point: the prefix is reused
            llm.eval(llm.tokenize((t[:LLM_PASSAGE_CHARS] + LLM_SUFFIX).encode(), add_bos=False, special=True))
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))  # last position
            yes, no = np.logaddexp.reduce(logits[self._yes]), np.logaddexp.reduce(logits[self._no])
            out.append(float(yes - no))
        return np.array(out, np.float32)


def get_reranker(spec: str | os.PathLike, embedder=None, depth: int = DEFAULT_RERANK_DEPTH) -> Reranker:
    """A reranker from a CLI-style spec: "maxsim" (needs an embedder with `token_embeddings`, i.e. the ONNX
    one) or the folder of a CrossEncoder.

    Raises:
        ValueError: "maxsim" with an embedder that has no token embeddings.
        FileNotFoundError: a folder that does not exist.
    """
    if str(spec).lower() == "maxsim":
        if embedder is None or not hasattr(embedder, "token_embeddings"):
            raise ValueError(
                "maxsim reranking needs the ONNX embedder (SCRATCHLAB_EMBED_BACKEND=onnx-int8 or onnx-fp32)"
            )
        return MaxSimReranker(embedder, depth=depth)
    return CrossEncoderReranker(spec, depth=depth)
