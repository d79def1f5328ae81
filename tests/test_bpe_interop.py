"""BPE interop: GPT-4's cl100k_base identical to tiktoken, our tiktoken/HF exports, save/load files."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchlab.models.bpe import Tokenizer, TokenizerFormatError, train_tokenizer
from scratchlab.models.bpe_export import to_hf
from scratchlab.models.bpe_io import MODEL_FILE, VOCAB_FILE, dumps

VARIED = [
    "",
    "hello world",
    "Hello, World! How's it going? I'm fine, you'll see; we've they're.",
    "   leading and trailing spaces   ",
    "line one\nline two\r\n\r\nline four\n\n\n",
    "numbers 1 12 123 1234 12345 3.14159 1e10 0x1F",
    "code: def f(x):\n    return x ** 2  # square\n\tif x: pass",
    "Ünïcödé: naïve café, 東京タワー, 한국어 텍스트, Ελληνικά, русский текст",
    "emoji 🙂👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵",
    "mixed<|endoftext|>special <|fim_prefix|>tokens<|fim_suffix|> here<|endofprompt|>",
    "tabs\t\tand\u00a0non-breaking\u2003spaces\u200bzero width",
    "ALL CAPS SHOUTING and 'quotes' \"double\" `back`",
    "a" * 300 + " " + "ab" * 150,
    "\n" * 7 + "x" + " " * 9,
]


@pytest.fixture(scope="module")
def gpt4():
    from scratchlab.models.tiktoken_compat import load_openai, openai_encoding

    return load_openai("cl100k_base"), openai_encoding("cl100k_base")


@pytest.fixture(scope="module")
def trained():
    from scratchlab.datasets import load_text

    text = load_text("shakespeare")[:300_000]
    return train_tokenizer(text, 256 + 400, special_tokens=["<|endoftext|>", "<|pad|>"], name="t")


@pytest.mark.parametrize("text", VARIED)
def test_cl100k_identical_to_tiktoken(gpt4, text):
    ours, ref = gpt4
    assert ours.encode(text, allowed_special="all") == ref.encode(text, allowed_special="all")
    assert ours.encode(text, disallowed_special=()) == ref.encode(text, disallowed_special=())
    assert ours.decode(ref.encode(text, allowed_special="all")) == text


def test_cl100k_shape_and_byte_shuffle(gpt4):
    ours, ref = gpt4
    assert ours.vocab_size == ref.n_vocab
    assert ours.byte_ids != tuple(range(256))  # GPT-4's ranks permute the single bytes
    assert ours.special_tokens["<|endoftext|>"] == ref.eot_token
    with pytest.raises(ValueError):
        ours.encode("<|endoftext|>")


def test_o200k_identical_to_tiktoken():
    from scratchlab.models.tiktoken_compat import load_openai, openai_encoding

    ours, ref = load_openai("o200k_base"), openai_encoding("o200k_base")
    for text in VARIED:
        assert ours.encode(text, allowed_special="all") == ref.encode(text, allowed_special="all")


def test_openai_conversion_cache(gpt4, tmp_path, monkeypatch):
    from scratchlab.models import tiktoken_compat
    from scratchlab.models.tiktoken_compat import load_openai

    ours, ref = gpt4
    calls = []

    def fake_recover(ranks):
        calls.append(1)
        return list(ours.merges), list(ours.byte_ids)

    monkeypatch.setattr(tiktoken_compat, "recover_merges", fake_recover)
    load = load_openai.__wrapped__  # skip the in-memory cache
    first = load("cl100k_base", cache_dir=str(tmp_path))
    (cached,) = tmp_path.glob("cl100k_base-*.model")
    again = load("cl100k_base", cache_dir=str(tmp_path))
    assert len(calls) == 1 and again.merges == first.merges == ours.merges and again.byte_ids == ours.byte_ids
    assert again.encode("héllo 123") == ref.encode("héllo 123")
    cached.write_text("scratchlab-bpe v1\n{broken")  # a corrupt cache is rebuilt, not trusted
    rebuilt = load("cl100k_base", cache_dir=str(tmp_path))
    assert len(calls) == 2 and rebuilt.merges == ours.merges


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=120))
def test_cl100k_identical_property(gpt4, text):
    ours, ref = gpt4
    assert ours.encode_ordinary(text) == ref.encode_ordinary(text)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_our_tiktoken_path_identical(trained, text):
    enc = trained.to_tiktoken()
    assert trained.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")


@pytest.mark.parametrize("text", VARIED)
def test_our_tiktoken_and_hf_on_varied_text(trained, text):
    text = text.replace("<|fim_prefix|>", "<|pad|>")
    ours = trained.encode(text, allowed_special="all")
    assert trained.to_tiktoken().encode(text, allowed_special="all") == ours
    hf = to_hf(trained)
    assert hf.encode(text, add_special_tokens=False).ids == ours
    assert hf.decode(ours, skip_special_tokens=False) == text


def test_hf_export_round_trip_through_file(trained, tmp_path):
    from tokenizers import Tokenizer as HFTokenizer

    path = trained.save(tmp_path / "tok", hf=True)
    hf = HFTokenizer.from_file(str(path / "tokenizer.json"))
    text = "To be, or not to be: that is the question.<|endoftext|>Ünïcödé 🙂"
    assert hf.encode(text, add_special_tokens=False).ids == trained.encode(text, allowed_special="all")


@pytest.mark.parametrize("pattern", ["gpt4", "gpt2", "none", r"\p{L}+| ?\p{N}+|\s+|[^\s\p{L}\p{N}]+"])
def test_save_load_round_trip(tmp_path, pattern):
    tok = train_tokenizer(
        VARIED[2] * 5 + VARIED[7] * 5, 300, pattern=pattern, special_tokens=["<|pad|>"], name="x"
    )
    folder = tok.save(tmp_path / "x")
    assert (folder / MODEL_FILE).is_file() and (folder / VOCAB_FILE).is_file()
    back = Tokenizer.load(folder)
    assert back.merges == tok.merges and back.special_tokens == tok.special_tokens
    assert back.pattern == tok.pattern and back.pattern_name == tok.pattern_name
    assert Tokenizer.load(folder / MODEL_FILE).vocab == tok.vocab
    text = "naïve café <|pad|> it's 123"
    assert back.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")
    assert dumps(back) == dumps(tok)


def test_save_load_keeps_byte_shuffle(gpt4, tmp_path):
    ours, ref = gpt4
    back = Tokenizer.loads(dumps(ours))
    assert back.byte_ids == ours.byte_ids and back.vocab_size == ours.vocab_size
    assert back.encode("Ünïcödé 🙂 hello") == ref.encode("Ünïcödé 🙂 hello")


def _good_model_text():
    return dumps(train_tokenizer("abababcabc", 259, pattern="none"))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.replace("scratchlab-bpe v1", "scratchlab-bpe v9"), "not supported"),
        (lambda s: s.replace("scratchlab-bpe v1", "minbpe v1"), "minbpe"),
        (lambda s: "garbage\n" + s, "not a scratchlab tokenizer"),
        (lambda s: s.replace('"num_merges": 3', '"num_merges": 4'), "merge lines"),
        (lambda s: s.rstrip("\n").rsplit("\n", 1)[0] + "\n", "merge lines"),
        (lambda s: s.replace("\n97 98\n", "\n97 x\n"), "two integer ids"),
        (lambda s: s.replace("\n97 98\n", "\n970 98\n"), "not defined"),
        (lambda s: s.split("\n", 1)[0] + "\n{not json\n", "bad JSON"),
        (lambda s: s.replace('"pattern_name"', '"pattern_nom"'), "missing keys"),
    ],
)
def test_corrupt_model_file_errors(tmp_path, mutate, match):
    good = _good_model_text()
    assert Tokenizer.loads(good).num_merges == 3
    path = tmp_path / MODEL_FILE
    path.write_text(mutate(good))
    with pytest.raises(TokenizerFormatError, match=match):
        Tokenizer.load(tmp_path)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(TokenizerFormatError, match="no tokenizer model file"):
        Tokenizer.load(tmp_path / "nope")
    (tmp_path / MODEL_FILE).write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(TokenizerFormatError):
        Tokenizer.load(tmp_path)


@pytest.mark.parametrize("pattern", ["gpt2", "none", r"\p{L}+| ?\p{N}{1,2}+|\s+|[^\s\p{L}\p{N}]+"])
def test_exports_agree_for_other_patterns(pattern):
    text = "".join(VARIED) * 3
    tok = train_tokenizer(text, 400, pattern=pattern, special_tokens=["<|endoftext|>"])
    hf, tk = to_hf(tok), tok.to_tiktoken()
    for t in VARIED:
        t = t.replace("<|fim_prefix|>", "")
        ours = tok.encode(t, allowed_special="all")
        assert hf.encode(t, add_special_tokens=False).ids == ours
        assert tk.encode(t, allowed_special="all") == ours
