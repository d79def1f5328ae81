"""The ONNX Runtime MiniLM encoder against the PyTorch sentence-transformers one (trusted reference)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scratchlab.retrieval.embeddings import get_embedder
from scratchlab.retrieval.onnx_embed import OnnxEmbedder, export_onnx, prune_stale_exports

TEXTS = ["short", "LoRA trains two low-rank matrices next to the frozen weight.",
         "The KV cache stores the keys and values of past tokens. " * 30, "BPE", "a b c d e f g"]  # fmt: skip


@pytest.fixture(scope="module")
def reference():
    return get_embedder(backend="torch").encode(TEXTS)


def test_fp32_export_matches_sentence_transformers_and_keeps_order(reference):
    emb = OnnxEmbedder(quantized=False)
    X = emb.encode(TEXTS)
    assert X.shape == (len(TEXTS), 384) and X.dtype == np.float32
    np.testing.assert_allclose(X, reference, atol=1e-4)  # padding, truncation at 256 and order agree
    np.testing.assert_allclose(emb.encode_query(TEXTS[1]), reference[1], atol=1e-4)


def test_int8_stays_close_and_export_is_cached(reference):
    emb = OnnxEmbedder(quantized=True)
    cos = (emb.encode(TEXTS) * reference).sum(1)
    assert cos.min() > 0.97, cos
    assert export_onnx() == emb.folder  # the second call finds the export, no re-export
    assert emb.encode([]).shape == (0, 384)


def test_token_embeddings_drop_special_tokens():
    emb = OnnxEmbedder()
    toks = emb.token_embeddings(["hello world", "a"])
    assert [t.shape for t in toks] == [(2, 384), (1, 384)]
    np.testing.assert_allclose(np.linalg.norm(toks[0], axis=1), 1.0, atol=1e-5)
    texts = ["a much longer passage about the key value cache of attention", "hello world", "a"]
    one_by_one = emb.token_embeddings(texts, batch_size=1)
    batched = emb.token_embeddings(texts, batch_size=8)  # sorted by length inside, returned in order
    for x, y in zip(
        one_by_one, batched, strict=True
    ):  # int8 activations are scaled per batch: close, not equal
        assert x.shape == y.shape and (x * y).sum(1).min() > 0.95
    cut = emb.token_embeddings(texts[:1], max_tokens=5)[0]  # [CLS] + 3 pieces + [SEP]
    assert cut.shape == (3, 384)


def test_stale_exports_of_the_same_model_are_deleted(tmp_path):
    def export(name, source):
        (tmp_path / name).mkdir()
        (tmp_path / name / "export.json").write_text(json.dumps({"source": source}))
        return tmp_path / name

    current = export("all-MiniLM-L6-v2-new000000000", "/models/minilm")
    stale = export("all-MiniLM-L6-v2-old000000000", "/models/minilm")
    other = export("all-MiniLM-L6-v2-cpy000000000", "/elsewhere/minilm")  # same name, other weights
    (tmp_path / ".all-MiniLM-L6-v2-tmp-x").mkdir()  # an export in progress has no export.json yet
    assert prune_stale_exports(current) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [current.name, other.name, ".all-MiniLM-L6-v2-tmp-x"]
    )


def test_backend_choice():
    assert get_embedder(backend="torch").backend == "torch"
    assert get_embedder().backend == "onnx-int8"
    with pytest.raises(ValueError, match="unknown embedding backend"):
        get_embedder(backend="tpu")
