"""The router-tuning training set and the GGUF adapter naming: labels stay right, rendering is the runtime's."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from scratchlab.agent.bank import Example, load_examples, tokens
from scratchlab.agent.router import ACTION_PREFIX, IM_START, normalise_request
from scratchlab.agent.tune import tool_dicts
from scratchlab.agent.tune_data import (
    augment,
    build_records,
    catalogue_prefix,
    runtime_prompt,
    tool_call_text,
)
from scratchlab.training.lora_config import LoraError
from scratchlab.training.lora_gguf import gguf_tensor_name, permute_rows


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    return tool_dicts(tmp_path_factory.mktemp("ws"))


def test_records_are_the_runtime_decisions(tools):
    bank = load_examples()
    recs = build_records(tools, bank, n_augment=1, seed=0)
    names = {t["function"]["name"] for t in tools}
    assert "tune_router" in names
    assert {r["messages"][2]["content"] for r in recs} >= {'{"action": "answer"}\n'}
    for r in recs:
        system, user, target = r["messages"]
        assert system["content"].startswith("You are scratchlab") and "Lab state:" in system["content"]
        text = target["content"]
        if text == '{"action": "answer"}\n':
            assert target["stop"] is False  # the reply is the model's own: no end-of-turn trained
            continue
        call = json.loads(text)
        assert call["action"] in names and isinstance(call["args"], dict) and "stop" not in target
        # the runtime picks the action after ACTION_PREFIX: the target continues exactly that text
        assert (runtime_prompt(system["content"], user["content"]) + text).startswith(
            runtime_prompt(system["content"], user["content"]) + ACTION_PREFIX + call["action"] + '"'
        )
    assert not any(json.loads(r["messages"][2]["content"] or "{}").get("action") == "clarify"
                   for r in recs if r["messages"][2]["content"].startswith("{\"action\": \"c"))  # fmt: skip
    # every record starts with the catalogue the tune caches, which is the text the runtime warms
    prefix = catalogue_prefix(tools)
    for r in recs:
        system = r["messages"][0]["content"]
        assert runtime_prompt(system, "x").startswith(prefix)
        assert (
            f"{IM_START}system\n" + system.split("Lab state:")[0].rstrip() == prefix
        )  # ChatLocalLlama.warm_start


def test_a_compact_tune_trains_on_the_prompt_the_tuned_model_runs_with(tools):
    from langchain_core.messages import HumanMessage, SystemMessage

    from scratchlab.agent.prompts import fixed_system_prompt, lab_state_text
    from scratchlab.agent.tune_data import synthetic_registry
    from scratchlab.agent.tuned_chat import ChatTunedLlama

    bank = [e for e in load_examples() if e.action == "train_gpt"][:3]
    recs = build_records(tools, bank, n_augment=1, seed=0, compact=True)
    prefix = catalogue_prefix(tools, compact=True)
    full = fixed_system_prompt(tools)
    assert len(prefix) < len(full) / 2 and len(recs) >= 3
    for r in recs:
        system = r["messages"][0]["content"]
        assert runtime_prompt(system, "x").startswith(prefix)
        assert "- train_gpt: " in system and "n_layer?: int;" in system and "e.g." not in system
        # the session sends the full catalogue and the lab state; the tuned model swaps in the compact
        # catalogue and keeps the lab state: exactly the record's system text
        lab = system[system.index("Lab state:") :]
        runtime = [SystemMessage(full + "\n" + lab), HumanMessage("x")]
        assert ChatTunedLlama._compact(runtime, tools)[0].content == system
    lab = lab_state_text(synthetic_registry(random.Random(1), n=2))
    assert lab in ChatTunedLlama._compact([SystemMessage(full + "\n" + lab)], tools)[0].content


def test_augment_swaps_values_in_request_and_args_alike(tools):
    params = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    rng = random.Random(0)
    bank = [e for e in load_examples() if e.action in params and e.args]
    changed = 0
    for ex in bank:
        var = augment(ex, params[ex.action], rng)
        if var is None:
            continue
        changed += 1
        request, args = var
        assert set(args) == set(ex.args)
        for k, v in args.items():
            if v != ex.args[k]:
                if isinstance(v, str):  # a name or enum value: in the request, where the old one was
                    assert v in request and v == normalise_request(v)
                else:
                    words = tokens(request)
                    assert str(v) in words and str(ex.args[k]) not in words
                enum = params[ex.action]["properties"][k].get("enum")
                assert enum is None or v in enum
    assert changed > len(bank) // 4


def test_worked_example_tool_call_text():
    params = {"properties": {"dataset": {}, "vocab_size": {}, "name": {}}}
    ex = Example(
        "x",
        "a 512-token tokenizer on shakespeare",
        "train_tokenizer",
        {"vocab_size": 512, "dataset": "shakespeare"},
    )
    assert tool_call_text(ex.action, ex.args, params) == (
        '{"action": "train_tokenizer", "args": {"dataset": "shakespeare", "vocab_size": 512}}'
    )


def test_gguf_names_and_llama_row_permutation():
    assert gguf_tensor_name("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight") == (
        "blk.3.attn_q.weight",
        "a",
    )
    assert gguf_tensor_name("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight") == (
        "blk.0.ffn_down.weight",
        "b",
    )
    with pytest.raises(LoraError, match="target_modules"):
        gguf_tensor_name("base_model.model.lm_head.lora_A.weight")
    # one head of 4 rows: HF rotary halves [0, 1 | 2, 3] -> GGUF interleaved pairs [0, 2, 1, 3]
    w = np.arange(4)[:, None].repeat(2, 1)
    assert permute_rows(w, n_head=1)[:, 0].tolist() == [0, 2, 1, 3]


def test_accepted_turns_keep_only_calls_the_user_let_run():
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from scratchlab.agent.router import IM_END, IM_START, render_chatml
    from scratchlab.agent.tune_data import accepted_turns, chat_roles

    call = {"name": "train_gpt", "args": {"n_layer": 2}, "id": "c1"}
    ok = [HumanMessage("hi"), AIMessage("Hello!"), HumanMessage("train a 2-layer gpt for 2k steps"),
          AIMessage("", tool_calls=[call]), ToolMessage("run gpt-1: val loss 2.1", tool_call_id="c1", name="train_gpt"),
          AIMessage("Done: val loss 2.1.")]  # fmt: skip
    declined = [HumanMessage("train a gpt"), AIMessage("", tool_calls=[call]),
                ToolMessage("cancelled by the user: train_gpt", tool_call_id="c1", name="train_gpt")]  # fmt: skip
    failed = [HumanMessage("train a gpt"), AIMessage("", tool_calls=[call]),
              ToolMessage("Error: no dataset", tool_call_id="c1", name="train_gpt")]  # fmt: skip
    recs = accepted_turns([ok, declined, failed], "SYS")
    assert len(recs) == 1
    msgs = recs[0]["messages"]
    assert msgs[0] == {"role": "system", "content": "SYS"}
    assert msgs[-1] == {"role": "assistant", "content": '{"action": "train_gpt", "args": {"n_layer": 2}}'}
    assert msgs[-2] == {
        "role": "user",
        "content": "train a 2-layer gpt for 2000 steps",
    }  # as the runtime shows it
    roles = chat_roles(ok)  # the runtime's ChatML, cut into turns, renders back to the same text
    assert "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in roles) == render_chatml(ok)
    assert roles[4]["role"] == "user" and roles[4]["content"].startswith('<tool_response name="train_gpt">')


def test_stop_false_trains_the_answer_but_not_its_end_of_turn():
    from scratchlab.training import lora_data as D

    end = 1000  # the template's end-of-turn token
    fmt = D.ChatFormat(
        render=lambda msgs, gen: "".join(f"<{m['role']}>{m['content']}\x00" for m in msgs) + ("<assistant>" if gen else ""),
        encode=lambda text: [end if ch == "\x00" else ord(ch) for ch in text],
        decode=lambda ids: "".join(chr(i) for i in ids),
        eos_id=end, stop_ids={end}, name="chat_template",
    )  # fmt: skip
    rec = D.record_from_json({"messages": [{"role": "user", "content": "hi"},
                                           {"role": "assistant", "content": "ab", "stop": False}]}, "x")  # fmt: skip
    ex = D.tokenize_chat(fmt, rec.messages, D.TokenizeReport())
    assert [chr(t) for t in ex.labels if t != D.IGNORE_INDEX] == ["a", "b"]  # no end-of-turn label
    full = D.record_from_json(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ab"}]}, "x"
    )
    assert [
        t for t in D.tokenize_chat(fmt, full.messages, D.TokenizeReport()).labels if t != D.IGNORE_INDEX
    ] == [97, 98, end]
