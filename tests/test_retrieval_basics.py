"""Retrieval building blocks without the embedding model: chunking, loaders, BM25, RRF, metrics."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlab.retrieval.chunking import ChunkConfig, WhitespaceCounter, chunk_text, split_units
from scratchlab.retrieval.eval import Query, judge, load_queries, mrr_at, ndcg_at, recall_at
from scratchlab.retrieval.fusion import rrf
from scratchlab.retrieval.lexical import Analyzer, BM25Index
from scratchlab.retrieval.loaders import LoaderError, find_files, load_file

WS = WhitespaceCounter()


# ---- chunking ---------------------------------------------------------------------------------------
def test_chunk_spans_point_at_the_source_text():
    text = "First para sentence one. Sentence two here!\n\nSecond paragraph? Yes.\n  Indented line\n\n\nLast one."
    chunks = chunk_text(text, ChunkConfig(chunk_size=16, chunk_overlap=0), WS)
    assert chunks, "expected chunks"
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.line == text.count("\n", 0, c.start) + 1
    # all words are covered, in order, without overlap
    assert " ".join(" ".join(c.text.split()) for c in chunks) == " ".join(text.split())


def test_chunk_prefers_paragraph_breaks_and_respects_size():
    para1 = " ".join(f"alpha{i}." for i in range(10))  # 10 one-word sentences
    para2 = " ".join(f"beta{i}." for i in range(10))
    text = para1 + "\n\n" + para2
    chunks = chunk_text(text, ChunkConfig(chunk_size=16, chunk_overlap=0), WS)
    # 20 words, size 16: a sentence-greedy cut would end after beta5; the paragraph break wins
    assert chunks[0].text == para1
    assert chunks[1].text == para2
    assert all(c.n_tokens <= 16 for c in chunks)


def test_chunk_overlap_is_whole_trailing_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(12))  # 5 words each
    chunks = chunk_text(text, ChunkConfig(chunk_size=20, chunk_overlap=5), WS)
    assert len(chunks) >= 3
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end, "consecutive chunks should overlap"
        assert text[b.start : a.end].strip() == a.text.split(". ")[-1].strip(), (
            "overlap = last whole sentence"
        )
        assert b.start > a.start


def test_overlong_sentence_is_split_at_token_offsets():
    text = " ".join(f"w{i}" for i in range(50))  # one 50-word "sentence"
    chunks = chunk_text(text, ChunkConfig(chunk_size=16, chunk_overlap=0), WS)
    assert [c.n_tokens for c in chunks] == [16, 16, 16, 2]
    assert all(text[c.start : c.end] == c.text for c in chunks)


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab cd.!?\n\t Éé")), max_size=400),
    st.integers(16, 40),
    st.integers(0, 8),
)
def test_chunk_span_property(text, size, overlap):
    chunks = chunk_text(text, ChunkConfig(chunk_size=size, chunk_overlap=overlap), WS)
    for c in chunks:
        assert text[c.start : c.end] == c.text and c.text.strip()
        assert c.n_tokens <= size
    words = text.split()
    if words:
        assert chunks[0].text.split()[0] == words[0] and chunks[-1].text.split()[-1] == words[-1]
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_split_units_marks_paragraph_starts():
    units = split_units("A b. C d.\n\nE f.")
    assert [u.para_start for u in units] == [True, False, True]


def test_chunk_config_rejects_bad_values():
    with pytest.raises(ValueError, match="chunk_size"):
        ChunkConfig(chunk_size=4)
    with pytest.raises(ValueError, match="chunk_overlap"):
        ChunkConfig(chunk_size=64, chunk_overlap=60)


# ---- loaders ----------------------------------------------------------------------------------------
def _tiny_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (built by hand: objects, xref with correct offsets)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_loaders_text_html_pdf(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\nSome *markdown*.\n", encoding="utf-8")
    (tmp_path / "b.html").write_text(
        "<html><head><style>.x{}</style><script>alert(1)</script></head><body><h1>Head</h1><p>Para text.</p></body></html>"
    )
    (tmp_path / "c.pdf").write_bytes(_tiny_pdf("Hello from a PDF"))
    md = load_file(tmp_path / "a.md")
    assert md.text == "# Title\n\nSome *markdown*.\n" and md.kind == "text" and len(md.sha256) == 64
    html = load_file(tmp_path / "b.html")
    assert (
        "Para text." in html.text and "Head" in html.text and "alert" not in html.text and html.kind == "html"
    )
    pdf = load_file(tmp_path / "c.pdf")
    assert "Hello from a PDF" in pdf.text and pdf.kind == "pdf"


def test_loader_rejects_binary_empty_missing_and_unreadable(tmp_path, monkeypatch):
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(LoaderError, match="binary"):
        load_file(tmp_path / "blob.bin")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(LoaderError, match="no text"):
        load_file(tmp_path / "empty.txt")
    with pytest.raises(LoaderError, match="not a file"):
        load_file(tmp_path / "nope.txt")
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: simulate the permission error instead
        real = Path.read_bytes

        def deny(self):
            if self.name == "locked.txt":
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", deny)
    try:
        with pytest.raises(LoaderError, match="cannot read .*Permission denied"):
            load_file(locked)
    finally:
        locked.chmod(0o600)


def test_find_files_globs_hidden_and_empty_folder(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.md").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / "sub" / "c.py").write_text("c")
    (root / ".hidden" / "d.md").write_text("d")
    assert [d for _, d in find_files([root])] == ["docs/a.md", "docs/sub/b.txt", "docs/sub/c.py"]
    assert [d for _, d in find_files([root], include=["*.md", "*.txt"])] == ["docs/a.md", "docs/sub/b.txt"]
    assert [d for _, d in find_files([root], exclude=["sub/*"])] == ["docs/a.md"]
    assert [d for _, d in find_files([root / "a.md", root / "sub"])] == ["a.md", "sub/b.txt", "sub/c.py"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoaderError, match="no files"):
        find_files([tmp_path / "empty"])
    with pytest.raises(LoaderError, match="does not exist"):
        find_files([tmp_path / "missing"])


# ---- BM25 -----------------------------------------------------------------------------------------
def test_analyzer_lowercases_splits_unicode_and_drops_stopwords():
    assert Analyzer()("The Café-au-lait, naïve_test 42!") == ["café", "au", "lait", "naïve_test", "42"]


def test_bm25_ranks_matching_chunks_and_round_trips(tmp_path):
    texts = ["the cat sat on the mat", "dogs chase cats", "a quick brown fox", "cat cat cat food"]
    bm = BM25Index.build([10, 11, 12, 13], texts)
    scores, ids = bm.search("cat", k=10)
    assert list(ids) == [13, 10]  # "cats" is another term (no stemming); tf favours 13
    assert np.all(np.diff(scores) <= 0)
    assert len(bm.search("zebra", k=5)[1]) == 0
    bm.save(tmp_path / "bm")
    again = BM25Index.load(tmp_path / "bm")
    np.testing.assert_allclose(again.scores("cat food"), bm.scores("cat food"))


# ---- fusion -----------------------------------------------------------------------------------------
def test_rrf_hand_checked():
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]], rrf_k=1)
    # a: 1/2 + 1/3 = 0.8333; c: 1/4 + 1/2 = 0.75; b: 1/3; d: 1/4
    assert [i for i, _ in fused] == ["a", "c", "b", "d"]
    assert [round(s, 4) for _, s in fused] == [0.8333, 0.75, 0.3333, 0.25]
    assert rrf([["x", "y"], ["y", "x"]], rrf_k=60)[0][0] == "x"  # tie -> first appearance
    assert rrf([["a"], ["b"]], weights=[1.0, 2.0])[0][0] == "b"
    with pytest.raises(ValueError):
        rrf([["a"]], rrf_k=-1)


# ---- metrics ----------------------------------------------------------------------------------------
class _H:
    def __init__(self, doc_id, text=""):
        self.doc_id, self.text = doc_id, text


def test_metrics_hand_checked():
    flags = [False, True, False, True]
    assert recall_at(flags, 2, 1) == 0.0 and recall_at(flags, 2, 2) == 0.5 and recall_at(flags, 2, 4) == 1.0
    assert mrr_at(flags) == 0.5
    ideal = 1 + 1 / math.log2(3)
    assert ndcg_at(flags, 2) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert ndcg_at([True], 1) == 1.0 and mrr_at([False] * 12 + [True]) == 0.0


def test_judge_collapses_chunks_to_documents_and_matches_evidence():
    hits = [_H("wiki/x.txt"), _H("wiki/x.txt"), _H("wiki/y.txt")]
    flags, n = judge(Query("q", relevant=["y.txt"]), hits)
    assert flags == [False, True] and n == 1
    hits = [_H("d", "nothing here"), _H("d", "The  Answer is 42"), _H("d", "answer is 42 again")]
    flags, n = judge(Query("q", evidence=["answer is 42", "missing"]), hits)
    assert flags == [False, True, False] and n == 2


def test_load_queries_reports_bad_lines(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"query": "a", "relevant": ["x"]}\n\n{"query": "b", "evidence": "e"}\n')
    qs = load_queries(p)
    assert [q.query for q in qs] == ["a", "b"] and qs[1].evidence == ["e"]
    p.write_text('{"query": "a"}\n')
    with pytest.raises(ValueError, match=":1:"):
        load_queries(p)
    p.write_text("not json\n")
    with pytest.raises(ValueError, match="not JSON"):
        load_queries(p)


def test_weighted_rrf_by_hand():
    from scratchlab.retrieval.fusion import rrf

    # dense [1, 2], bm25 [2, 1], bm25 weighted 3, k=0: id 2 = 1/2 + 3/1 = 3.5, id 1 = 1/1 + 3/2 = 2.5
    fused = rrf([[1, 2], [2, 1]], rrf_k=0, weights=[1.0, 3.0])
    assert [i for i, _ in fused] == [2, 1]
    assert [round(s, 6) for _, s in fused] == [3.5, 2.5]
    assert [i for i, _ in rrf([[1, 2], [2, 1]], rrf_k=0)] == [1, 2]  # equal weights: tie, first seen wins
