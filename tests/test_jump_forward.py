"""Jump-forward decoding: what `json_object_forcing` and `router.args_forcing` say is the only way on."""

from __future__ import annotations

from scratchlab.agent import router
from scratchlab.agent.constrained import json_object_forcing

KEYS = ["n_layer", "n_head", "lr", "lr_min", "mode"]
VALUES = {"mode": ['"bm25"', '"dense"', '"hybrid"', "null"], "n_layer": ["2", "12", "null"]}


def test_a_key_is_completed_once_it_is_the_only_one_that_fits():
    forced = json_object_forcing(KEYS, VALUES)
    assert forced('{"n') == ""  # n_layer or n_head: the model's choice
    assert forced('{"n_l') == 'ayer":'
    assert forced('{"mo') == 'de":'
    assert forced('{"lr') == ""  # lr is complete, yet lr_min starts the same way
    assert forced('{"lr_') == 'min":'
    assert forced('{"n_layer": 2, "n') == '_head":'  # n_layer is written already
    assert forced('{"n_layer"') == ":"


def test_a_closed_value_is_completed_and_a_free_one_is_left_alone():
    forced = json_object_forcing(KEYS, VALUES)
    assert forced('{"mode": "h') == 'ybrid"'
    assert forced('{"mode": ') == ""  # the first token of a value (null or one of them) is a choice
    assert forced('{"n_layer": 1') == "2"
    assert forced('{"n_layer": 2') == ""  # complete (a number may not look so, but no option goes on)
    assert forced('{"n_head": 1') == ""  # free number
    assert forced('{"mode": "bm25"') == ""  # between values: a comma or the end is the model's choice
    assert forced('{"mode": "bm25"}') == ""


def test_strings_with_quotes_commas_and_lists_are_skipped_whole():
    forced = json_object_forcing(["text", "ids", "mode"], {"mode": ['"dense"', "null"]})
    assert forced('{"text": "a \\"quoted\\", text", "ids": [1, 2], "mo') == 'de":'
    assert forced('{"text": "still open, "mo') == ""  # inside a string value: nothing is forced
    assert forced("not json") == ""


def test_args_forcing_follows_the_grounded_schema():
    params = {
        "type": "object",
        "properties": {
            "vocab_size": {"type": "integer", "default": 512},
            "lr": {"type": "number", "default": 0.001},
            "mode": {"type": "string", "enum": ["bm25", "dense", "hybrid"], "default": "hybrid"},
            "name": {"type": "string"},
        },
        "required": ["name"],
    }
    forced = router.args_forcing(params, "name it tk, vocab 1024, lr 3e-4, hybrid search")
    assert forced('{"vo') == 'cab_size":'
    assert forced('{"vocab_size": 1') == "024"  # the only number of the request that fits an integer
    assert forced('{"lr": 3') == "e-4"  # the request's own spelling is admitted beside 0.0003
    assert forced('{"name": "t') == ""  # a new name is free text


def test_a_name_the_request_does_not_spell_is_closed_as_soon_as_that_is_certain():
    forced = json_object_forcing(["name", "n_layer"], {}, {"name": "train a gpt and call it tiny-owl"})
    assert forced('{"name": "tiny') == ""  # may still become "tiny-owl"
    assert forced('{"name": "Tiny-O') == ""  # case does not matter
    assert forced('{"name": "gpt-4') == '"'  # "gpt-4..." is nowhere in the request: dropped anyway
    assert forced('{"n_layer": 2, "name": "tinyx') == '"'


LORA = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "r": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "lora_alpha": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "max_iters": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "prompt": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "special_tokens": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
    },
    "required": ["data"],
}


def test_what_the_request_sets_is_written_first_and_its_numbers_go_nowhere_else():
    context = "lora on qa.jsonl, rank 16, 200 steps"
    fixed = {"r": 16, "data": "qa.jsonl"}
    schema = router.grounded_schema(LORA, context, fixed=fixed)
    props = schema["properties"]
    assert list(props)[:2] == ["r", "data"] and schema["required"] == ["r", "data"]
    assert props["r"] == {"enum": [16]} and props["data"] == {"enum": ["qa.jsonl"]}
    forced = router.args_forcing(LORA, context, context, fixed=fixed)
    assert forced("") == '{"r": 16, "data": "qa.jsonl"'  # evaluated in one batch, not decoded
    assert forced('{"r": 16, "data": "qa.jsonl", "max') == '_iters":'
    assert props["max_iters"] == {"enum": [200]}  # 16 is r's: no other argument is offered it
    assert props["lora_alpha"] == {"enum": [200]}
    named = router.grounded_schema(LORA, context, fixed={"r": 16}, reusable=["lora_alpha"])
    assert named["properties"]["lora_alpha"] == {
        "enum": [16, 200]
    }  # an argument the request names may share it
    twice = router.grounded_schema(LORA, "r 16 and alpha 16", fixed={"r": 16})
    assert twice["properties"]["lora_alpha"] == {"enum": [16]}  # written twice: there is one left


def test_a_free_string_the_text_cannot_hold_is_closed_and_a_doomed_list_is_ended():
    context = "give me 150 tokens from my deeper model"
    forced = router.args_forcing(LORA, context, context)
    assert forced('{"data": "x", "prompt": "what is the') == ""  # only generic words so far
    assert forced('{"data": "x", "prompt": "what is the meaning of') == '"'  # "meaning": not in the request
    assert forced('{"data": "x", "prompt": "deeper model, once upon') == ""  # a word of the request
    assert forced('{"data": "x", "prompt": "la') == ""  # may become "last"
    assert forced('{"data": "x", "special_tokens": ["<s>"') == "]"  # one dropped item drops the list
    assert forced('{"data": "x", "special_tokens": ["<s>", ') == '""]'
    assert forced('{"data": "x", "special_tokens": ["<s>", "<pa') == '"]'
    said = "train it with the special tokens <|endoftext|> and <|pad|>"
    assert router.args_forcing(LORA, said, said)('{"data": "x", "special_tokens": ["<|endoftext|>"') == ""


def test_a_set_value_that_needs_an_escape_is_left_out_not_written_into_the_grammar():
    fixed = {"prompt": 'say "hi"', "r": 4}
    schema = router.grounded_schema(LORA, "r 4, prompt 'say \"hi\"'", fixed=fixed)
    assert "prompt" not in schema["properties"] and schema["properties"]["r"] == {"enum": [4]}
    assert router.fixed_prefix(LORA, fixed) == '{"r": 4'
