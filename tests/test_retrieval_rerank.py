"""Rerankers: MaxSim by hand, the cross-encoder trainer on a toy set, the reorder contract."""

from __future__ import annotations

import json

import numpy as np

from scratchlab.retrieval.rerank import CrossEncoderReranker, MaxSimReranker, Reranker
from scratchlab.retrieval.rerank_train import TrainConfig, train_cross_encoder
from scratchlab.retrieval.search import Hit, rerank_pool


class _Tokens:
    """Token embeddings by hand: each word is a fixed unit vector."""

    VEC = {"kv": [1, 0, 0], "cache": [0, 1, 0], "bread": [0, 0, 1]}

    def token_embeddings(self, texts, threads=None, max_tokens=None):
        keep = (max_tokens or 10**6) - 2  # [CLS] and [SEP] count
        return [np.array([self.VEC[w] for w in t.split()[:keep] if w in self.VEC], np.float32) for t in texts]


def _hit(i, text, context=""):
    return Hit(i, f"d{i}", f"/d{i}", 0, len(text), 1, text, 0.0, context=context)


def test_maxsim_by_hand():
    rr = MaxSimReranker(_Tokens(), depth=3, threads=1)
    s = rr.scores("kv cache", ["bread bread", "kv bread", "cache kv"])
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0])  # mean over query tokens of the best match
    short = MaxSimReranker(_Tokens(), depth=3, threads=1, max_tokens=3)  # reads one word of each passage
    np.testing.assert_allclose(short.scores("kv cache", ["bread kv", "kv bread"]), [0.0, 0.5])


def test_rerank_reorders_and_reads_the_context_header():
    class Seen(Reranker):
        def scores(self, query, texts):
            self.texts = list(texts)
            return np.array([len(t) for t in texts], np.float32)

    rr = Seen()
    hits = rr.rerank("q", [_hit(1, "short"), _hit(2, "a longer text", context="g.md > Setup")])
    assert [h.chunk_id for h in hits] == [2, 1] and hits[0].score == len("g.md > Setup\na longer text")
    assert rr.texts[1] == "g.md > Setup\na longer text"


def test_cross_encoder_trains_a_few_steps_and_loads_as_reranker(tmp_path):
    pairs = [{"query": "what does the kv cache store", "passage": "The KV cache stores keys and values.", "label": 1},
             {"query": "what does the kv cache store", "passage": "Knead the dough, then bake it.", "label": 0},
             {"query": "how is bread made", "passage": "Knead the dough, then bake it.", "label": 1},
             {"query": "how is bread made", "passage": "The KV cache stores keys and values.", "label": 0}] * 2  # fmt: skip
    info = train_cross_encoder(pairs, tmp_path / "ce", TrainConfig(epochs=1, batch_size=4, max_length=32))
    assert info["steps"] == 2 and info["pairs"] == 8
    assert json.loads((tmp_path / "ce" / "train_config.json").read_text())["max_length"] == 32
    rr = CrossEncoderReranker(tmp_path / "ce", depth=2)
    assert rr.scores("kv cache", ["a", "b", "c"]).shape == (3,)


def test_get_reranker_specs(tmp_path):
    import pytest

    from scratchlab.retrieval.rerank import get_reranker

    assert isinstance(get_reranker("maxsim", _Tokens()), MaxSimReranker)
    with pytest.raises(ValueError, match="ONNX embedder"):
        get_reranker("maxsim", object())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_reranker(tmp_path / "nope")


def test_learner_question_files_name_the_query_question(tmp_path):
    from scratchlab.retrieval.eval import load_queries

    f = tmp_path / "q.jsonl"
    f.write_text(
        json.dumps({"id": "lq-1", "question": "what is stored?", "evidence": "keys and values"}) + "\n"
    )
    (q,) = load_queries(f)
    assert q.query == "what is stored?" and q.evidence == ["keys and values"] and q.qid == "lq-1"


def test_the_rerank_pool_keeps_the_dense_top_whatever_its_fused_rank():
    fused = [(i, 1.0 / (i + 1)) for i in range(50)]  # ids ranked 0..49
    pool = rerank_pool(fused, [44, 3], depth=6)
    assert [i for i, _ in pool] == [0, 1, 2, 3, 4, 44]  # 44 in, the fused 5th out, fused order kept
    assert rerank_pool(fused, [], depth=6) == fused[:6]
    assert rerank_pool(fused, [1, 2], depth=6) == fused[:6]  # already in the fused top: nothing moves
    assert rerank_pool(fused[:3], [2], depth=6) == fused[:3]  # fewer candidates than the depth
    assert [i for i, _ in rerank_pool(fused, [49, 48, 47], depth=2)] == [48, 49]  # the dense best first


def test_a_reranked_search_sees_the_dense_lists_best_passage(tmp_path, monkeypatch):
    """A passage only dense search finds (no query word in it) reaches the reranker although BM25's
    matches outrank it in the fusion."""
    from scratchlab.retrieval import search as search_mod
    from scratchlab.retrieval.embeddings import get_embedder
    from scratchlab.retrieval.index import DocumentIndex

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(30):
        (docs / f"boat{n}.txt").write_text(f"Boat {n} cast its fishing network near the harbour wall.\n")
    answer = "Quantization keeps each parameter in eight bits instead of thirty-two, a quarter of the RAM."
    (docs / "answer.txt").write_text(answer + "\n")
    idx = DocumentIndex.create(tmp_path / "idx", embedder=get_embedder())
    idx.ingest([docs])
    query = "how can I make my neural network take less memory?"
    assert idx.search(query, k=1, mode="dense")[0].text.strip() == answer

    class Seen(Reranker):
        depth = 5

        def scores(self, query, texts):
            self.texts = list(texts)
            return np.zeros(len(texts), np.float32)

    seen = Seen()
    idx.search(query, k=5, mode="hybrid", reranker=seen)
    assert len(seen.texts) == 5 and any(answer in t for t in seen.texts)
    monkeypatch.setattr(search_mod, "DENSE_SHARE", 0.0)  # the fused top 5 alone: all BM25 matches
    idx.search(query, k=5, mode="hybrid", reranker=seen)
    assert len(seen.texts) == 5 and not any(answer in t for t in seen.texts)
