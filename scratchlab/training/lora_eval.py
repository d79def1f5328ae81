"""Evaluation of a LoRA run: val perplexity, BLEU/ROUGE of generated answers, side-by-side samples.

    from scratchlab.training.lora_eval import evaluate, generate_answer, text_metrics, val_loss
    ev = evaluate(peft_model, base, val_examples, val_records, cfg, device, adapter=False)  # base model
    ev["val_loss"], ev["val_ppl"], ev["bleu"], ev["rouge1"], ev["rougeL"], ev["generations"]
    text_metrics(["the cat sat"], ["the cat sat down"])   # {"bleu": ..., "rouge1": ..., "rougeL": ...}

Perplexity is exp(mean cross-entropy per answer token) on the val split (prompt tokens masked, as
in training). BLEU is sacrebleu's corpus BLEU (Post, 2018, "A Call for Clarity in Reporting BLEU
Scores"); ROUGE-1/ROUGE-L are Google's `rouge-score` F-measures with stemming (Lin, 2004), both on
a 0-100 scale. Answers are greedy, stop at the base's stop token (or stop text), and are capped at
`max_new_tokens`.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
import torch.nn as nn

from scratchlab.training import lora_data as D
from scratchlab.training.lora_model import lm_loss

TEXT_METRICS = ("bleu", "rouge1", "rougeL")
SAMPLE_CHARS = 240  # characters kept per text in side-by-side samples


def text_metrics(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu) and mean ROUGE-1/ROUGE-L F1 (rouge-score), each 0-100.

    Raises:
        ValueError: the lists differ in length or are empty.
    """
    if len(predictions) != len(references) or not predictions:
        raise ValueError(
            f"need equal, non-empty lists; got {len(predictions)} predictions, {len(references)} references"
        )
    import sacrebleu  # the metric packages load slowly; only evaluation needs them
    from rouge_score import rouge_scorer  # as above

    bleu = sacrebleu.corpus_bleu(predictions, [references]).score
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    r1 = rl = 0.0
    for p, r in zip(predictions, references, strict=True):
        s = scorer.score(r, p)
        r1 += s["rouge1"].fmeasure
        rl += s["rougeL"].fmeasure
    n = len(predictions)
    return {"bleu": round(bleu, 2), "rouge1": round(100 * r1 / n, 2), "rougeL": round(100 * rl / n, 2)}


@torch.no_grad()
def generate_answer(
    model: nn.Module, base: Any, messages: list[dict[str, str]], max_new_tokens: int = 64
) -> str:
    """Greedy answer of `model` (a base or PeftModel of `base.kind`) to a conversation.

    Args:
        model: the model to run (eval mode is set by the caller).
        base: the `LoadedBase` (format, kind, max_len).
        messages: the conversation so far (ends with a user turn).
        max_new_tokens: cap on generated tokens.

    Returns:
        The decoded answer, without the stop token/text.
    """
    fmt = base.fmt
    ids = fmt.prompt_ids(messages)
    device = next(model.parameters()).device
    if base.kind == "hf":
        x = torch.tensor([ids], dtype=torch.long, device=device)
        out = model.generate(
            input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
            eos_token_id=sorted(fmt.stop_ids) or None, pad_token_id=fmt.pad_id,
        )  # fmt: skip
        new = [t for t in out[0, len(ids) :].tolist() if t not in fmt.stop_ids]
        return fmt.decode(new).strip()
    block = base.max_len
    new: list[int] = []
    for _ in range(max_new_tokens):
        ctx = (ids + new)[-block:]
        logits = model(torch.tensor([ctx], dtype=torch.long, device=device))  # (1, T, V)
        nxt = int(logits[0, -1].argmax())
        if nxt in fmt.stop_ids:
            break
        new.append(nxt)
        if fmt.stop_text and fmt.decode(new[-16:]).endswith(fmt.stop_text):
            break
    text = fmt.decode(new)
    if fmt.stop_text and fmt.stop_text in text:
        text = text[: text.index(fmt.stop_text)]
    return text.strip()


@torch.no_grad()
def val_loss(model: nn.Module, examples: list[D.Example], kind: str, batch_size: int, pad_id: int,
             device: torch.device, max_batches: int = 0) -> float:  # fmt: skip
    """Mean cross-entropy per answer token over `examples` (nats; perplexity = exp of it).

    Args:
        max_batches: stop after this many batches of `batch_size` (0: all of `examples`).
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i, batch in enumerate(D.eval_batches(examples, batch_size, pad_id)):
        if max_batches and i >= max_batches:
            break
        batch = {k: v.to(device) for k, v in batch.items()}
        total += float(lm_loss(model, batch, kind, reduction="sum"))
        count += int((batch["labels"][:, 1:] != D.IGNORE_INDEX).sum())
    model.train(was_training)
    return total / max(1, count)


def evaluate(
    model: nn.Module,
    base: Any,
    val: list[D.Example],
    val_records: list[D.Record],
    cfg: Any,
    device: torch.device,
    adapter: bool = True,
) -> dict[str, Any]:
    """Val loss/perplexity and, for `cfg.eval_generate` val prompts, BLEU/ROUGE and the generations.

    Args:
        model: the PeftModel.
        base: the `LoadedBase`.
        val: tokenized val examples (loss).
        val_records: the val conversations (generation; may be empty for plain-text data).
        cfg: the resolved `LoraTrainConfig` (batch_size, eval_iters, eval_generate, max_new_tokens).
        device: where the model is.
        adapter: False evaluates the base (adapters disabled), True the tuned model.

    Returns:
        dict with val_loss (nats/token), val_ppl, and when generating: bleu, rouge1, rougeL,
        generations [{prompt, reference, output}].
    """
    off = (
        model.disable_adapter()
        if not adapter and hasattr(model, "disable_adapter")
        else contextlib.nullcontext()
    )
    with off:
        loss = val_loss(model, val, base.kind, cfg.batch_size, base.fmt.pad_id, device, cfg.eval_iters)
        out: dict[str, Any] = {"val_loss": round(loss, 5), "val_ppl": round(math.exp(min(loss, 50.0)), 3)}
        n = min(cfg.eval_generate, len(val_records))
        if n > 0:
            was_training = model.training
            model.eval()
            gens = []
            for rec in val_records[:n]:
                prompt, ref = rec.prompt_and_answer()
                gens.append({"prompt": prompt[-1]["content"], "reference": ref,
                             "output": generate_answer(model, base, prompt, cfg.max_new_tokens)})  # fmt: skip
            model.train(was_training)
            out.update(text_metrics([g["output"] for g in gens], [g["reference"] for g in gens]))
            out["generations"] = gens
    return out


def side_by_side(before: list[dict[str, str]], after: list[dict[str, str]]) -> list[dict[str, str]]:
    """Pair base and tuned generations for the same prompts: [{prompt, reference, base, tuned}]."""

    def cut(s: str) -> str:
        return s if len(s) <= SAMPLE_CHARS else s[: SAMPLE_CHARS - 1] + "…"

    return [
        {
            "prompt": cut(b["prompt"]),
            "reference": cut(b["reference"]),
            "base": cut(b["output"]),
            "tuned": cut(a["output"]),
        }
        for b, a in zip(before, after, strict=False)
    ]
