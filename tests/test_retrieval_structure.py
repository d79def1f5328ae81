"""Structure-aware chunking (chunkers 2 and 3): sections, context headers, atomic code blocks and tables."""

from __future__ import annotations

import json
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlab.retrieval.chunking import CHUNKER_VERSION, ChunkConfig, WhitespaceCounter, chunk_sections
from scratchlab.retrieval.loaders import load_file
from scratchlab.retrieval.structure import parse_sections, plain_title

GUIDE = """# KV cache guide

Intro sentence about caching keys.

## What the cache stores

The cache stores the keys and values of every past token. Later steps reuse them.

```python
def step(x):
    # a comment that looks like a heading
    k, v = proj(x)
    cache.append((k, v))
    return attend(x, cache)
```

| layer | frozen |
|---|---|
| embeddings | yes |
| blocks 0-5 | yes |

## Results
Setext title
------------
The model reached a loss of 1.23.
"""


def test_parse_sections_finds_the_heading_trail_and_block_kinds():
    secs = parse_sections(GUIDE)
    paths = [s.path for s in secs]
    assert paths == [("KV cache guide",), ("KV cache guide", "What the cache stores"),
                     ("KV cache guide", "Results"), ("KV cache guide", "Setext title")]  # fmt: skip
    kinds = [b.kind for b in secs[1].blocks]
    assert kinds == ["heading", "text", "code", "table"]
    code = next(b for b in secs[1].blocks if b.kind == "code")
    assert GUIDE[code.start : code.end].startswith("```python") and GUIDE[code.start : code.end].endswith(
        "```"
    )


def test_chunks_carry_headers_never_cross_sections_and_keep_code_whole():
    counter = WhitespaceCounter()
    chunks = chunk_sections(GUIDE, "guide.md", ChunkConfig(24, 4), counter)
    assert all(GUIDE[c.start : c.end] == c.text for c in chunks)
    assert {c.context for c in chunks} == {
        "guide.md > KV cache guide",
        "guide.md > KV cache guide > What the cache stores",
        "guide.md > KV cache guide > Setext title",
    }  # the heading-only "Results" section adds no chunk of its own
    code = GUIDE[GUIDE.index("```python") : GUIDE.index("cache)\n```") + len("cache)\n```")]
    assert any(code in c.text for c in chunks), "the fenced block (longer than chunk_size) was split"
    table = GUIDE[GUIDE.index("| layer") : GUIDE.index("| yes |\n\n") + len("| yes |")]
    assert any(table in c.text for c in chunks)
    assert [c.line for c in chunks][0] == 1
    loss = next(c for c in chunks if "1.23" in c.text)
    assert loss.line == GUIDE[: loss.start].count("\n") + 1


def test_plain_code_files_are_one_section_named_by_the_file():
    src = "# not a heading in python\nx = 1\n\ndef f():\n    return x\n"
    chunks = chunk_sections(src, "tool.py", ChunkConfig(64, 8), WhitespaceCounter(), markup=False)
    assert [c.context for c in chunks] == ["tool.py"] and chunks[0].text == src.strip()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["# H", "## Sub", "text line here.", "", "```", "code()", "| a | b |", "==="]),
                max_size=40))  # fmt: skip
def test_section_chunk_spans_are_exact(lines):
    text = "\n".join(lines)
    for c in chunk_sections(text, "f.md", ChunkConfig(16, 4), WhitespaceCounter()):
        assert text[c.start : c.end] == c.text and c.text.strip() == c.text and c.text


def test_html_headings_and_pre_become_sections(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<h1>Guide</h1><p>Intro.</p><h2>Setup</h2><pre>pip install x\nrun x</pre><p>Done.</p>")
    doc = load_file(page)
    chunks = chunk_sections(doc.text, "p.html", ChunkConfig(64, 8), WhitespaceCounter())
    setup = [c for c in chunks if c.context == "p.html > Guide > Setup"]
    assert setup and "```\npip install x\nrun x\n```" in setup[0].text


def test_headers_hold_a_headings_words_not_its_badges_links_or_markup():
    readme = ("# Typer [![PyPI](https://img.shields.io/pypi/v/typer.svg)](https://pypi.org/project/typer)\n\n"
              "Typer builds CLIs.\n\n## Run it with `python -m` <small>(see [the docs](https://typer.dev))</small>\n\n"
              "Call python -m typer.\n")  # fmt: skip
    assert plain_title("Use **bold** and [a link](http://x.y/z) at https://x.y") == "Use bold and a link at"
    new = chunk_sections(readme, "README.md", ChunkConfig(64, 8), WhitespaceCounter())
    assert [c.context for c in new] == [
        "README.md > Typer",
        "README.md > Typer > Run it with python -m (see the docs)",
    ]
    # an index made by chunker 2 keeps its headers as they were when it grows
    old = chunk_sections(readme, "README.md", ChunkConfig(64, 8), WhitespaceCounter(), version=2)
    assert "img.shields.io" in old[0].context and [c.text for c in old] == [c.text for c in new]


def test_old_index_without_chunker_version_or_context_column_still_works(tmp_path):
    """A chunker-1 index (config without `chunker_version`, store format 1) opens, searches, ingests."""
    from scratchlab.retrieval.embeddings import get_embedder
    from scratchlab.retrieval.index import DocumentIndex

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nLoRA trains low-rank matrices.")
    idx = DocumentIndex.create(
        tmp_path / "idx", ChunkConfig(32, 4), embedder=get_embedder(), chunker_version=1
    )
    idx.ingest([docs])
    cfg = json.loads((tmp_path / "idx" / "config.json").read_text())
    del cfg["chunker_version"]
    (tmp_path / "idx" / "config.json").write_text(json.dumps(cfg))
    with sqlite3.connect(tmp_path / "idx" / "chunks.db") as con:  # back to store format 1
        con.execute("ALTER TABLE rag_chunks DROP COLUMN context")
        con.execute("UPDATE rag_meta SET value='1' WHERE key='store_format'")
    old = DocumentIndex.open(tmp_path / "idx", embedder=get_embedder())
    assert old.config.chunker_version == 1
    assert old.search("low-rank", k=1)[0].context == ""
    (docs / "b.md").write_text("# Beta\n\nBPE merges frequent pairs.")
    old.ingest([docs])
    hit = old.search("merges frequent pairs", k=1, mode="bm25")[0]
    assert hit.doc_id.endswith("b.md") and hit.context == ""  # still chunked by chunker 1
    new = DocumentIndex.create(tmp_path / "idx2", ChunkConfig(32, 4), embedder=get_embedder())
    new.ingest([docs])
    assert new.stats()["chunker_version"] == CHUNKER_VERSION
    assert new.search("merges frequent pairs", k=1)[0].context == "b.md > Beta"
