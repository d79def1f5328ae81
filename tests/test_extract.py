"""What a request states outright, read with the tool schema and the example bank (no phrase rules)."""

from __future__ import annotations

import pytest
from agent_fakes import bank

from scratchlab.agent.bank import Bank, Example, load_examples, number_contexts, number_readings, tokens
from scratchlab.agent.extract import (
    _skeleton_of,
    described_text,
    glosses,
    named_settings,
    negated,
    number_glosses,
    refused_numbers,
    remembered_numbers,
    set_by_request,
    stated_code,
    stated_enum,
    stated_integer_list,
    stated_name,
    stated_numbers,
    stated_path,
    stated_quote,
    stated_values,
    value_lists,
)

GPT = {"properties": {k: {"anyOf": [{"type": "integer"}, {"type": "null"}]} for k in
                      ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "max_iters")}}  # fmt: skip
GPT["properties"]["lr"] = {"type": "number"}
GPT["properties"]["dropout"] = {"type": "number"}
TOK = {
    "properties": {
        "vocab_size": {"type": "integer"},
        "num_merges": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    }
}
LORA = {"properties": {"r": {"type": "integer", "minimum": 1}, "lora_alpha": {"type": "number"},
                       "lr": {"type": "number", "maximum": 1}, "max_iters": {"type": "integer"}}}  # fmt: skip


def test_a_number_goes_to_the_argument_whose_own_name_stands_next_to_it():
    assert stated_numbers("6 layers, 8 heads and lr 3e-4", "train_gpt", GPT, None) == {
        "n_layer": 6, "n_head": 8, "lr": 3e-4}  # fmt: skip
    assert stated_numbers("a 2-layer gpt with dropout 0.1", "train_gpt", GPT, None) == {
        "n_layer": 2,
        "dropout": 0.1,
    }


def test_a_word_between_two_numbers_labels_the_one_its_reading_explains_best():
    # "6 layers 8 heads": a label after its number; "block 128 lr 3e-4": a label before it
    assert stated_numbers("6 layers 8 heads", "train_gpt", GPT, None) == {"n_layer": 6, "n_head": 8}
    assert stated_numbers("gpt block 128 lr 3e-4", "train_gpt", GPT, None) == {"block_size": 128, "lr": 3e-4}
    # a word several names share ("size": block_size, batch_size) says less than the one that is its own
    sizes = bank(("gpt with block size 256", "train_gpt", {"block_size": 256}),
                 ("gpt with batch size 16", "train_gpt", {"batch_size": 16}))  # fmt: skip
    assert stated_numbers("block size 128, batch 32", "train_gpt", GPT, sizes) == {
        "block_size": 128,
        "batch_size": 32,
    }
    assert [c for _, c in number_contexts("block 128 lr 3e-4", flip=1)] == [
        {"block": 1.0},
        {"lr": 1.0},
    ]
    # a "k" before a number names it ("T=1.2 k=40" is top-k 40), it does not scale the one before
    assert [v for v, _ in number_contexts("T=1.2 k=40")] == [1.2, 40.0]
    # "key=number" binds: each key labels its own number only ("n" sat between 30 and 150)
    assert number_contexts("T=0.6 k=30 n=150 seed 3") == [
        (0.6, {"t": 1.0}), (30.0, {"k": 1.0}), (150.0, {"n": 1.0}), (3.0, {"seed": 1.0})]  # fmt: skip
    # "one block" is the singular of "blocks" (n_layer's, learned), not block_size's "block"
    b = bank(("a gpt of 5 transformer blocks", "train_gpt", {"n_layer": 5}))  # "blocks": n_layer
    assert stated_numbers("a one-block gpt, 4 heads", "train_gpt", GPT, b) == {"n_layer": 1, "n_head": 4}
    assert stated_numbers("gpt block 128", "train_gpt", GPT, b) == {"block_size": 128}
    # "a single layer" is one layer
    assert stated_numbers("a single layer, 4 heads", "train_gpt", GPT, None) == {"n_layer": 1, "n_head": 4}
    # a number word two words before a number is still one ("one layer, 4 heads" lost its 1)
    assert stated_numbers("one layer, 4 heads", "train_gpt", GPT, None) == {"n_layer": 1, "n_head": 4}


def test_a_modifier_of_a_name_is_weaker_than_its_head_and_never_plural():
    # "blocks" are transformer blocks, not block_size; "batch 32" and "block size 128" still read
    assert "block_size" not in stated_numbers("3 blocks deep, 96 wide", "train_gpt", GPT, None)
    assert stated_numbers("batch 32, 2 layers", "train_gpt", GPT, None) == {"batch_size": 32, "n_layer": 2}
    b = bank(("a gpt of 5 transformer blocks", "train_gpt", {"n_layer": 5}))  # "blocks": n_layer
    assert stated_numbers("3 blocks deep", "train_gpt", GPT, b) == {"n_layer": 3}


def test_a_shared_head_noun_lets_its_modifier_say_which_setting():
    # "size" is block_size's and batch_size's (and, learned, a width's): in "hidden size 96" the word
    # before the head says which size, though it stands further from the number
    b = bank(("gpt with block size 256", "train_gpt", {"block_size": 256}),
             ("gpt with batch size 16", "train_gpt", {"batch_size": 16}),
             ("hidden size 64 and 2 layers", "train_gpt", {"n_embd": 64, "n_layer": 2}),
             ("a model 48 hidden units wide", "train_gpt", {"n_embd": 48}))  # fmt: skip
    assert stated_numbers("hidden size 96, 3 layers", "train_gpt", GPT, b) == {"n_embd": 96, "n_layer": 3}
    assert stated_numbers("with batch size 12", "train_gpt", GPT, b) == {"batch_size": 12}
    # the modifier must label the same number: "3 layers size 64" keeps "layers" for the 3
    assert number_readings("3 layers size 64", heads={"size"})[0] == [
        (3.0, {"layers": 1.0}),
        (64.0, {"size": 1.0}),
    ]


def test_a_name_cut_short_after_a_number_labels_it():
    budget = {"properties": {**GPT["properties"], "budget_minutes": {"type": "number"},
                             "warmup_iters": {"type": "integer"}}}  # fmt: skip
    assert stated_numbers("2 layers, 600 it", "train_gpt", budget, None) == {"n_layer": 2, "max_iters": 600}
    assert stated_numbers("80 its, give up after 20 min", "research_gpt", budget, None) == {
        "max_iters": 80, "budget_minutes": 20}  # fmt: skip
    assert stated_numbers("2 items", "train_gpt", budget, None) == {}  # "item" begins no name


def test_words_for_an_argument_are_learned_from_the_bank():
    b = bank(("gpt with 4 stacks for 2000 iterations", "train_gpt", {"n_layer": 4, "max_iters": 2000}),
             ("a 64 wide model, bs 16", "train_gpt", {"n_embd": 64, "batch_size": 16}))  # fmt: skip
    assert stated_numbers("train 3 stacks, 300 iterations", "train_gpt", GPT, None) == {}  # no own-name word
    assert stated_numbers("train 3 stacks, 300 iterations", "train_gpt", GPT, b) == {
        "n_layer": 3,
        "max_iters": 300,
    }
    assert stated_numbers("make it 128 wide with bs 8", "train_gpt", GPT, b) == {
        "n_embd": 128,
        "batch_size": 8,
    }


def test_a_value_a_list_also_holds_teaches_no_word():
    from scratchlab.agent.bank import Example

    ex = Example("s", "which is better for a 4-layer GPT, 2 or 4 heads?", "sweep_gpt",
                 {"search": ["n_head=2,4"], "n_layer": 4})  # fmt: skip
    learned = Bank([ex], embedder=object()).value_words("sweep_gpt")
    assert "heads" not in learned.get("n_layer", {})  # the 4 of "4 heads" is the list's, not n_layer's
    ex = Example("t", "train a 4-layer GPT with 2 heads", "train_gpt", {"n_layer": 4, "n_head": 2})
    assert Bank([ex], embedder=object()).value_words("train_gpt")["n_head"]["heads"] == 1.0


def test_a_setting_takes_the_words_every_tool_teaches_for_it():
    from scratchlab.agent.bank import Example

    taught = Example(
        "t", "train a GPT with 2 layers and 64-wide embeddings", "train_gpt", {"n_layer": 2, "n_embd": 64}
    )
    b = Bank([taught], embedder=object())
    # ablate_gpt's examples never label n_embd: the words train_gpt's examples teach for it count
    assert stated_numbers("ablate rope: 3 layers, embeddings 96 wide", "ablate_gpt", GPT, b) == {
        "n_layer": 3,
        "n_embd": 96,
    }
    assert stated_numbers("ablate rope: 3 layers, embeddings 96 wide", "ablate_gpt", GPT, None) == {
        "n_layer": 3
    }


def test_digits_glued_to_a_word_are_a_name_and_a_short_key_keeps_its_value():
    b = Bank(load_examples(), embedder=object())
    got = stated_numbers(
        "train tokenizer on data/emails.txt, vocab 1024, name mail1k", "train_tokenizer", TOK, b
    )
    assert got == {"vocab_size": 1024}  # "mail1k" is no second number for vocab_size
    got = stated_numbers("tokenizer train vocab=2048 pattern=gpt2 name=met2k", "train_tokenizer", TOK, b)
    assert got == {"vocab_size": 2048}
    assert stated_numbers("lora r4 lr 5e-4 200 steps", "finetune_lora", LORA, b)["r"] == 4


def test_two_values_for_one_argument_set_nothing():
    assert "n_layer" not in stated_numbers("compare 2 layers with 4 layers", "train_gpt", GPT, None)


def test_the_shipped_bank_reads_common_shorthand():
    b = Bank(load_examples(), embedder=object())  # value_words needs no embeddings
    got = stated_numbers("gpt 4L 6H 2000 steps d=64", "train_gpt", GPT, b)
    assert got == {"n_layer": 4, "n_head": 6, "max_iters": 2000, "n_embd": 64}
    # a setting's word joined to its number by a hyphen sets it; a record's id ("sweep-3") does not
    assert stated_numbers("a rank-8 adapter, 120 steps", "finetune_lora", LORA, b) == {
        "r": 8,
        "max_iters": 120,
    }
    assert "sweep" in b.id_prefixes() and "rank" not in b.id_prefixes()
    resume = {"properties": {"extra_minutes": {"type": "number"}}}
    assert stated_numbers("give sweep-3 7 more minutes", "resume_sweep", resume, b) == {"extra_minutes": 7}


def test_the_name_given_to_the_new_artifact_holds_no_values():
    """ "name it pebble64" once gave n_layer 64 next to the 64 wide: a bank word glued to digits is a pair."""
    pebble = Example(id="p", request="pebble 3 layers", action="train_gpt", args={"n_layer": 3})
    b = Bank([*load_examples(), pebble, pebble], embedder=object())
    text = "actually make that 64 wide, everything else unchanged, and name it pebble64"
    assert stated_numbers(text, "train_gpt", GPT, b) == {"n_embd": 64}
    assert stated_values({"n_layer": 64}, text, "train_gpt", GPT, b) == {"n_embd": 64}


def test_a_tie_goes_to_the_word_the_bank_saw_more_often():
    """ "rank 4 instead": "rank" labels r in many examples, "instead" max_iters in one."""
    lora = {"properties": {"r": {"type": "integer"}, "max_iters": {"type": "integer"}}}
    taught = [
        Example(id=f"r{i}", request=f"lora rank {i + 2}", action="finetune_lora", args={"r": i + 2})
        for i in range(5)
    ]
    taught.append(
        Example(id="m", request="200 steps instead", action="finetune_lora", args={"max_iters": 200})
    )
    b = Bank(taught, embedder=object())
    assert stated_numbers("no wait, rank 4 instead, same everything else", "finetune_lora", lora, b) == {
        "r": 4
    }
    assert stated_numbers("no wait, 300 instead", "finetune_lora", lora, b) == {"max_iters": 300}


SEARCH = {"properties": {"mode": {"anyOf": [{"enum": ["hybrid", "dense", "bm25"], "type": "string"}, {"type": "null"}],
                                  "description": "'hybrid' (default, best), 'dense' (meaning) or 'bm25' (exact words)."}}}  # fmt: skip


def test_an_enum_value_is_named_by_itself_or_by_its_gloss_in_the_description():
    assert glosses(SEARCH["properties"]["mode"])["bm25"] == {"exact", "word"}  # plural s dropped
    assert stated_enum("search the seeds index with bm25 for QLoRA", SEARCH) == {"mode": "bm25"}
    assert stated_enum("look for QLoRA by exact words", SEARCH) == {"mode": "bm25"}
    assert stated_enum("search by meaning for adapters", SEARCH) == {"mode": "dense"}
    assert stated_enum("search for QLoRA", SEARCH) == {}
    # a gloss's phrase said word for word outweighs another value's loose word ("the best 2 hits")
    phrased = {"properties": {"mode": {**SEARCH["properties"]["mode"],
                                       "description": "'hybrid' (both, best), 'dense' (by meaning) or 'bm25' (exact words)."}}}  # fmt: skip
    said = "now search by meaning only: how long is warmup? the best 2 hits are enough"
    assert stated_enum(said, phrased) == {"mode": "dense"}
    assert stated_enum("meaning: the best hits", phrased) == {}  # one loose word each: a tie


def test_the_tools_own_glosses_name_their_values():
    from scratchlab.tools.rag import SearchDocumentsArgs
    from scratchlab.tools.tokenizer import TrainTokenizerArgs

    search, train = SearchDocumentsArgs.model_json_schema(), TrainTokenizerArgs.model_json_schema()
    assert stated_enum("do a semantic search, not word matching", search) == {"mode": "dense"}
    assert stated_enum("tok on shakespeare, v=288, no pretokenization split", train) == {"pattern": "none"}


def test_a_number_is_named_by_the_gloss_its_description_gives_it():
    from scratchlab.tools.gpt import SampleGPTArgs

    sample = SampleGPTArgs.model_json_schema()
    assert number_glosses(sample["properties"]["temperature"]) == {0.0: [{"greedy"}, {"deterministic"}]}
    assert stated_values({}, "sample from the char-level run, greedy decoding", "sample_gpt", sample, None)[
        "temperature"] == 0  # fmt: skip
    assert (
        stated_values({}, "continue 'The king', deterministic please", "sample_gpt", sample, None)[
            "temperature"
        ]
        == 0
    )
    # a number the request writes wins over the gloss; no gloss word, no value
    assert stated_values({}, "sample at temperature 0.6", "sample_gpt", sample, None)["temperature"] == 0.6
    assert "temperature" not in stated_values({}, "sample 100 tokens from gpt-1", "sample_gpt", sample, None)


def test_enum_values_by_gloss_outside_a_negation_and_by_name_without_version():
    from scratchlab.tools.rag import SearchDocumentsArgs
    from scratchlab.tools.tune import TuneRouterArgs

    search = SearchDocumentsArgs.model_json_schema()
    assert stated_enum("search for it by meaning rather than exact words", search) == {"mode": "dense"}
    assert stated_enum("search by exact words, not by meaning", search) == {"mode": "bm25"}
    assert stated_enum("search the exact words 'weight tying'", search) == {"mode": "bm25"}
    tune = TuneRouterArgs.model_json_schema()
    assert stated_enum("tune yourself on the smollm model", tune) == {"base": "smollm2"}
    assert stated_enum("tune yourself on my tools", tune) == {}


def test_a_gloss_that_negates_matches_only_a_request_that_refuses_the_same_words():
    from scratchlab.tools.sweep import SweepGPTArgs

    sweep = SweepGPTArgs.model_json_schema()
    assert "~pruning" in glosses(sweep["properties"]["pruner"])["none"]
    assert stated_enum("sweep lr and dropout, random sampling and no pruning", sweep)["pruner"] == "none"
    assert stated_enum("sweep lr, no early stopping of trials", sweep)["pruner"] == "none"
    assert stated_enum("sweep lr with successive halving", sweep)["pruner"] == "halving"
    assert stated_enum("sweep lr with pruning", sweep)["pruner"] == "median"  # pruning said, not refused
    # refusing the argument itself is its value that means none
    assert stated_enum("gpt sweep: dropout=0.0,0.1,0.2, grid sampler, no pruner", sweep)["pruner"] == "none"
    assert stated_enum("sweep dropout without any pruner", sweep)["pruner"] == "none"
    assert stated_enum("sweep dropout with the halving pruner", sweep)["pruner"] == "halving"
    # refusing the verb the argument is named for: "please do not prune" is the pruner 'none'
    assert stated_enum("sweep dropout and please do not prune", sweep)["pruner"] == "none"
    assert "pruner" not in stated_enum("sweep dropout and prune early", sweep)
    # a determiner does not count toward the refusal's reach
    assert stated_enum("sweep lr but drop the early-stopping pruner", sweep)["pruner"] == "none"
    from scratchlab.agent.bank import tokens
    from scratchlab.agent.extract import negated

    assert negated(tokens("without the layer norms and with rope")) == {1, 2, 3, 4}  # rope is not refused
    assert "pruner" not in stated_enum("keep going until the val loss is below 1.9", sweep)
    # a value said only inside a negation is not named by it
    assert stated_enum("search for it, not with bm25 but by meaning", SEARCH) == {"mode": "dense"}
    # shorthand that refuses the phrase before it: "pruning off"; "kick off a sweep" refuses nothing
    assert stated_enum("sweep lr, pruning off, 10 min", sweep)["pruner"] == "none"
    assert "pruner" not in stated_enum("kick off a sweep of lr", sweep)


def test_a_list_of_enum_values_gets_each_value_the_request_names_in_its_order():
    from scratchlab.tools.gpt import AblateGPTArgs

    ablate = AblateGPTArgs.model_json_schema()
    said = "an ablation: swap GELU for ReLU, and a variant with no positional embeddings"
    assert stated_enum(said, ablate) == {"switches": ["relu", "no_pos_emb"]}
    assert stated_enum("baseline vs rotary position embeddings vs no layernorm", ablate) == {
        "switches": ["rope", "no_layernorm"]}  # fmt: skip
    assert stated_enum("try it without skip connections", ablate) == {"switches": ["no_residual"]}
    # a refusing verb in any form, or a verb with its particle: "drops", "taking out", "turned off"
    assert stated_enum("and one that drops the position embeddings", ablate) == {"switches": ["no_pos_emb"]}
    two = "whether taking out the skip connections or taking out the layer norms does more damage"
    assert stated_enum(two, ablate) == {"switches": ["no_residual", "no_layernorm"]}
    assert stated_enum("turn off the layer norms in one variant", ablate) == {"switches": ["no_layernorm"]}
    assert stated_enum("find out the layer norm's effect", ablate) == {}  # "find out" refuses nothing
    # a key=value variant the items' pattern admits joins the list; it sets no base setting
    assert stated_enum("again, but also try mlp_ratio=2 as another variant", ablate) == {
        "switches": ["mlp_ratio=2"]
    }
    got = stated_values({}, "ablate relu and n_head=1, dropout=0.2.", "ablate_gpt", ablate, None)
    assert got["switches"] == ["relu", "n_head=1", "dropout=0.2"] and "n_head" not in got
    assert stated_enum("and one where we drop the position embeddings", ablate) == {
        "switches": ["no_pos_emb"]
    }
    assert stated_enum("what if we used gelu instead of relu", ablate) == {}
    # a negation's scope ends with its phrase: "no position embeddings, rotary" keeps rotary
    assert stated_enum("variants: no position embeddings, rotary", ablate) == {
        "switches": ["no_pos_emb", "rope"]
    }
    assert stated_enum("run an ablation with a 2-layer baseline", ablate) == {}
    # the values the request names come first, then any other setting the model wrote, but no
    # option the request does not name ("rotary position embeddings" is rope's, not no_pos_emb's)
    got = stated_values({"switches": ["n_head=1", "rope"]}, said, "ablate_gpt", ablate, None)["switches"]
    assert got == ["relu", "no_pos_emb", "n_head=1"]
    rotary = "ablate rotary position embeddings against the baseline"
    assert stated_values({"switches": ["rope", "no_pos_emb"]}, rotary, "ablate_gpt", ablate, None)[
        "switches"
    ] == ["rope"]


def test_my_favourite_setting_takes_the_number_a_kept_memory_states():
    from scratchlab.tools.gpt import SampleGPTArgs, TrainGPTArgs

    sample, gpt = SampleGPTArgs.model_json_schema(), TrainGPTArgs.model_json_schema()
    kept = ["I like 8 heads", "my favourite sampling temperature is 0.7"]
    assert remembered_numbers("sample 60 tokens at my favourite temperature", kept, "sample_gpt", sample, None) == {
        "temperature": 0.7}  # fmt: skip
    assert (
        remembered_numbers("sample at temperature 0.9", kept, "sample_gpt", sample, None) == {}
    )  # said here
    assert (
        remembered_numbers("sample at a temperature you like", kept, "sample_gpt", sample, None) == {}
    )  # not "my"
    assert remembered_numbers("a gpt with my usual number of heads", kept, "train_gpt", gpt, None) == {
        "n_head": 8
    }
    # the pointer reaches every setting of its phrase: "my usual width and the count of heads"
    shape = ["my go-to shape: 3 layers, 6 heads"]
    said = "train a gpt with my usual layers and the count of heads, 80 steps"
    assert remembered_numbers(said, shape, "train_gpt", gpt, None) == {"n_layer": 3, "n_head": 6}
    said = "train a gpt with my usual layers, then the heads you think best"
    assert remembered_numbers(said, shape, "train_gpt", gpt, None) == {"n_layer": 3}  # another phrase
    # a demonstrative points at the kept preference as "my" does (c22-11 t2)
    from scratchlab.tools.tokenizer import TrainTokenizerArgs

    tok, fav = TrainTokenizerArgs.model_json_schema(), ["my favourite vocab size is 640"]
    said = "build a tokeniser from shakespeare at that favourite size, name it volga"
    assert remembered_numbers(said, fav, "train_tokenizer", tok, None) == {"vocab_size": 640}
    assert (
        remembered_numbers("build a tokeniser from shakespeare, any size", fav, "train_tokenizer", tok, None)
        == {}
    )
    # a kept fact with one number that names the setting: "samples" stands nearer to 1234 than "seed"
    seed = ["please remember my preferred seed for samples is 1234"]
    assert remembered_numbers("sample from it using my usual seed", seed, "sample_gpt", sample, None) == {
        "seed": 1234
    }
    assert remembered_numbers("sample with my usual temperature", seed, "sample_gpt", sample, None) == {}


def test_a_stated_list_is_one_setting_however_many_the_model_wrote():
    from scratchlab.tools.sweep import SweepGPTArgs

    sweep = SweepGPTArgs.model_json_schema()
    model = {"search": ["n_embd=300,500,800", "vocab_size=300,500,800"]}
    out = stated_values(model, "try vocab sizes 300, 500 and 800, 5 minute budget", "sweep_gpt", sweep, None)
    assert out["search"] == ["vocab_size=300,500,800"]


@pytest.mark.parametrize(
    "text, path",
    [("index ../shared/seeds", "../shared/seeds"), ("train a tokenizer on notes.txt", "notes.txt"),
     ("fine-tune on data/qa.jsonl with rank 8", "data/qa.jsonl"), ("index docs/ and ~/notes", None),
     ("train a tokenizer on shakespeare", None), ("a tokenizer on shakespeare w/ 300 vocab", None)],
)  # fmt: skip
def test_stated_path(text, path):
    assert stated_path(text) == path


def test_quoted_text_names_and_prompts():
    assert stated_quote("encode 'To be or not to be' with it") == "To be or not to be"
    assert stated_quote("ask the adapter: what is BPE?") == "what is BPE?"
    assert stated_quote("set lr: 3e-4") is None
    # an apostrophe inside a word closes nothing; special tokens stay in the text
    said = "encode 'All the world's a stage<|endoftext|>' with volga"
    assert stated_quote(said) == "All the world's a stage<|endoftext|>"
    assert stated_quote("encode \u201chello there\u201d") == "hello there"  # curly quotes
    assert stated_quote("compare 'a b' and 'c d'") is None  # two quotes: the model's call
    assert stated_name("train a 300 token tokenizer and call it haiku-bpe") == "haiku-bpe"
    assert stated_name("name the run lyrics-v1 please") == "lyrics-v1"
    assert stated_name("what is it called?") is None
    assert stated_name("make them searchable and call the thing 'exhibits'.") == "exhibits"  # quotes mark it
    # "as X" ending its clause names the new artifact; "as well", "as a baseline", "as before" do not
    assert stated_name("index ~/notes/bees as hives") == "hives"
    assert stated_name("index ../docs as primer, then tell me about DPO") == "primer"
    assert (
        stated_name("index my notes as well") is None and stated_name("a tokenizer the same as tok-1") is None
    )
    assert stated_name("train it as a baseline") is None and stated_name("do it as before, quickly") is None


def test_a_version_number_in_a_name_is_no_setting():
    tok = {"properties": {"vocab_size": {"type": "integer"}}}
    text = "train a 500-token tokenizer on shakespeare, splitting words the GPT-2 way"
    assert stated_numbers(text, "train_tokenizer", tok, None) == {}  # no own-name word next to 500
    b = bank(
        ("a 300 token tokenizer", "train_tokenizer", {"vocab_size": 300}),
        ("gpt style 1000 vocab", "train_tokenizer", {"vocab_size": 1000}),
    )  # "gpt" labels a vocab size
    assert stated_numbers(text, "train_tokenizer", tok, b) == {
        "vocab_size": 500
    }  # the 2 of GPT-2 is not a value


def test_a_stated_list_of_values_becomes_a_search_spec_named_by_the_schema_words():
    from scratchlab.tools.sweep import SweepGPTArgs

    schema = SweepGPTArgs.model_json_schema()
    got = stated_values({"search": ["vocab_size"], "n_embd": 256}, "try vocab 256, 512 and 1024 and tell me which "
                        "is best", "sweep_gpt", schema, None)  # fmt: skip
    assert got == {"search": ["vocab_size=256,512,1024"]}  # 256 was a value of the list, not a width
    got = stated_values({}, "try 2, 4 or 6 layers with dropout 0.1", "sweep_gpt", schema, None)
    assert got == {"search": ["n_layer=2,4,6"], "dropout": 0.1}
    # the "and" closes a list: the 2 after the comma labels its own setting
    assert value_lists("sweep lr 1e-3 and 3e-3, 2 layers")[0][0] == [1e-3, 3e-3]
    # a word past another number labels that number, not the list: "..., 900 steps each"
    assert value_lists("which rate? try 1e-3 and 3e-3, 900 steps each") == [
        ([1e-3, 3e-3], ["rate_try", "try", "rate"])
    ]
    assert (
        value_lists("train 2 layers, 64 wide for 1,000 steps") == []
    )  # numbers, but each with its own label
    # the numbers of a name are no list: "rank for smollm2-135m" lists no 2 and 135
    assert value_lists("tune the rank for smollm2-135m, 15 minutes") == []
    assert value_lists("rank 4, 8 or 16 on qwen2.5-0.5b")[0][0] == [4.0, 8.0, 16.0]
    # a list that names no setting of the schema changes nothing
    assert stated_values({"search": ["lr"]}, "try 3 and 5 of them", "sweep_gpt", schema, None) == {
        "search": ["lr"]
    }


def test_a_pair_of_heads_is_two():
    got = stated_numbers("only one layer, a pair of heads, width 32, 100 steps", "train_gpt", GPT, None)
    assert got["n_head"] == 2 and got["n_layer"] == 1  # "steps" is taught by the bank
    got = stated_numbers("one layer and a couple of heads, d=32, 80 steps", "train_gpt", GPT, None)
    assert got["n_head"] == 2 and got["n_layer"] == 1
    assert [v for v, _ in number_contexts("a couple runs, a pair of heads")] == [2.0]  # "couple" needs "of"


def test_an_enum_value_misspelt_by_one_slip_is_still_named():
    from scratchlab.tools.core import ListArtifactsArgs
    from scratchlab.tools.sweep import SweepGPTArgs

    assert stated_enum("list artifacts, tokenziers only", ListArtifactsArgs.model_json_schema()) == {
        "kind": "tokenizer"
    }
    assert "pruner" not in stated_enum(
        "sweep lr, having 8 trials", SweepGPTArgs.model_json_schema()
    )  # too short


def test_shorthand_keys_glued_to_their_numbers_and_initials_label_them():
    from scratchlab.tools.tokenizer import TrainTokenizerArgs

    # without a bank only the names' own words label: lr and iters, each glued to its own number
    got = stated_numbers("gpt L6 H6 d384 ctx256 bs32 lr6e-4 iters5k bg", "train_gpt", GPT, None)
    assert got == {"lr": 0.0006, "max_iters": 5000}
    assert stated_numbers("train on bard350 for 200 iters", "train_gpt", GPT, None) == {
        "max_iters": 200
    }  # a name
    tok = TrainTokenizerArgs.model_json_schema()
    assert stated_numbers("tok train vs=700 pat=none", "train_tokenizer", tok, None) == {"vocab_size": 700}
    # initials two arguments share name neither: bs is batch_size's and block_size's
    assert stated_numbers("gpt bs=32", "train_gpt", GPT, None) == {}


def test_settings_named_by_word_alone_join_the_search_in_the_requests_order():
    from scratchlab.tools.sweep import SweepGPTArgs, SweepLoraArgs

    gpt, lora = SweepGPTArgs.model_json_schema(), SweepLoraArgs.model_json_schema()
    text = "at two layers, which embedding width and learning rate is best? 10 trials"
    got = stated_values({"n_layer": 2, "n_trials": 10}, text.replace("two", "2"), "sweep_gpt", gpt, None)
    assert got["search"] == ["n_embd", "lr"] and got["n_layer"] == 2  # a setting with a value is fixed
    # the model's own spec for a named setting is kept, and what else it wrote follows
    got = stated_values({"search": ["dropout", "lr=1e-4..1e-2"]}, "sweep the learning rate and the batch size",
                        "sweep_gpt", gpt, None)  # fmt: skip
    assert got["search"] == ["lr=1e-4..1e-2", "batch_size", "dropout"]
    # a plain name is the kind's own prefixed setting: a LoRA sweep has lora_dropout, no dropout
    assert named_settings("a LoRA sweep over rank and dropout", lora["properties"]["search"]) == [
        "r",
        "lora_dropout",
    ]
    # a number after a comma is another phrase's: "dropout, 8 trials" searches dropout
    got = named_settings(
        "sweep lora on smollm2-135m over rank and dropout, 8 trials", lora["properties"]["search"]
    )
    assert got == ["r", "lora_dropout"]
    # a number that another argument's word follows is that argument's: "batch size: 12 trials"
    said = "tune width and batch size - 12 trials, 80 iters"
    assert stated_values({}, said, "sweep_gpt", gpt, None)["search"] == ["n_embd", "batch_size"]
    assert named_settings(said, gpt["properties"]["search"]) == ["n_embd"]  # no other argument's words given
    search = gpt["properties"]["search"]
    assert named_settings("find a good learning rate, but don't touch the batch size", search) == ["lr"]
    assert named_settings("a width of 64 and 4 layers, 8 heads: sweep nothing else", search) == []
    assert named_settings("tune the batch size and context length over 6 trials", search) == [
        "batch_size",
        "block_size",
    ]
    # the request's values are the fixed arguments; what it says is not a search unless a setting's word is there
    assert set_by_request(text.replace("two", "2"), "sweep_gpt", gpt, None).get("search") is None


def test_a_number_spent_on_one_argument_is_not_also_the_models_value_of_another():
    from scratchlab.tools.tokenizer import TrainTokenizerArgs

    schema = TrainTokenizerArgs.model_json_schema()
    text = "train a tokenizer on shakespeare with 200 merges"
    assert stated_values({"vocab_size": 200}, text, "train_tokenizer", schema, None) == {"num_merges": 200}
    assert TrainTokenizerArgs(num_merges=200).vocab_size == 456  # 256 bytes + 200 merges
    assert stated_values({"vocab_size": 400}, "a 400-token tokenizer", "train_tokenizer", schema, None) == {
        "vocab_size": 400
    }


def test_a_number_the_model_put_in_more_arguments_than_the_request_writes_it_goes_from_all():
    text = "keep changing one setting till the val loss is under 1.8, give up after 20 min"
    guessed = {"n_layer": 20, "n_head": 20, "n_embd": 20, "max_iters": 20, "lr": 1.8}
    assert stated_values(guessed, text, "train_gpt", GPT, None) == {"lr": 1.8}
    # ... but not from the one whose name the request says
    tok = {"properties": {"vocab_size": {"type": "integer"}, "num_merges": {"type": "integer"}}}
    said = "a tokeniser with 333 entries in its vocabulary"
    assert stated_values({"vocab_size": 333, "num_merges": 333}, said, "train_tokenizer", tok, None) == {
        "vocab_size": 333}  # fmt: skip
    # written twice, used twice: both stay
    assert stated_values({"n_layer": 2, "n_head": 2}, "2 layers and 2 heads", "train_gpt", GPT, None) == {
        "n_layer": 2, "n_head": 2}  # fmt: skip
    # a part of its name that a sibling shares says nothing: "LoRA-tune" is no lora_alpha's label
    lora = {"properties": {"r": {"type": "integer"}, "lora_alpha": {"type": "number"},
                           "lora_dropout": {"type": "number"}}}  # fmt: skip
    said = "LoRA-tune it at r 2"
    assert stated_values({"r": 2, "lora_alpha": 2}, said, "finetune_lora", lora, None) == {"r": 2}
    assert stated_values({"r": 2, "lora_alpha": 2}, "r 2, alpha 2", "finetune_lora", lora, None) == {
        "r": 2, "lora_alpha": 2}  # fmt: skip


@pytest.mark.parametrize(
    "text, code",
    [
        ("Run this python: import math; print(math.factorial(20))", "import math; print(math.factorial(20))"),
        ("run print(2**10).", "print(2**10)"),
        ("execute: for i in range(3): print(i)", "for i in range(3): print(i)"),
        ("compute the 20th fibonacci number", None),  # nothing written out: the model writes it
        ("what is 2 + 2?", None),  # English that parses ("what is 2 + 2") calls nothing
        ("run python to count words in notes.txt", None),
        ("print(1) and then tell me what it printed", None),  # the code must be the request's tail
    ],
)
def test_stated_code(text, code):
    assert stated_code(text) == code


def test_function_words_and_the_models_noun_label_no_number():
    taught = bank(("train a 2-layer gpt", "train_gpt", {"n_layer": 2}), ("a 4-layer gpt", "train_gpt", {"n_layer": 4}),
                  ("the same but 300 steps", "train_gpt", {"max_iters": 300}),
                  ("a gpt 64 wide", "train_gpt", {"n_embd": 64}))  # fmt: skip
    assert "but" not in dict(number_contexts("the same but 32 wide"))[32.0]
    assert stated_numbers("train the same gpt but 32 wide instead", "train_gpt", GPT, taught) == {
        "n_embd": 32
    }
    assert stated_numbers("a 2-layer gpt", "train_gpt", GPT, taught) == {
        "n_layer": 2
    }  # its own word still counts
    assert [v for v, _ in number_contexts("good, train one of those for 150 steps")] == [150.0]
    assert [v for v, _ in number_contexts("train one like that on shakespeare for 120 steps")] == [120.0]
    assert [v for v, _ in number_contexts("make one with 4 heads")] == [4.0]
    assert [v for v, _ in number_contexts("just one layer")] == [1.0]  # a number still
    # "one" after a word that points is one picked out: "call that one wren2" set no n_layer 1
    assert [v for v, _ in number_contexts("give it 2 layers instead and call that one wren2")] == [2.0]
    assert [v for v, _ in number_contexts("which one has 4 heads?")] == [4.0]
    assert [v for v, _ in number_contexts("train a one layer model")] == [1.0]
    # a number next to a vague noun counts things: "changing one thing per attempt" set max_iters 1
    research = {
        "properties": {"max_iters": {"type": "integer", "minimum": 1}, "plateau": {"type": "integer"}}
    }
    assert stated_numbers("change one thing per attempt, 300 iters each", "research_gpt", research, None) == {
        "max_iters": 300}  # fmt: skip


def test_a_flag_said_without_a_negation_is_set():
    wait = {"properties": {"wait": {"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": True}}}
    assert stated_values({}, "the same but 32 wide, and wait for it this time", "train_gpt", wait, None) == {
        "wait": True
    }
    assert stated_values({"wait": False}, "in the background, dont wait on it", "train_gpt", wait, None) == {
        "wait": False
    }
    for text in ("no wait, make it 3 layers", "run it in the background, don't wait", "train it again"):
        assert "wait" not in stated_values({}, text, "train_gpt", wait, None), text


def test_a_word_labels_only_numbers_of_its_own_phrase():
    ctx = dict(number_contexts("train a 64-wide gpt with that many heads, 120 steps"))
    assert "heads" not in ctx[120.0] and "steps" in ctx[120.0]  # "that many heads" names no number here
    assert dict(number_contexts("6 layers, 8 heads"))[6.0] == {"layers": 1.0}
    said = "grid over vocab 256 and 512 - no early stopping of bad trials - 300 steps per trial"
    assert "trials" not in dict(number_contexts(said))[300.0]  # a spaced dash ends a phrase as a comma does
    assert dict(number_contexts("lr: 3e-4"))[3e-4] == {"lr": 1.0}
    assert stated_numbers("a 2-layer gpt with that many heads, 120 steps", "train_gpt", GPT, None) == {
        "n_layer": 2
    }


def test_a_number_outside_an_arguments_bounds_is_not_its_number():
    """ "bs 8 | lr 6e-4": "lr" stands halfway between 8 and 6e-4, and the reading that gave it 8 won;
    the schema's bounds (lr in (0, 1], as the tool schema now carries them) rule 8 out."""
    from scratchlab.tools.gpt import TrainGPTArgs

    schema = TrainGPTArgs.model_json_schema()
    assert stated_numbers("gpt ctx 256 | bs 8 | lr 6e-4", "train_gpt", schema, None)["lr"] == 6e-4
    unbounded = {"properties": {"lr": {"type": "number"}, "batch_size": {"type": "integer"}}}
    bounded = {"properties": {"lr": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                              "batch_size": {"type": "integer"}}}  # fmt: skip
    assert stated_numbers("16 lr", "train_gpt", unbounded, None) == {"lr": 16}
    assert stated_numbers("16 lr", "train_gpt", bounded, None) == {}


def test_a_list_ends_at_a_dash_or_at_the_end_of_the_request():
    """ "r=4,8 - 2 trials" swept r over 4, 8 and 2: the dash ends the list, and "4,8" at the very end
    of a clause is no thousands grouping."""
    assert value_lists("lora sweep on demo data: r=4,8 - 2 trials") == [([4.0, 8.0], ["data_r", "r", "data"])]
    assert value_lists("sweep r=4,8")[0][0] == [4.0, 8.0]
    assert value_lists("train for 1,000 steps") == []  # one number, grouped
    # a preposition labels nothing: the two words before "over" name the list ("learning rate")
    assert value_lists("grid-search the learning rate over 2e-3 and 6e-3")[0][1][0] == "learning_rate"
    # a list set by name is a list though its groups have three digits: n_embd=64,128 is not 64128
    assert [v for v, _ in value_lists("sweep lr=5e-4,2e-3 x n_embd=64,128 | grid")] == [
        [5e-4, 2e-3],
        [64.0, 128.0],
    ]


def test_asking_for_the_kept_settings_without_naming_one_takes_every_number_a_memory_states():
    from scratchlab.tools.gpt import SampleGPTArgs

    sample = SampleGPTArgs.model_json_schema()
    kept = ["I like my samples at temperature 0.6 with top_k 25", "I like 8 heads"]
    asked = "sample from it with my go-to settings"
    assert remembered_numbers(asked, kept, "sample_gpt", sample, None) == {}  # no argument named
    assert remembered_numbers(asked, kept, "sample_gpt", sample, None, every=True) == {
        "temperature": 0.6, "top_k": 25}  # fmt: skip
    said = "sample 80 tokens at temperature 0.9 with my go-to settings"  # what the request says wins
    assert remembered_numbers(said, kept, "sample_gpt", sample, None, every=True) == {"top_k": 25}


def test_the_kept_flag_is_read_from_the_bank_files(tmp_path):
    from agent_fakes import WordEmbedder

    (tmp_path / "rows.jsonl").write_text(
        '{"request": "sample with my go-to settings", "action": "sample_gpt", "kept": true}\n'
        '{"request": "sample with my usual setup", "action": "sample_gpt", "kept": true}\n'
        '{"request": "sample 50 tokens from gpt-1", "action": "sample_gpt"}\n'
        '{"request": "sample at temperature 0.7", "action": "sample_gpt"}\n'
    )
    b = Bank(load_examples(tmp_path), embedder=WordEmbedder())
    assert b.flag("sample from it with my go-to setup", "kept") > 0.5
    assert b.flag("sample at temperature 0.9", "kept") < 0.5


def test_a_string_argument_set_by_its_own_name_takes_the_value():
    from scratchlab.agent.extract import stated_pairs

    props = {"index": {"anyOf": [{"type": "string"}, {"type": "null"}]}, "query": {"type": "string"},
             "mode": {"anyOf": [{"enum": ["hybrid", "dense", "bm25"], "type": "string"}, {"type": "null"}]},
             "run": {"type": "string"}, "prompt": {"type": "string"}, "k": {"type": "integer"}}  # fmt: skip
    params = {"properties": props}
    assert stated_pairs("search index=exhibits k=8 mode=bm25 query='bronze age sword'", params) == {
        "index": "exhibits", "mode": "bm25", "query": "bronze age sword"}  # fmt: skip
    assert stated_pairs('sample run=gpt-7 prompt="Captain\'s log:" temp=0.7', params) == {
        "run": "gpt-7", "prompt": "Captain's log:"}  # fmt: skip
    assert (
        stated_pairs("mode=fuzzy k=8 =3 model=x", params) == {}
    )  # not an option, a number, no key, no argument


def test_an_unquoted_text_that_describes_the_users_own_text_is_no_text():
    clause = "what are the token ids for the opening line of my novel?"
    assert described_text("the opening line of my novel", clause)
    assert not described_text("my cat sat", "encode 'my cat sat' with tk-1")  # quoted: the text
    assert not described_text("hello world", "encode hello world")  # no owner: given outright
    assert not described_text("my cat sat", "now the same phrase with cl100k")  # said before


def test_numbers_labelled_on_either_side_of_a_comma_are_no_list():
    """ "width 32, 50 steps each trial" swept n_embd over 32 and 50: each number has its own label."""
    known = {"width": "n_embd", "lr": "lr", "steps": "max_iters"}
    assert value_lists("one layer, width 32, 50 steps each trial", known) == []
    assert value_lists("one layer, width 32, 50 steps each trial")[0][0] == [32.0, 50.0]  # no labels known
    assert [v for v, _ in value_lists("sweep lr 1e-3, 3e-3 steps 50", known)] == [
        [1e-3, 3e-3]
    ]  # steps labels 50
    assert [v for v, _ in value_lists("width 32, 64 and 128 steps", known)] == [
        [32.0, 64.0, 128.0]
    ]  # "and" closes


def test_the_new_artifacts_name_said_as_the_verbs_object():
    from scratchlab.agent.extract import object_name, stated_name

    ex = [Example(id=f"e{i}", request=r, action="train_gpt") for i, r in enumerate(
        ["train a gpt on shakespeare", "train a char model", "fit a gpt to data/x.txt", "fit a small one",
         "a gpt on shakespeare please", "a tiny model"])]  # fmt: skip
    b = Bank(ex, embedder=object())
    assert object_name("train clover on shakespeare characters: one block", "train_gpt", b) == "clover"
    assert object_name("train sorrel: shakespeare, 1 block", "train_gpt", b) == "sorrel"
    assert object_name("train a gpt on shakespeare", "train_gpt", b) is None  # words the bank knows
    assert object_name("a whimsical gpt on shakespeare", "train_gpt", b) is None  # "a" is no verb
    assert object_name("train clover on it", "sample_gpt", b) is None  # no request for it opens so
    # a first word the bank never saw, heading the request before a colon: the name of what is made
    assert object_name("solstice: 3 layers, 96 wide, 400 steps", "train_gpt", b) == "solstice"
    assert object_name("train: 3 layers, 400 steps", "train_gpt", b) is None  # a word the bank knows
    # "as" names nothing when a word any request says follows it; the naming word skips "the result"
    assert stated_name("train sorrel: shakespeare, characters as tokens, 1 block", {"tokens"}) is None
    assert stated_name("index ~/notes as hives", {"tokens"}) == "hives"
    assert stated_name("and let's call the result glazetok.") == "glazetok"
    assert stated_name("call that one wren2, keep everything else") == "wren2"
    # past a particle, or "new" and the kind's noun; an arrow names the result
    more = ["kick off a gpt", "kick off a char model", "new run on shakespeare", "new gpt on data/x.txt"]
    kick = Bank([*ex, *(Example(id=f"k{i}", request=r, action="train_gpt") for i, r in enumerate(more))],
                embedder=object())  # fmt: skip
    assert object_name("kick off sencha in the background", "train_gpt", kick) == "sencha"
    assert object_name("new run fandango: 6 layers", "train_gpt", kick) == "fandango"
    assert object_name("kick off a gpt", "train_gpt", kick) is None
    assert stated_name("lora r32 alpha 64 base smollm2-135m data data/x.jsonl -> hula") == "hula"
    assert stated_name("use a grid, and label the sweep foxtrot") == "foxtrot"
    assert stated_name("make ~/papers searchable and label it attn-papers") == "attn-papers"


def test_a_name_run_together_labels_its_number():
    # "topk 30 seed 7" gave seed 30: "topk" was no word of top_k's, so "seed" took the 30 beside it
    sample = {"properties": {k: {"type": "integer"} for k in ("max_new_tokens", "top_k", "seed")}}
    got = stated_numbers("samp gpt-6 n=120 topk 30 seed 7", "sample_gpt", sample, None)
    assert got["top_k"] == 30 and got["seed"] == 7


def test_a_count_said_with_of_needs_it_and_a_label_of_another_number_names_nothing():
    # "a byte-pair vocabulary ... 3000 entries" read a 2 from "pair", and two values set no vocab_size
    assert [v for v, _ in number_contexts("a pair of heads, a byte-pair vocabulary")] == [2.0]
    b = Bank(load_examples(), embedder=object())
    text = "build me a byte-pair vocabulary from data/glaze_notes.txt, something like 3000 entries"
    assert stated_numbers(text, "train_tokenizer", TOK, b) == {"vocab_size": 3000}
    # the model's block_size=120 beside "120 steps": "block" labels the 1 (n_layer), not the 120
    text = "train clover on shakespeare: one block, 2 heads, 32 dims, 120 steps"
    model = {"n_layer": 1, "n_head": 2, "n_embd": 32, "max_iters": 120, "block_size": 120}
    got = stated_values(model, text.replace("one block", "1 block"), "train_gpt", GPT, b)
    assert "block_size" not in got and got["max_iters"] == 120
    assert stated_values({**model, "block_size": 64}, text, "train_gpt", GPT, b)["block_size"] == 64


def test_a_run_of_whole_numbers_is_the_token_ids_the_request_states():
    from scratchlab.tools.tokenizer import DecodeTokensArgs

    decode = DecodeTokensArgs.model_json_schema()
    said = "now turn 70, 108, 105, 110, 116 back into text with the same tokenizer"
    assert stated_integer_list(said) == [70, 108, 105, 110, 116]
    assert stated_integer_list("decode [256,300,301] using lamp1k") == [256, 300, 301]  # no spaces
    assert stated_integer_list("decode [300] with fern") == [300]  # brackets make one a list
    assert stated_integer_list("decode [70, 108] and [1, 2]") is None  # two lists: the model's call
    assert stated_integer_list("lr 0.1, 0.2 and 0.3") is None  # not whole numbers
    assert set_by_request(said, "decode_tokens", decode, None) == {"ids": [70, 108, 105, 110, 116]}
    assert "ids" not in set_by_request("train 2 layers, 4 heads", "train_gpt", GPT, None)  # no list argument


def test_a_name_cut_short_before_its_number_labels_it():
    sample = {"properties": {"max_new_tokens": {"type": "integer"}, "temperature": {"type": "number"},
                             "top_k": {"type": "integer"}, "seed": {"type": "integer"}}}  # fmt: skip
    assert stated_numbers("200 tokens, temp 0.9", "sample_gpt", sample, None) == {
        "max_new_tokens": 200, "temperature": 0.9}  # fmt: skip
    assert stated_numbers("see 3", "sample_gpt", sample, None) == {}  # three letters clip no name


def test_one_before_a_word_that_is_no_setting_points_at_a_model():
    from scratchlab.agent.bank import number_readings

    keys = {"layer", "layers", "heads", "head", "steps"}
    assert number_readings("train one using my usual width, 2 layers", keys)[0][0][0] == 2.0  # no 1
    assert number_readings("one normal model, 300 steps", keys)[0][0][0] == 300.0
    assert number_readings("one layer, 300 steps", keys)[0][0][0] == 1.0  # a setting's noun follows
    assert number_readings("train one using my usual width")[0][0][0] == 1.0  # no setting words: as before


def test_a_setting_refused_by_name_is_zero():
    from scratchlab.tools.lora import FinetuneLoraArgs

    lora = FinetuneLoraArgs.model_json_schema()
    assert refused_numbers("rank 8, no dropout, 90 steps", lora) == {"lora_dropout": 0.0}
    assert (
        stated_values({"lora_dropout": 0.1}, "rank 8 without dropout", "finetune_lora", lora, None)[
            "lora_dropout"
        ]
        == 0.0
    )  # over the model's value
    assert refused_numbers("an adapter with no rank", lora) == {}  # a rank of 0 is out of its bounds
    assert refused_numbers("don't change the dropout", lora) == {}  # a negated verb, not "no <setting>"
    assert refused_numbers("a run with no dropout", GPT) == {"dropout": 0.0}


def test_a_name_written_without_its_vowels_labels_its_number():
    assert (
        _skeleton_of("lyrs", "layer")
        and _skeleton_of("ctxt", "context")
        and _skeleton_of("tmp", "temperature")
    )
    assert not _skeleton_of("lrs", "lr") and not _skeleton_of("hd", "head")  # too short: initials' work
    assert not _skeleton_of("tap", "temperature") and not _skeleton_of(
        "mlt", "temperature"
    )  # a vowel; 1st letter
    got = stated_numbers("gpt with 3 lyrs and 4 hds, emb 96, ctxt 48", "train_gpt", GPT, None)
    assert got == {"n_layer": 3, "n_head": 4, "n_embd": 96}  # "ctxt": no argument's name says context


def test_a_reading_that_gives_one_setting_two_values_loses_to_one_that_gives_each_one():
    # "ds" stands between 0.1 and a path; a bank that taught "ds" to lr read lr twice and kept neither
    taught = Bank([Example("gpt lr 3e-4 ds shakespeare", "train_gpt", {"lr": 3e-4})] * 2, embedder=object())
    got = stated_numbers("gpt lr 6e-4 drop 0.1 ds data/caravan_routes.txt", "train_gpt", GPT, taught)
    assert got == {"lr": 6e-4, "dropout": 0.1}


def test_a_path_is_a_value_whose_words_label_no_number():
    contexts = number_contexts("train 300 steps data/bard_lines.txt with 4 layers")
    assert contexts == [(300.0, {"train": 1.0, "steps": 1.0}), (4.0, {"layers": 1.0})]  # no "data", "txt"
    # "ds" halfway between the number and the path: the plain reading gives it to the number, the
    # flipped one to the path
    assert number_contexts("0.1 ds ~/notes/x.md") == [(0.1, {"ds": 1.0})]
    assert number_contexts("0.1 ds ~/notes/x.md", flip=1) == [(0.1, {})]


def test_a_list_whose_first_member_carries_its_label_is_one_list():
    # "2 layers, 4, or 6? give each a go" read [4, 6] at best, and a single run took 6 as its steps
    said = "which depth suits it - 2 layers, 4, or 6? give each a go"
    assert value_lists(said)[0][0] == [2.0, 4.0, 6.0] and value_lists(said)[0][1][0] == "layers"
    assert value_lists("try 2 layers, 4 or 6")[0][0] == [2.0, 4.0, 6.0]
    assert value_lists("2 layers, 4 heads, 6 steps") == []  # each number has its own label
    assert value_lists("sample 200 tokens, 3 times") == []


def test_the_tool_that_holds_a_stated_list_wins_when_the_prior_likes_it_better():
    from scratchlab.agent.extract import list_tool

    search = {"type": "array", "description": "Settings to search. Names: n_layer (layers, depth); lr."}
    tools = {
        "train_gpt": {"parameters": GPT},
        "sweep_gpt": {"parameters": {"properties": {"search": search}}},
    }
    said = "which depth suits a char model - 2 layers, 4, or 6? give each a go"
    assert list_tool("train_gpt", {"sweep_gpt": 0.52, "train_gpt": 0.36}, tools, said) == "sweep_gpt"
    assert (
        list_tool("train_gpt", {"sweep_gpt": 0.2, "train_gpt": 0.7}, tools, said) is None
    )  # the prior disagrees
    assert list_tool("sweep_gpt", {"sweep_gpt": 0.52}, tools, said) is None  # it holds the list
    assert list_tool("train_gpt", {"sweep_gpt": 0.9}, tools, "train 2 layers, 4 heads") is None  # no list


def test_a_range_of_values_for_a_setting_is_one_low_high_spec():
    from scratchlab.agent.extract import stated_ranges

    search = {
        "type": "array",
        "description": "Settings. Names: lr (learning_rate); n_layer (layers); dropout.",
    }
    sweep = {
        "properties": {"search": search, "n_layer": {"type": "integer"}, "budget_minutes": {"type": "number"}}
    }
    # "sweep lr 1e-4..3e-3, ..." searched "lr" alone, over the tool's default range
    got = stated_values({}, "sweep lr 1e-4..3e-3, 20 min budget, 2 layers", "sweep_gpt", sweep, None)
    assert got["search"] == ["lr=1e-4..3e-3"] and got["n_layer"] == 2
    # the same range written as the spec, beside another spec: the model's bare "lr" gives way
    said = "sweep dropout=0..0.3 and width=64,128, 8 trials"
    assert stated_values({"search": ["dropout", "n_embd=64,128"]}, said, "sweep_gpt", sweep, None)["search"] == [
        "dropout=0..0.3", "n_embd=64,128"]  # fmt: skip
    assert stated_ranges("the learning rate from 1e-4 to 3e-3", sweep)[0] == {
        "search": [("lr", "1e-4..3e-3")]
    }
    assert stated_ranges("dropout between 0 and 0.3", sweep)[0] == {"search": [("dropout", "0..0.3")]}
    # a range is no single value: "2 to 6 layers" sets no n_layer
    got = stated_values({"search": ["n_layer=2,4"]}, "try 2 to 6 layers", "sweep_gpt", sweep, None)
    assert got == {"search": ["n_layer=2..6"]}
    assert stated_ranges("train for 2 to 3 minutes", sweep)[0] == {}  # no setting the search names


def test_a_pointing_word_in_the_phrase_before_does_not_make_one_a_pronoun():
    # "one" after "that" points ("keep that one"); after a dash ends the phrase with "that", it counts
    assert number_contexts("as wide as that; one block, 2 heads") == [
        (1.0, {"block": 1.0}),
        (2.0, {"heads": 1.0}),
    ]
    assert number_contexts("sample from that one") == []


def test_more_labels_no_number():
    # "repeat it, but add one more variant" took max_iters=1: the bank had learned "more" from "500 more steps"
    assert number_contexts("add two more variants") == [(2.0, {"add": 1.0, "variants": 0.5})]
    assert number_contexts("add one more variant") == []  # "one more": one of something, no setting's value
    assert stated_numbers("train 500 more iters", "train_gpt", GPT, None) == {"max_iters": 500}


def test_a_list_with_no_settings_word_beside_it_goes_to_the_one_setting_named_alone():
    search = {
        "type": "array",
        "description": "Settings. Names: dropout; n_layer (layers); lr (learning_rate).",
    }
    sweep = {"properties": {"search": search, "n_layer": {"type": "integer"}}}
    said = "Which dropout suits a 3-layer model best: 0, 0.1 or 0.2? Use a grid"
    assert stated_values({}, said, "sweep_gpt", sweep, None)["search"] == ["dropout=0,0.1,0.2"]
    # two settings named alone: whose list is it?
    assert stated_values({}, "dropout or lr, which matters? 0, 0.1 or 0.2", "sweep_gpt", sweep, None)["search"] == [
        "dropout", "lr"]  # fmt: skip
    # a setting named by a word the bank taught its own argument ("deep"), and no setting named by its
    # own words; a negation's reach ends where a clause of its own opens ("not sure how deep")
    b = bank(
        ("sweep it 3 deep", "sweep_gpt", {"n_layer": 3}), ("sweep at 5 deep", "sweep_gpt", {"n_layer": 5})
    )
    said = "not sure how deep it should go - give 2, 4 and 6 a try"
    assert set_by_request(said, "sweep_gpt", sweep, b)["search"] == ["n_layer=2,4,6"]
    assert negated(tokens("not sure which lr to use")) == {1}  # "which lr ...": a clause of its own
    assert negated(tokens("no dropout")) == {1}


def test_a_list_written_without_spaces_gives_no_one_setting_a_value():
    from scratchlab.agent.extract import packed_list, stated_ranges
    from scratchlab.tools.sweep import SweepGPTArgs

    sweep = SweepGPTArgs.model_json_schema()
    assert packed_list("2,4,8") and packed_list("16,32,") and packed_list("bs=8,16")
    assert not packed_list("1,000") and not packed_list("8") and not packed_list("bs=8")
    said = set_by_request("sweep heads 2,4,8 at 200 iters each", "sweep_gpt", sweep, None)
    assert "n_head" not in said  # "heads" labels the list, not its first number
    assert said["max_iters"] == 200
    assert set_by_request("sweep 4 heads at 200 iters each", "sweep_gpt", sweep, None)["n_head"] == 4
    # the range's setting word labels the range, not also the list before it
    assert set_by_request("sweep heads 2,4,8 & lr 3e-4..3e-3", "sweep_gpt", sweep, None)["search"] == [
        "n_head=2,4,8", "lr=3e-4..3e-3"]  # fmt: skip
    spans, used = stated_ranges("sweep learning rate 1e-4..3e-3 please", sweep)
    assert spans == {"search": [("lr", "1e-4..3e-3")]} and used == {1, 2, 3}


def test_a_count_of_records_is_labelled_by_any_noun_of_their_kind():
    from scratchlab.agent.bank import Example

    listing = {"properties": {"limit": {"anyOf": [{"type": "integer"}, {"type": "null"}],
                                        "description": "How many runs to list, newest first."}}}  # fmt: skip
    b = Bank([Example("t", "list my 5 newest runs", "list_runs", {"limit": 5}),
              Example("u", "show the 2 latest runs", "list_runs", {"limit": 2})], embedder=object())  # fmt: skip
    # the description counts runs, so "runs" labels its number, and "models" (the same kind) too
    assert stated_numbers("which 4 models did I make lately?", "list_runs", listing, b) == {"limit": 4}
    assert stated_numbers("which 4 runs did I make lately?", "list_runs", listing, b) == {"limit": 4}
    # a setting the description does not count by that noun stays unlabelled by it ("the 6-layer run")
    steps = {
        "properties": {"max_iters": {"type": "integer", "description": "Total steps the run should reach."}}
    }
    assert stated_numbers("pick the 6 run back up", "resume_gpt", steps, b) == {}


def test_a_kept_setting_is_named_by_a_word_of_its_description_the_bank_saw_label_it():
    from scratchlab.agent.bank import Example

    gpt = {"properties": {"n_layer": {"type": "integer", "description": "Number of transformer blocks (the depth)."},
                          "n_embd": {"type": "integer", "description": "Embedding width."}}}  # fmt: skip
    b = Bank([Example("t", "a gpt 2 deep", "train_gpt", {"n_layer": 2}),
              Example("u", "depth 5, width 64", "train_gpt", {"n_layer": 5, "n_embd": 64})], embedder=object())  # fmt: skip
    kept = ["I like 3 layers, width 96"]
    said = "train one with my usual depth and width"
    assert remembered_numbers(said, kept, "train_gpt", gpt, b) == {"n_layer": 3, "n_embd": 96}
    bare = {"properties": {**gpt["properties"], "n_layer": {"type": "integer", "description": "Blocks."}}}
    assert remembered_numbers(said, kept, "train_gpt", bare, b) == {"n_embd": 96}  # "depth", seen once


def test_a_count_of_a_lists_items_is_no_settings_value():
    from scratchlab.agent.bank import Example
    from scratchlab.tools.tokenizer import TrainTokenizerArgs

    schema = TrainTokenizerArgs.model_json_schema()
    b = Bank([Example("t", "a 500 token tokenizer", "train_tokenizer", {"vocab_size": 500}),
              Example("u", "tokenizer, 50 merges", "train_tokenizer", {"num_merges": 50})], embedder=object())  # fmt: skip
    said = "a 900 token tokenizer with a single special token, <|sep|>"
    assert stated_numbers(said, "train_tokenizer", schema, b) == {"vocab_size": 900}  # the 1 counts specials
