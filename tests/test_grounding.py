"""Replies after tool results state only numbers the results or the request hold."""

from __future__ import annotations

import pytest

from scratchlab.agent.grounding import ground_reply, numbers_with_scale, unsupported_numbers


def test_numbers_are_read_with_their_scale_and_precision():
    assert numbers_with_scale("0.41M params") == [(410000.0, 5000.0)]
    assert numbers_with_scale("4.1 million") == [(pytest.approx(4.1e6), 50000.0)]
    assert numbers_with_scale("12k tokens, 1,234 steps") == [(12000.0, 500.0), (1234.0, 0.5)]


def test_a_misquoted_parameter_count_is_dropped_and_a_rounded_loss_kept():
    result = "run gpt-2: val loss 1.8694 (best at step 140), 0.41M params, 150 steps"
    reply = "The model has 4.1 million parameters. Its val loss is 1.87 after 150 steps."
    assert ground_reply(reply, [result]) == "Its val loss is 1.87 after 150 steps."
    assert unsupported_numbers("about 0.4M parameters", [410000.0]) == []


def test_nothing_left_falls_back_to_the_result():
    assert (
        ground_reply("It took 99 seconds.", ["train a tokenizer", "Trained bpe400 in 3.2 s."])
        == "Trained bpe400 in 3.2 s."
    )
    assert ground_reply("It took 99 seconds.", ["x"], fallback="see the records") == "see the records"


def test_a_number_labelled_as_another_numbers_quantity_is_dropped():
    result = ("run run-2 (gpt-1) done: val loss 4.0335, best 4.0335 at step 150, train 4.0301; 0.45M params; 3s, "
              "37,257 tokens/s (cpu, bfloat16).")  # fmt: skip
    reply = ("The validation loss was 4.0335 after 150 steps. The model has 4.0301 parameters and runs at 37,257 "
             "tokens/s. It has 0.45M parameters.")  # fmt: skip
    assert (
        ground_reply(reply, [result])
        == "The validation loss was 4.0335 after 150 steps. It has 0.45M parameters."
    )


def test_a_reply_after_a_search_names_the_passages_it_draws_on():
    from scratchlab.agent.grounding import with_sources

    result = ("2 passage(s) from index 'books' for 'memory' (hybrid). Cite them as [n] path:line.\n"
              "[1] seeds/a.txt:10-20 (section: Memory)\n<<<DOCUMENT\nFull fine-tuning: total ~390 GB\nDOCUMENT>>>\n"
              "[2] seeds/b.txt:5-6\n<<<DOCUMENT\nload_in_4bit=True\nDOCUMENT>>>")  # fmt: skip
    assert with_sources("It needs about 390 GB.", [result]).endswith("\nSources: [1] seeds/a.txt:10-20")
    assert (
        with_sources("It needs about 390 GB [1].", [result]) == "It needs about 390 GB [1]."
    )  # cites already
    assert with_sources("Nothing in common here.", [result]) == "Nothing in common here."
    assert with_sources("It needs about 390 GB.", ["run-1 done"]) == "It needs about 390 GB."  # no search
    asked = "how much memory does LLaMA-65B need?\n" + result  # the request's numbers need no passage
    assert with_sources("LLaMA-65B needs about 390 GB.", [asked]).endswith("\nSources: [1] seeds/a.txt:10-20")
    assert with_sources("LLaMA-65B needs about 390 GB.", [result]) == "LLaMA-65B needs about 390 GB."


def test_a_reply_of_citations_alone_gives_way_to_the_passage_sentence_that_answers():
    # "and Llama 3?" after a search: the 1.5B wrote "Sources: [1] seeds/...:193-208, [2] ..." and nothing else
    from scratchlab.agent.grounding import cited_only, quoted_answer, with_sources

    result = ("2 passage(s) from index 'danube' for 'Llama 3 vocabulary size' (hybrid).\n"
              "[1] seeds/c.txt:193-208\n<<<DOCUMENT\n... In production you merge until you reach the size. "
              "GPT-2 uses 50,257 tokens; Llama 3 uses 128,000. Larger vocabulary = fewer tokens ...\nDOCUMENT>>>\n"
              "[2] seeds/d.txt:1-9\n<<<DOCUMENT\nBERT is encoder-only.\nDOCUMENT>>>")  # fmt: skip
    assert cited_only("Sources: [1] seeds/c.txt:193-208, [2] seeds/d.txt:1-9")
    assert not cited_only("Llama 3 uses 128,000 tokens.\nSources: [1] seeds/c.txt:193-208")
    quoted = quoted_answer([result], "and Llama 3?")
    assert quoted == 'The documents say: "GPT-2 uses 50,257 tokens; Llama 3 uses 128,000."'
    assert ground_reply(quoted, [result]) == quoted  # '"GPT-2' opening a quote is still an id
    assert with_sources(quoted, [result]).endswith("Sources: [1] seeds/c.txt:193-208")
    assert quoted_answer([result], "what about rotary embeddings?") is None  # no sentence shares a word
    assert quoted_answer(["run-1 done: val loss 1.2"], "and Llama 3?") is None  # no passages


def test_a_list_items_number_goes_with_its_item():
    from scratchlab.agent.grounding import ground_reply, sentences

    reply = "Found these:\n1. One passage says 7 people were hired.\n2. The other says 9 were."
    assert "1. One passage says 7 people were hired." in sentences(reply)
    kept = ground_reply(reply, ["2 passages about hiring: 9 were hired"])
    assert "1." not in kept and kept.endswith("2. The other says 9 were.")  # no orphan "1."


def test_a_further_check_drops_the_sentences_it_refuses():
    reply = "Yes, gpt-3 beat gpt-2. Its val loss was 2.25."
    kept = ground_reply(reply, ["gpt-3 val_loss 2.25; gpt-2 val_loss 2.08"], keep=lambda s: "beat" not in s)
    assert kept == "Its val loss was 2.25."
    assert (
        ground_reply("gpt-3 beat gpt-2.", ["x"], fallback="the records", keep=lambda s: False)
        == "the records"
    )


def test_an_id_number_grounds_nothing_and_a_steps_label_belongs_to_max_iters():
    """An answer from the records said each ablation variant trained "for 1 step": 1 was only the end
    of the id "ablation-1", and the records gave the steps (max_iters) as 100."""
    from scratchlab.agent.grounding import ground_reply

    facts = "- ablation ablation-1 (run-3, run-4); settings: max_iters=100, n_layer=1, n_embd=32; results: val_loss=2.31"
    assert ground_reply("Each variant trained for 1 step.", [facts], fallback="-") == "-"
    assert (
        ground_reply("Each variant trained for 100 steps.", [facts]) == "Each variant trained for 100 steps."
    )
    assert ground_reply("It has 1 layer.", [facts]) == "It has 1 layer."
    assert ground_reply("It is 32 wide and reached 2.31.", [facts]) == "It is 32 wide and reached 2.31."
    assert ground_reply("Job job-12 trained it.", ["job-12 done"]) == "Job job-12 trained it."


def test_the_count_of_a_listed_set_of_values_is_grounded():
    said = ["tune the dropout over 0.0, 0.1, 0.2 and 0.3, grid search", "started sweep sweep-4 as job-9"]
    assert (
        ground_reply("That grid is 4 trials, one per dropout.", said)
        == "That grid is 4 trials, one per dropout."
    )
    assert ground_reply("That grid is 5 trials.", said, fallback="-") == "-"  # no list of five
