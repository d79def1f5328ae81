"""The example bank: data files, nearest neighbours, action prior, flags and learned value words."""

from __future__ import annotations

import json

import pytest
from agent_fakes import WordEmbedder, bank

from scratchlab.agent.bank import Bank, load_examples, negation, number_readings, tokens, verb_base
from scratchlab.tools import all_tools


def test_the_shipped_bank_parses_and_names_only_real_actions_and_arguments(tmp_path):
    tools = {t.name: set(t.args_schema.model_fields) for t in all_tools(workspace=tmp_path)}
    exs = load_examples()
    assert len(exs) > 400 and len({e.id for e in exs}) == len(exs)
    for e in exs:
        assert e.action in tools or e.action in ("answer", "clarify"), e
        assert set(e.args) <= tools.get(e.action, set()), e


def test_a_malformed_line_is_reported_with_file_and_line(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"request": "hi", "action": "answer"}\n{"request": "no action"}\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2"):
        load_examples(tmp_path)


def test_the_prior_follows_the_nearest_examples_and_excluded_ones_do_not_vote():
    b = bank(("train a tokenizer on shakespeare", "train_tokenizer"), ("list my runs", "list_runs"),
             ("what is perplexity", "answer"))  # fmt: skip
    prior = b.action_prior("please list all my runs", ["train_tokenizer", "list_runs", "answer"])
    assert max(prior, key=prior.get) == "list_runs" and abs(sum(prior.values()) - 1) < 1e-9
    b.exclude(["ex-1"])
    prior = b.action_prior("please list all my runs", ["train_tokenizer", "list_runs", "answer"])
    assert max(prior, key=prior.get) != "list_runs"


def test_the_prior_learns_which_words_mark_an_action_and_numbers_do_not_matter():
    # topic words ("heads", "layers") are shared; the marking words ("for later", "keep in mind") are not
    b = bank(("train a gpt with 8 heads", "train_gpt"), ("train a gpt with 6 layers and 4 heads", "train_gpt"),
             ("a 2 layer gpt with 2 heads please", "train_gpt"), ("note for later: I like 6 layers", "remember"),
             ("keep in mind that I like 4 heads", "remember"), ("note for later: my gpu is small", "remember"))  # fmt: skip
    actions = ["train_gpt", "remember", "answer"]
    marked = b.action_prior("note for later: I always want 12 heads", actions)
    assert max(marked, key=marked.get) == "remember" and marked["answer"] < 0.01  # no example says answer
    plain = b.action_prior("train a gpt with 12 heads", actions)
    assert max(plain, key=plain.get) == "train_gpt"


def test_the_classifier_is_cached_by_content(tmp_path, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    rows = load_examples()[:40]
    p1 = Bank(rows, cache_dir=tmp_path, embedder=WordEmbedder()).action_prior("train a tokenizer", ["answer"])
    assert len(list(tmp_path.glob("intent-*.pkl"))) == 1

    def no_fit(*a, **k):
        raise AssertionError("refit although the cache holds this bank's classifier")

    with monkeypatch.context() as m:
        m.setattr(LogisticRegression, "fit", no_fit)
        assert (
            Bank(rows, cache_dir=tmp_path, embedder=WordEmbedder()).action_prior(
                "train a tokenizer", ["answer"]
            )
            == p1
        )
    next(tmp_path.glob("intent-*.pkl")).write_bytes(b"not a pickle")  # a broken cache is refit
    assert (
        Bank(rows, cache_dir=tmp_path, embedder=WordEmbedder()).action_prior("train a tokenizer", ["answer"])
        == p1
    )


def test_flags_come_from_a_classifier_on_the_form_words():
    b = bank(("the same but with 8 heads", "train_gpt", {}, {"carry": True}),
             ("sample again with the same settings but 50 tokens", "sample_gpt", {}, {"carry": True}),
             ("train a gpt with 8 heads", "train_gpt"), ("sample 50 tokens from gpt-1", "sample_gpt"),
             ("train a tokenizer on shakespeare", "train_tokenizer"))  # fmt: skip
    assert b.flag("the same but 4 heads", "carry") > 0.5
    assert b.flag("train the same tokenizer again but on notes", "carry") > 0.5  # no repeat of it in the bank
    assert b.flag("train a gpt on notes", "carry") < 0.5
    assert b.flag("train a gpt on notes", "lab") == 0.0  # no example has the flag: never set


def test_rows_without_flag_labels_teach_the_action_but_not_the_flags():
    rows = (("the same but with 8 heads", "train_gpt", {}, {"carry": True}),
            ("sample again with the same settings but 50 tokens", "sample_gpt", {}, {"carry": True}),
            ("train a gpt with 8 heads", "train_gpt"), ("train a tokenizer on shakespeare", "train_tokenizer"))  # fmt: skip
    # a scored split's request says nothing of the flag: as a negative it would outvote the repeats
    unlabelled = [
        (f"the same but with {n} heads again", "train_gpt", {}, {"flagged": False}) for n in range(2, 9)
    ]
    with_them = bank(*rows, *unlabelled).flag("the same but 4 heads", "carry")
    assert with_them == pytest.approx(bank(*rows).flag("the same but 4 heads", "carry"))
    as_negatives = [(r, a, {}, {}) for r, a, _, _ in unlabelled]
    assert bank(*rows, *as_negatives).flag("the same but 4 heads", "carry") < with_them - 0.1
    prior = bank(*rows, *unlabelled).action_prior("the same but 4 heads", ["train_gpt", "sample_gpt"])
    assert prior["train_gpt"] > prior["sample_gpt"]


def test_the_shipped_scored_splits_are_action_only(tmp_path):
    split_rows = [e for e in load_examples() if not e.flagged]
    assert split_rows and all(not (e.carry or e.lab or e.kept) for e in split_rows)


def test_a_number_in_thousands_groups_is_one_number_and_a_named_list_stays_a_list():
    assert number_readings("I'd like 1,000 symbols in the vocabulary")[0][0][0] == 1000.0
    assert [v for v, _ in number_readings("sweep n_embd=64,128")[0]] == [64.0, 128.0]


def test_embeddings_are_cached_by_content(tmp_path):
    class Counting(WordEmbedder):
        calls = 0

        def encode(self, texts):
            Counting.calls += 1
            return super().encode(texts)

    rows = load_examples()[:5]
    first = Bank(rows, cache_dir=tmp_path, embedder=Counting()).vectors
    second = Bank(rows, cache_dir=tmp_path, embedder=Counting()).vectors
    assert (first == second).all() and Counting.calls == 1 and len(list(tmp_path.glob("bank-*.npy"))) == 1
    third = Bank(
        rows[:3], cache_dir=tmp_path, embedder=Counting()
    ).vectors  # a changed bank replaces the old file
    assert third.shape[0] == 3 and Counting.calls == 2 and len(list(tmp_path.glob("bank-*.npy"))) == 1


@pytest.mark.parametrize(
    "text, toks",
    [
        ("2-layer", ["2", "layer"]),
        ("lr=3e-4", ["lr", "3e-4"]),
        ("12 epochs", ["12", "epochs"]),
        ("4L", ["4", "l"]),
    ],
)
def test_tokens(text, toks):
    assert tokens(text) == toks


def test_every_bank_line_is_json(tmp_path):
    from scratchlab.agent.bank import BANK_DIR

    for path in BANK_DIR.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            assert isinstance(json.loads(line), dict)


def test_excluding_a_request_the_bank_does_not_hold_refits_nothing(monkeypatch):
    from sklearn.linear_model import LogisticRegression

    b = bank(("train a tokenizer on shakespeare", "train_tokenizer"), ("list my runs", "list_runs"))
    before = b.action_prior("list my runs please", ["train_tokenizer", "list_runs"])

    def no_fit(*a, **k):
        raise AssertionError("refit for an id the bank does not hold")

    monkeypatch.setattr(LogisticRegression, "fit", no_fit)
    b.exclude(["unseen-7"])  # an evaluation case that was never in the bank
    assert b.action_prior("list my runs please", ["train_tokenizer", "list_runs"]) == before


def test_excluding_a_held_request_refits_at_once_not_at_the_next_request(monkeypatch):
    from sklearn.linear_model import LogisticRegression

    b = bank(("train a tokenizer on shakespeare", "train_tokenizer"), ("list my runs", "list_runs"),
             ("show me my runs", "list_runs"))  # fmt: skip
    b.action_prior("list my runs please", ["train_tokenizer", "list_runs"])
    b.exclude(["ex-1"])  # refits here, outside a timed request

    def no_fit(*a, **k):
        raise AssertionError("refit during the request")

    monkeypatch.setattr(LogisticRegression, "fit", no_fit)
    prior = b.action_prior("list my runs please", ["train_tokenizer", "list_runs"])
    assert prior["list_runs"] > prior["train_tokenizer"]


def test_a_negation_in_any_form_of_its_verb_or_as_a_verb_with_its_particle():
    assert [verb_base(w) for w in ("removing", "dropped", "drops", "skipping", "taking", "cutting", "layer")] == [
        "remove", "drop", "drop", "skip", "take", "cut", "layer"]  # fmt: skip
    toks = tokens("taking out the norms, leave out rope, turned off dropout, find out, the layer")
    assert [t for i, t in enumerate(toks) if negation(toks, i)] == ["out", "out", "off"]
    assert negation(["without"], 0) and not negation(["out"], 0)


def test_an_unfamiliar_word_is_unseen_and_no_common_word_mistyped():
    from scratchlab.agent.bank import Bank, Example

    reqs = ["train a gpt", "train it", "train more", "sample it", "sample more", "please train"] * 10
    b = Bank([Example(id=f"e{i}", request=r, action="x") for i, r in enumerate(reqs)], embedder=object())
    assert b.unfamiliar("obsidian") and b.unfamiliar("thistle-lr")
    assert not b.unfamiliar("train") and not b.unfamiliar("gpt")  # words the requests say
    assert not b.unfamiliar("trian") and not b.unfamiliar("sampel") and not b.unfamiliar("plase")  # typos
    assert not b.unfamiliar("trains") and not b.unfamiliar("samples")  # a seen word's plural
    # a long word one slip from a word some request used, common or not: "write somethng" is no name
    rare = Bank([*b.examples, Example(id="r", request="write something", action="x")], embedder=object())
    assert not rare.unfamiliar("somethng") and rare.unfamiliar("bolero")


def test_opening_words_are_the_verbs_of_an_actions_requests_not_question_words():
    from scratchlab.agent.bank import Bank, Example

    reqs = [("sweep the lr", "sweep_gpt"), ("sweep width", "sweep_gpt"), ("which lr is best? sweep it", "sweep_gpt"),
            ("which matters more? sweep both", "sweep_gpt"), ("which run is best?", "answer")]  # fmt: skip
    b = Bank([Example(id=f"e{i}", request=r, action=a) for i, (r, a) in enumerate(reqs)], embedder=object())
    assert b.opening_words("sweep_gpt") == {"sweep"}  # "which" opens questions
    # a question after a colon is the text the request hands on: "ask" still asks for the tool
    asks = [("ask spruce: why is the sky blue?", "generate_with_adapter"), ("ask it: what is 2+2?", "generate_with_adapter"),
            ("ask me anything", "answer")]  # fmt: skip
    b = Bank([Example(id=f"a{i}", request=r, action=a) for i, (r, a) in enumerate(asks)], embedder=object())
    assert b.opening_words("generate_with_adapter") == {"ask"}


def test_verbs_are_opening_words_less_function_words():
    from scratchlab.agent.bank import Bank, Example

    reqs = [("stop sweep-1", "stop_sweep"), ("stop it now", "stop_sweep"), ("the sweep: stop", "stop_sweep"),
            ("the grid, halt", "stop_sweep")]  # fmt: skip
    b = Bank([Example(id=f"e{i}", request=r, action=a) for i, (r, a) in enumerate(reqs)], embedder=object())
    assert b.opening_words("stop_sweep") == {"stop", "the"}
    assert b.verbs("stop_sweep") == {"stop"}  # "the" opens requests but takes no record
