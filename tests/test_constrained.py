"""Top-N constrained greedy decoding equals llama-cpp-python's full-vocabulary grammar sampling."""

from __future__ import annotations

import json

import pytest

from scratchlab.agent import router
from scratchlab.agent.constrained import GrammarError, constrained_greedy

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def llm():
    from llama_cpp import Llama

    from scratchlab.models.weights import smollm2_path

    return Llama(model_path=str(smollm2_path()), n_ctx=2048, n_threads=2, verbose=False)


SCHEMA = {
    "type": "object",
    "properties": {"dataset": {"type": "string"}, "vocab_size": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["dataset"],
}  # fmt: skip
PROMPT = '<|im_start|>user\ntrain a tokenizer with 300 tokens on shakespeare<|im_end|>\n<|im_start|>assistant\n{"args": '


@pytest.mark.parametrize(
    "grammar", [router.args_grammar(SCHEMA), router.action_grammar(["train_tokenizer", "answer"])]
)
def test_matches_full_grammar_sampling(llm, grammar):
    from llama_cpp import LlamaGrammar

    ours = constrained_greedy(llm, PROMPT, grammar, max_tokens=48)
    ref = llm.create_completion(PROMPT, max_tokens=48, temperature=0.0, repeat_penalty=1.0,
                                grammar=LlamaGrammar.from_string(grammar, verbose=False))["choices"][0]["text"]  # fmt: skip
    assert ours == ref


def test_output_follows_schema(llm):
    schema = json.loads(json.dumps(SCHEMA))
    schema["properties"]["dataset"]["maxLength"] = 24  # a tiny model may loop inside a free string
    schema["properties"]["tags"]["maxItems"] = 2
    schema["properties"]["tags"]["items"]["maxLength"] = 12
    out = constrained_greedy(llm, PROMPT, router.args_grammar(schema), max_tokens=120)
    obj = json.loads(out)
    assert isinstance(obj["dataset"], str)
    assert set(obj) <= set(SCHEMA["properties"])


def test_bad_grammar_raises(llm):
    with pytest.raises(GrammarError):
        constrained_greedy(llm, PROMPT, "root ::= (", max_tokens=4)


def test_streamed_answer_keeps_one_action_tag():
    """Chunks merge by concatenation: the stored answer must say "answer" once, not "answeranswer..."."""
    from langchain_core.messages import HumanMessage

    from scratchlab.agent.local_chat import ChatLocalLlama
    from scratchlab.models.weights import smollm2_path

    chat = ChatLocalLlama(model_path=str(smollm2_path()), n_ctx=2048, max_answer_tokens=12)
    out = chat.bind_tools([]).invoke([HumanMessage("Say hello.")])
    assert out.additional_kwargs.get("action") == "answer"
    assert out.content


def test_jump_forward_evaluates_keys_in_batches_and_keeps_to_the_schema(llm, monkeypatch):
    """The rest of a key goes through the model as one batch. (The text may differ from decoding a
    token at a time where two choices are close: llama.cpp's batched and single-token kernels round
    differently; seen on SmolLM2, which wrote "tags" instead of "vocab_size" after a batched key.)"""
    context = "train a tokenizer with 300 tokens on shakespeare"
    batches: list[int] = []
    real_eval = llm.eval
    monkeypatch.setattr(llm, "eval", lambda toks: (batches.append(len(toks)), real_eval(toks))[1])
    out = constrained_greedy(llm, PROMPT, router.args_grammar(SCHEMA, context), max_tokens=48,
                             forced=router.args_forcing(SCHEMA, context))  # fmt: skip
    obj = json.loads(out)
    assert isinstance(obj["dataset"], str) and set(obj) <= set(SCHEMA["properties"])
    assert max(batches[1:]) > 1  # after the prompt: at least one jump of several tokens


def test_the_values_a_request_sets_are_written_first_in_one_batch(llm, monkeypatch):
    """The grammar puts `fixed` first with its one value each; jump-forward evaluates that text as one
    batch, and the model goes on after it under the rest of the schema."""
    context = "train a tokenizer with 300 tokens on shakespeare"
    fixed = {"vocab_size": 300, "dataset": "shakespeare"}
    batches: list[int] = []
    real_eval = llm.eval
    monkeypatch.setattr(llm, "eval", lambda toks: (batches.append(len(toks)), real_eval(toks))[1])
    out = constrained_greedy(llm, PROMPT, router.args_grammar(SCHEMA, context, fixed=fixed), max_tokens=48,
                             forced=router.args_forcing(SCHEMA, context, context, fixed=fixed))  # fmt: skip
    assert out.startswith('{"vocab_size": 300, "dataset": "shakespeare"')
    obj = json.loads(out)
    assert (
        obj["vocab_size"] == 300 and obj["dataset"] == "shakespeare" and set(obj) <= set(SCHEMA["properties"])
    )
    assert batches[1] >= len(llm.tokenize(b'{"vocab_size": 300, "dataset": "shakespeare"', add_bos=False)) - 1


def test_a_set_value_with_a_quote_leaves_a_grammar_llama_cpp_parses(llm):
    schema = {"type": "object", "properties": {"prompt": {"type": "string"}, "n": {"type": "integer"}}}
    context = 'n 3, prompt "say \\"hi\\""'
    fixed = {"prompt": 'say "hi"', "n": 3}  # in an enum, llama.cpp's converter wrote an unparsable rule
    out = constrained_greedy(llm, PROMPT, router.args_grammar(schema, context, fixed=fixed), max_tokens=24,
                             forced=router.args_forcing(schema, context, context, fixed=fixed))  # fmt: skip
    assert json.loads(out)["n"] == 3
