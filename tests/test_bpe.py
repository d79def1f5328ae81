"""Byte-level BPE engine: worked example, round trips, reference trainer, special tokens, bad inputs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlab.models.bpe import (
    PATTERNS,
    Tokenizer,
    TokenizerError,
    render_bytes,
    resolve_pattern,
    train_tokenizer,
)
from scratchlab.models.bpe_merge import merge_greedy, merge_heap
from scratchlab.models.bpe_train import chunk_counts, merge_pair, train_merges, train_merges_reference

CORPUS = (
    "The quick brown fox jumps over the lazy dog. The dog barks; the fox runs!\n"
    "Hello world, hello WORLD 1234567 and 89. Don't you'll we've they're.\n"
    "Ünïcödé tëxt: naïve café, 東京 and 한국어, emoji 🙂🙂 and tabs\tand  spaces   here.\n"
) * 8

PRESETS = ["gpt4", "gpt2", "none"]


@pytest.fixture(scope="module", params=PRESETS)
def trained(request):
    return train_tokenizer(CORPUS, 256 + 60, pattern=request.param, special_tokens=["<|endoftext|>"])


def test_worked_example_aaabdaaabac():
    tok = train_tokenizer("aaabdaaabac", 256 + 3, pattern="none")
    assert list(tok.merges) == [(97, 97), (97, 98), (256, 257)]
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"
    assert tok.vocab[258] == b"aaab"


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_round_trip_arbitrary_unicode(trained, text):
    ids = trained.encode(text, disallowed_special=())
    assert trained.decode(ids) == text
    assert all(0 <= i < trained.vocab_size for i in ids)


@settings(max_examples=40, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab c\n"), max_size=400))
def test_long_chunk_merge_equals_short(trained, text):
    """The O(n log n) heap merge used for long chunks gives exactly the simple loop's ids."""
    ids = list(text.encode("utf-8"))
    assert merge_heap(ids, trained.merges) == merge_greedy(ids, trained.merges) if ids else True


@pytest.mark.parametrize("pattern", PRESETS + [r"\w+|\s+"])
@pytest.mark.parametrize("corpus", [CORPUS[:600], "aaaaaaaaaaaaaaab ababab abab", "x" * 50 + "yx" * 20])
def test_fast_trainer_equals_reference(pattern, corpus):
    pat = resolve_pattern(pattern)[1]
    counts = chunk_counts(corpus, pat, covers_all=pattern in PATTERNS)
    fast = train_merges(counts, 80)
    slow = train_merges_reference(counts.items(), 80)
    assert fast == slow


@settings(max_examples=30, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("aab b\nc"), min_size=2, max_size=120))
def test_fast_trainer_equals_reference_property(text):
    counts = chunk_counts(text, None)
    assert train_merges(counts, 30) == train_merges_reference(counts.items(), 30)


def test_reference_on_unaggregated_chunks_matches():
    """minbpe-style input (every chunk with count 1) learns the same merges as unique chunks."""
    pat = PATTERNS["gpt4"]
    import regex

    chunks = [c.encode() for c in regex.findall(pat, CORPUS)]
    assert train_merges_reference([(c, 1) for c in chunks], 40) == train_merges(chunk_counts(CORPUS, pat), 40)


def test_tie_break_is_highest_count_then_smallest_pair():
    counts = {b"cd": 2, b"ab": 2, b"xy": 1}  # (c, d) and (a, b) tie at 2: the smaller pair wins
    assert train_merges(counts, 1) == [(97, 98)]
    assert train_merges_reference(counts.items(), 1) == [(97, 98)]
    assert train_merges({b"cd": 3, b"ab": 2}, 1) == [(99, 100)]


def test_merge_pair_is_left_to_right_non_overlapping():
    assert merge_pair([1, 1, 1], (1, 1), 9) == [9, 1]
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]


def test_training_text_runs_out_of_pairs():
    tok = train_tokenizer("abc", 1000, pattern="none")
    assert tok.num_merges == 2 and tok.vocab_size == 258


def test_progress_callback_reaches_total():
    seen = []
    train_tokenizer(CORPUS, 256 + 50, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (50, 50) and all(t == 50 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_special_tokens_tiktoken_semantics(trained):
    eot = trained.special_tokens["<|endoftext|>"]
    assert eot == 256 + trained.num_merges
    text = "hello<|endoftext|>world"
    with pytest.raises(TokenizerError, match="disallowed special token"):
        trained.encode(text)
    ids = trained.encode(text, allowed_special="all")
    assert ids.count(eot) == 1 and trained.decode(ids) == text
    assert trained.encode(text, allowed_special={"<|endoftext|>"}) == ids
    plain = trained.encode(text, disallowed_special=())
    assert eot not in plain and trained.decode(plain) == text
    assert plain == trained.encode_ordinary(text)


def test_special_tokens_are_not_learned_from():
    tok = train_tokenizer("<|endoftext|>" * 50 + "ab", 300, pattern="none", special_tokens=["<|endoftext|>"])
    learned = {tok.vocab[i] for i in tok.merges.values()}
    assert learned == {b"ab"}


def test_unknown_allowed_special_raises(trained):
    with pytest.raises(TokenizerError, match="unknown special"):
        trained.encode("hi", allowed_special={"<|pad|>"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": CORPUS, "vocab_size": 255}, "too small"),
        ({"text": CORPUS, "vocab_size": 256, "special_tokens": ["<|x|>"]}, "too small"),
        ({"text": "", "vocab_size": 300}, "empty"),
        ({"text": CORPUS, "vocab_size": 300, "pattern": "(unclosed"}, "invalid split pattern"),
        ({"text": CORPUS, "vocab_size": 300, "special_tokens": [""]}, "non-empty"),
    ],
)
def test_bad_training_inputs(kwargs, match):
    with pytest.raises(TokenizerError, match=match):
        train_tokenizer(**kwargs)


def test_invalid_ids_and_merges():
    tok = train_tokenizer(CORPUS, 300)
    with pytest.raises(TokenizerError, match="invalid token id: 99999"):
        tok.decode([1, 99999])
    with pytest.raises(TokenizerError, match="not defined"):
        Tokenizer([(300, 1)])
    with pytest.raises(TokenizerError, match="belongs to a byte or merge"):
        Tokenizer([(97, 98)], special_tokens={"<|x|>": 100})


def test_vocab_is_derived_from_merges():
    tok = train_tokenizer(CORPUS, 320)
    for (a, b), i in tok.merges.items():
        assert tok.vocab[i] == tok.vocab[a] + tok.vocab[b]
        assert tok.merge_of(i) == (a, b)
    assert tok.merge_of(65) is None


def test_inspection_helpers():
    tok = train_tokenizer(CORPUS, 300)
    first = tok.first_merges(3)
    assert [m[0] for m in first] == [256, 257, 258]
    assert first[0][3] == tok.token_str(256)
    assert render_bytes(b"\xe2\x82") == "<0xE2><0x82>"
    assert render_bytes(b"a\nb") == "a\\nb"
    assert tok.token_str(0xE2) == "<0xE2>"
    text = "The fox 🙂"
    coloured = tok.colorize(text)
    assert coloured.plain.replace("<0xF0><0x9F><0x99><0x82>", "🙂") == text or "🙂" in coloured.plain
    assert len(coloured.spans) == len(tok.encode(text))
    assert "".join(tok.tokens("The fox")) == "The fox"


def test_custom_pattern_keeps_unmatched_text():
    tok = train_tokenizer(CORPUS, 300, pattern=r"\p{L}+")
    assert tok.pattern_name == "custom"
    text = "a, b! 12 ünï"
    assert tok.decode(tok.encode(text)) == text
