"""Router tuning end to end on SmolLM2-135M: a 20-example bank, a few LoRA steps, a stop and a resume,
the GGUF export loaded by llama.cpp over the quantized base, making peft's next-token choices and moving its scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scratchlab.agent.tune import ADAPTER_GGUF, TuneConfig, TuneError, check_free, prepare, run_tune
from scratchlab.agent.tune_data import runtime_prompt
from scratchlab.models.weights import smollm2_path
from scratchlab.training.lora import TRAIN_STATE
from scratchlab.training.next_tokens import agreement, hf_next_tokens, llama_last_logits, load_llama

TOOLS = ["train_tokenizer", "encode_text"]
ANSWERS = [
    "hi",
    "thanks!",
    "what is attention?",
    "what is a tokenizer?",
    "explain dropout",
    "how are you?",
    "what does BPE stand for?",
    "tell me a joke",
    "what is perplexity?",
    "good morning",
]
CALLS = [("train a BPE tokenizer with {n} tokens on shakespeare", "train_tokenizer", {"dataset": "shakespeare"}),
         ("encode 'hello world number {n}' with the last tokenizer", "encode_text", {"text": "hello world number {n}"})]  # fmt: skip


def _bank(folder):
    rows = [{"id": f"a{i}", "request": r, "action": "answer"} for i, r in enumerate(ANSWERS)]
    for i, n in enumerate((256, 512, 1000, 2048, 300)):
        for j, (req, action, args) in enumerate(CALLS):
            a = {k: v.format(n=n) for k, v in args.items()}
            if action == "train_tokenizer":
                a["vocab_size"] = n
            rows.append({"id": f"c{i}{j}", "request": req.format(n=n), "action": action, "args": a})
    folder.mkdir()
    (folder / "bank.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


class StopAfter:
    """A job reporter that asks the run to stop once it has reported `step`."""

    def __init__(self, step=None):
        self.step, self.stop_requested, self.seen, self.messages = step, False, [], []

    def update(self, step, total, message="", **metrics):
        self.messages.append(message)
        if "train_loss" in metrics:
            self.seen.append(step)
        if self.step is not None and step >= self.step:
            self.stop_requested = True


def test_tune_smollm2_stop_resume_export(workspace, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    rows = _bank(tmp_path / "bank")
    assert len(rows) == 20
    cfg = TuneConfig(base="smollm2", bank=str(tmp_path / "bank"), tools=TOOLS, n_augment=0, max_iters=3,
                     batch_size=4, grad_accum=1, lr=2e-2, r=8, lora_dropout=0.0, ckpt_interval=1, num_threads=1,
                     max_len=2048)  # fmt: skip
    first = run_tune(dict(cfg.__dict__), StopAfter(1), workspace)
    out = workspace.dir("adapters") / "router-smollm2"
    assert first["status"] == "cancelled" and first["steps"] == 1 and (out / TRAIN_STATE).is_file()
    assert not (out / ADAPTER_GGUF).exists()
    rep = StopAfter()
    res = run_tune(dict(cfg.__dict__), rep, workspace)  # resumes after step 1
    assert res["status"] == "done" and res["steps"] == 3
    assert (
        1 not in rep.seen and rep.seen[-1] == 3 and "resumed at step 1" in rep.messages
    )  # not trained again
    assert (out / ADAPTER_GGUF).is_file() and not (out / TRAIN_STATE).exists()
    with pytest.raises(TuneError, match="already holds a finished tune"):
        check_free(workspace, cfg)

    # the training prompts are the runtime's own rendering (same text as the base's chat template)
    lcfg = prepare(workspace, cfg, on_status=lambda m: None)
    system = json.loads(open(lcfg["data"]).readline())["messages"][0]["content"]
    tok = AutoTokenizer.from_pretrained(lcfg["base_path"])
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == runtime_prompt(
        system, "hi"
    )

    # llama.cpp with the exported adapter over the quantized base makes peft's choices, and not the base's
    # (the catalogue runs with the adapter off, as the tune trained it and the runtime runs it)
    prompts = [runtime_prompt(system, r["request"]) + '{"action": "' for r in rows[::2]]
    prefix = lcfg["cached_prefix"]
    assert prefix and all(p.startswith(prefix) for p in prompts)
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(lcfg["base_path"]), str(out)).eval()
    hf = hf_next_tokens(peft, tok, prompts, base_prefix=prefix)
    with peft.disable_adapter():
        hf_base = hf_next_tokens(peft, tok, prompts)
    base_logits = llama_last_logits(load_llama(smollm2_path(), n_ctx=2048), prompts)
    tuned = load_llama(smollm2_path(), out / ADAPTER_GGUF, n_ctx=2048)
    tuned_logits = llama_last_logits(tuned, prompts, base_prefix=prefix)
    cpp_base, cpp = base_logits.argmax(1).tolist(), tuned_logits.argmax(1).tolist()
    assert agreement(cpp, hf) >= 0.9, (cpp, hf)
    assert agreement(cpp_base, hf_base) >= 0.9
    # the adapter is applied: it moves llama.cpp's scores where peft's move (3 steps rarely flip the
    # argmax; the choices a full tune changes are measured in benchmarks/agent_tune.py)
    assert np.abs(tuned_logits - base_logits).max() > 0.1
    # ... and the catalogue's keys and values are the base's: the adapter applied to the catalogue too
    # gives other scores (the prompts the tune never trained)
    everywhere = llama_last_logits(load_llama(smollm2_path(), out / ADAPTER_GGUF, n_ctx=4096), prompts)
    assert np.abs(everywhere - tuned_logits).max() > 1e-3

    # the adapter routes, the base writes: the tuned chat model's reply is the untuned model's, token for
    # token, even right after a decision that ran the conversation through the adapter
    from scratchlab.agent.local_chat import ChatLocalLlama
    from scratchlab.agent.tuned_chat import ChatTunedLlama

    kw = dict(max_tokens=12, temperature=0.0, top_k=1, repeat_penalty=1.0, stream=True)
    reply = runtime_prompt(system, "what is attention?") + '{"action": "answer"}\n'
    tuned_chat = ChatTunedLlama(model_path=str(smollm2_path()), lora_path=str(out / ADAPTER_GGUF), n_ctx=2048,
                                n_threads=1)  # fmt: skip
    tuned_chat.warm_start(system.split("Lab state:")[0])
    routed = tuned_chat._choose(prompts[0], ["train_tokenizer", "encode_text"], {})
    assert routed in ("train_tokenizer", "encode_text") and tuned_chat._mode == "route"
    written = "".join(tuned_chat._stream_text(reply, dict(kw)))
    assert tuned_chat._mode == "write"
    base_chat = ChatLocalLlama(model_path=str(smollm2_path()), n_ctx=2048, n_threads=1)
    assert written and written == "".join(base_chat._stream_text(reply, dict(kw)))

    # the tuned chat model runs with the prompt its tune was made on; a tune from before the setting
    # existed (no "prompt" in tune.json) used the full catalogue
    from scratchlab.agent.tuned_chat import tuned_chat_model

    assert tuned_chat_model("smollm2", workspace, n_ctx=2048, n_threads=1).compact
    meta = json.loads((out / "tune.json").read_text())
    assert meta["config"]["prompt"] == "compact"
    del meta["config"]["prompt"]
    (out / "tune.json").write_text(json.dumps(meta))
    assert not tuned_chat_model("smollm2", workspace, n_ctx=2048, n_threads=1).compact
    (out / "tune.json").write_text("{not json")
    with pytest.raises(TuneError, match="unreadable"):
        tuned_chat_model("smollm2", workspace, n_ctx=2048, n_threads=1)


def test_an_unknown_tune_prompt_is_refused_with_the_choices():
    with pytest.raises(TuneError, match="compact"):
        TuneConfig(prompt="short")
