"""Builders shared by the LoRA tests (no tests here): a tiny GPT run, a tiny Qwen2 HF folder, small JSONL sets."""

from __future__ import annotations

import json
from pathlib import Path

WORDS = ["apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "rocket", "garden", "silver",
         "candle", "forest", "mirror", "planet", "violin", "wizard", "yellow", "zebra", "orange", "window"]  # fmt: skip
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def alpaca_records(n: int = 40) -> list[dict[str, str]]:
    """A learnable toy task: the answer is a fixed phrase around the upper-cased word."""
    out = []
    for i in range(n):
        w = WORDS[i % len(WORDS)] + ("" if i < len(WORDS) else "s")
        out.append({"instruction": f"Shout the word {w}.", "input": "", "output": f"OK: {w.upper()}!"})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def make_gpt_run(root: Path, n_layer: int = 2, n_embd: int = 32, block_size: int = 64, seed: int = 0) -> Path:
    """A scratchlab GPT run folder (ckpt.pt + config.json) with a char tokenizer covering the toy data."""
    import torch

    from scratchlab.models.gpt import GPT, GPTConfig
    from scratchlab.training.data import prepare_dataset
    from scratchlab.training.trainer import save_checkpoint

    recs = alpaca_records()
    text = " ".join(r["instruction"] + " " + r["output"] for r in recs)
    text += (
        "\n### Instruction:\n### Response:\n### System:\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?:;'-# \n"
        * 2
    )
    data_dir = root / "datasets" / "toy-char"
    meta = prepare_dataset("toy", "char", data_dir, text=text)
    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=meta.vocab_size, block_size=block_size, n_layer=n_layer, n_head=2, n_embd=n_embd
    )
    model = GPT(cfg)
    run = root / "runs" / "toy-run"
    run.mkdir(parents=True, exist_ok=True)
    save_checkpoint(run / "ckpt.pt", {"model_config": cfg.to_dict(), "model": model.state_dict(), "train_config": {},
                                      "data_dir": str(data_dir), "tokenizer": "char", "vocab_size": meta.vocab_size,
                                      "eot_id": None, "step": 0})  # fmt: skip
    (run / "config.json").write_text(json.dumps({"out_dir": str(run)}))
    return run


def make_tiny_qwen(root: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Qwen2 causal LM with a byte-level BPE ChatML tokenizer, saved as an HF folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    recs = alpaca_records()
    corpus = [r["instruction"] + " " + r["output"] for r in recs] * 3
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tk.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHATML
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
    model = Qwen2ForCausalLM(cfg)
    out = root / "bases" / "tiny-qwen"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_unique_adapter_name_skips_folders_on_disk(tool_ctx):
    from scratchlab.tools.lora import unique_name

    (tool_ctx.workspace.dir("adapters") / "run-1-lora-1").mkdir(parents=True)  # left by an earlier registry
    assert unique_name(tool_ctx, "run-1") == "run-1-lora-2"
