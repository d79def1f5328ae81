"""Instruction data for LoRA fine-tuning: JSONL -> token ids with prompt-masked labels -> padded batches.

Four input forms, one record per line (a plain `.txt` file is read as one text):

    {"instruction": "...", "input": "...", "output": "..."}          alpaca (input optional)
    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}   chat
    {"prompt": "...", "completion": "..."}                             prompt-completion (OpenAI legacy, TRL)
    {"text": "..."}                                                    plain text (continued pre-training)

A chat assistant message may carry `"stop": false`: its text is trained but not the end-of-turn token
after it, for answers that are only the start of a turn (a routing decision the reply follows).

Every instruction record becomes a chat conversation. A `ChatFormat` renders it to text (the base's
own chat template for Hugging Face models; a plain "### Instruction / ### Response" template for our
GPTs) and the labels are -100 on every token that is not an assistant answer, so the loss only
counts response tokens. Each answer must end in an end-of-sequence token so the tuned model learns to
stop: when the template already closes the assistant turn with a stop token (Qwen's `<|im_end|>`) the
answer is cut right after it; otherwise EOS is appended and a warning says so. Plain text is trained
on every token, in windows of `max_len`.

    fmt = hf_chat_format(tokenizer)                   # or template_format(encode, decode, eos_id)
    records = read_records("data.jsonl")
    examples = tokenize_records(records, fmt, max_len=512)
    train, val = split_examples(examples, val_fraction=0.1, seed=0)
    for batch in iter_batches(train, batch_size=4, pad_id=fmt.pad_id, seed=0): ...

Labels are aligned with `input_ids` (the Hugging Face convention): position t's label is the token
at t; the model's logits at t-1 predict it. Batches use dynamic padding (pad to the longest example
of the batch, labels -100 and attention_mask 0 on padding), which, with right padding and causal
attention, leaves the real tokens' logits exactly as without padding.

Source: the alpaca format (Taori et al., 2023, Stanford Alpaca); response-only loss as in
`trl`'s completion-only collator; chat templates as in `transformers.apply_chat_template`.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scratchlab.training.lora_batches import collate, eval_batches, iter_batches  # noqa: F401 - re-exported
from scratchlab.training.lora_format import (  # noqa: F401 - re-exported: the data module's public names
    IGNORE_INDEX,
    TEMPLATE_HEADERS,
    TEMPLATE_SEP,
    ChatFormat,
    LoraDataError,
    hf_chat_format,
    render_plain,
    template_format,
)

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
MAX_ERRORS_SHOWN = 3
DEFAULT_VAL_FRACTION = 0.1
NO_EOS_WARNING = (
    "the chat template does not end the assistant turn with an end-of-sequence token; appending EOS "
    "id {eos} to every answer so the tuned model learns to stop"
)


# ---- records ----------------------------------------------------------------------------------
@dataclass
class Record:
    """One training record: a conversation (instruction data) or a plain text (continued pre-training)."""

    messages: list[dict[str, str]] | None = None
    text: str | None = None

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def prompt_and_answer(self) -> tuple[list[dict[str, str]], str]:
        """The conversation before the last assistant turn, and that turn's text (for eval)."""
        assert self.messages is not None
        last = max(i for i, m in enumerate(self.messages) if m["role"] == "assistant")
        return self.messages[:last], self.messages[last]["content"]


def record_from_json(obj: Any, where: str) -> Record:
    """Normalise one parsed JSON object (alpaca, chat, prompt-completion or text form) to a `Record`.

    Raises:
        LoraDataError: the object matches none of the forms, or a field has the wrong type.
    """
    if not isinstance(obj, dict):
        raise LoraDataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise LoraDataError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
        out = []
        for m in msgs:
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise LoraDataError(
                    f"{where}: bad message {str(m)[:80]!r}; each needs 'role' in {ROLES} and a string 'content'"
                )
            out.append({"role": m["role"], "content": m["content"]})
            if m["role"] == "assistant" and m.get("stop") is False:  # a prefix: its stop token is not trained
                out[-1]["stop"] = False
        if not any(m["role"] == "assistant" for m in out):
            raise LoraDataError(f"{where}: the conversation has no assistant message to learn from")
        return Record(messages=out)
    if "instruction" in obj or "output" in obj:
        instr, inp, outp = obj.get("instruction"), obj.get("input", ""), obj.get("output")
        if not isinstance(instr, str) or not instr.strip():
            raise LoraDataError(f"{where}: alpaca record needs a non-empty string 'instruction'")
        if not isinstance(outp, str) or not outp.strip():
            raise LoraDataError(f"{where}: alpaca record needs a non-empty string 'output'")
        if inp is None:
            inp = ""
        if not isinstance(inp, str):
            raise LoraDataError(f"{where}: 'input' must be a string, got {type(inp).__name__}")
        user = instr.strip() + (TEMPLATE_SEP + inp.strip() if inp.strip() else "")
        return Record(messages=[{"role": "user", "content": user}, {"role": "assistant", "content": outp}])
    if "prompt" in obj or "completion" in obj:  # prompt-completion pairs (OpenAI legacy / TRL format)
        prompt, completion = obj.get("prompt"), obj.get("completion")
        if not isinstance(prompt, str) or not prompt.strip():
            raise LoraDataError(f"{where}: prompt-completion record needs a non-empty string 'prompt'")
        if not isinstance(completion, str) or not completion.strip():
            raise LoraDataError(f"{where}: prompt-completion record needs a non-empty string 'completion'")
        return Record(
            messages=[{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        )
    if "text" in obj:
        if not isinstance(obj["text"], str) or not obj["text"].strip():
            raise LoraDataError(f"{where}: 'text' must be a non-empty string")
        return Record(text=obj["text"])
    raise LoraDataError(
        f"{where}: unknown record with keys {sorted(obj)[:6]}; use alpaca (instruction, input, output), "
        "chat (messages), prompt-completion (prompt, completion) or plain text (text)"
    )


def read_records(path: str | os.PathLike) -> list[Record]:
    """Read a JSONL file of alpaca/chat/text records, or a `.txt` file as one plain text.

    Args:
        path: the data file.

    Returns:
        The records, in file order.

    Raises:
        LoraDataError: missing/empty file, or a malformed line (the first few are named with line numbers).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise LoraDataError(f"data file {str(path)!r} not found; give a .jsonl file of alpaca/chat records")
    raw = p.read_text(encoding="utf-8", errors="replace")
    if p.suffix.lower() in (".txt", ".md"):
        if not raw.strip():
            raise LoraDataError(f"data file {p} is empty")
        return [Record(text=raw)]
    records: list[Record] = []
    errors: list[str] = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{p.name}:{lineno}"
        try:
            records.append(record_from_json(json.loads(line), where))
        except json.JSONDecodeError as e:
            errors.append(f"{where}: not valid JSON ({e.msg} at column {e.colno})")
        except LoraDataError as e:
            errors.append(str(e))
    if errors:
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise LoraDataError(
            f"{len(errors)} malformed line(s) in {p}: " + "; ".join(errors[:MAX_ERRORS_SHOWN]) + more
        )
    if not records:
        raise LoraDataError(f"data file {p} has no records; write one JSON object per line")
    return records


# ---- tokenization with masks ------------------------------------------------------------------
@dataclass
class Example:
    """One tokenized example. `labels[t]` is `input_ids[t]` on trained tokens and -100 elsewhere."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_trained(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


@dataclass
class TokenizeReport:
    """What tokenization did: counts, truncations, and warnings to show the user."""

    n_records: int = 0
    n_examples: int = 0
    n_truncated: int = 0
    n_dropped: int = 0
    eos_appended: bool = False
    warnings: list[str] = field(default_factory=list)


def _segments(fmt: ChatFormat, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """Split a rendered conversation into (text, is_answer) pieces, in order.

    Uses the template's prefix property: rendering messages[:k] with the generation prompt is a
    prefix of rendering messages[:k+1]; the difference is exactly assistant turn k.
    """
    pieces: list[tuple[str, bool]] = []
    done = ""
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = fmt.render(messages[:k], True)
        full = fmt.render(messages[: k + 1], False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise LoraDataError(
                "the chat template is not prefix-stable (rendering a conversation with one more turn "
                "changes earlier text), so prompt tokens cannot be masked exactly; use single-turn records"
            )
        pieces.append((prompt[len(done) :], False))
        pieces.append((full[len(prompt) :], True))
        done = full
    return pieces


def tokenize_chat(fmt: ChatFormat, messages: list[dict[str, str]], report: TokenizeReport) -> Example:
    """Token ids and labels of one conversation: -100 on everything but assistant answers (+ their EOS).

    Each answer ends with exactly one stop token: the template's end-of-turn token when it has one
    (text after it, such as Qwen's trailing newline, is treated as prompt), else `fmt.eos_id` appended.
    """
    ids: list[int] = []
    labels: list[int] = []
    pieces = _segments(fmt, messages)
    last_answer = max(i for i, (_, a) in enumerate(pieces) if a)
    stops = iter([m.get("stop", True) for m in messages if m["role"] == "assistant"])
    for i, (text, is_answer) in enumerate(pieces):
        toks = fmt.encode(text) if text else []
        if not is_answer:
            ids += toks
            labels += [IGNORE_INDEX] * len(toks)
            continue
        stop_at = next((j for j, t in enumerate(toks) if t in fmt.stop_ids), None)
        if not next(stops):  # "stop": false: the answer is the start of a longer turn
            answer, rest = (toks, []) if stop_at is None else (toks[:stop_at], toks[stop_at:])
        elif stop_at is not None:
            answer, rest = toks[: stop_at + 1], toks[stop_at + 1 :]
        elif fmt.eos_id is not None:
            answer, rest = toks + [fmt.eos_id], []
            if not report.eos_appended:
                report.eos_appended = True
                report.warnings.append(NO_EOS_WARNING.format(eos=fmt.eos_id))
                log.warning(report.warnings[-1])
        elif fmt.stop_text:
            answer, rest = toks + fmt.encode(fmt.stop_text), []
            msg = f"the tokenizer has no end-of-sequence token: answers end with the text marker {fmt.stop_text!r}"
            if msg not in report.warnings:
                report.warnings.append(msg)
                log.warning(msg)
        else:
            answer, rest = toks, []
            msg = "the tokenizer has no end-of-sequence token: the tuned model will not learn to stop"
            if msg not in report.warnings:
                report.warnings.append(msg)
                log.warning(msg)
        ids += answer
        labels += answer
        if i != last_answer:  # text after the stop token belongs to the next prompt
            ids += rest
            labels += [IGNORE_INDEX] * len(rest)
    return Example(ids, labels)


def tokenize_records(
    records: Sequence[Record], fmt: ChatFormat, max_len: int, report: TokenizeReport | None = None
) -> list[Example]:
    """Tokenize records into examples of at most `max_len` tokens.

    Chat records longer than `max_len` are cut on the right (counted in `report.n_truncated`), or on
    the left when cutting on the right would leave no answer token (a prompt longer than a small GPT's
    block); one with no answer token left either way is dropped (`report.n_dropped`). Plain texts are cut into windows of
    `max_len` tokens, all trained.

    Raises:
        LoraDataError: max_len < 2, or no example has a trained token.
    """
    if max_len < 2:
        raise LoraDataError(f"max_len must be at least 2 tokens, got {max_len}")
    report = report if report is not None else TokenizeReport()
    out: list[Example] = []
    for rec in records:
        report.n_records += 1
        if rec.is_chat:
            ex = tokenize_chat(fmt, rec.messages, report)
            if len(ex) > max_len:
                report.n_truncated += 1
                head = Example(ex.input_ids[:max_len], ex.labels[:max_len])
                # the answer starts past the window (a short-context model): keep the end of the prompt
                ex = head if head.n_trained else Example(ex.input_ids[-max_len:], ex.labels[-max_len:])
            if ex.n_trained == 0 or len(ex) < 2:
                report.n_dropped += 1
                continue
            out.append(ex)
        else:
            toks = fmt.encode(rec.text)
            if fmt.eos_id is not None:
                toks = toks + [fmt.eos_id]
            for s in range(0, len(toks), max_len):
                w = toks[s : s + max_len]
                if len(w) >= 2:
                    out.append(Example(w, list(w)))
    if report.n_dropped:
        report.warnings.append(
            f"{report.n_dropped} record(s) dropped: no answer token to train on within max_len={max_len}"
        )
    if not out:
        raise LoraDataError(
            f"no usable examples: no record has an answer token to train on (max_len={max_len})"
        )
    report.n_examples = len(out)
    return out


def split_examples(
    examples: Sequence[Example], val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """Deterministic shuffled train/val split; at least one example on each side.

    Raises:
        LoraDataError: fewer than 2 examples, or val_fraction outside (0, 1).
    """
    if not 0.0 < val_fraction < 1.0:
        raise LoraDataError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if len(examples) < 2:
        raise LoraDataError(f"need at least 2 examples for a train/val split, got {len(examples)}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = min(len(examples) - 1, max(1, round(len(examples) * val_fraction)))
    val = [examples[i] for i in order[:n_val]]
    train = [examples[i] for i in order[n_val:]]
    return train, val


def split_records(
    records: Sequence[Record], val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """The same split on records (so evaluation can generate answers for the val prompts)."""
    if len(records) < 2:
        raise LoraDataError(f"need at least 2 records for a train/val split, got {len(records)}")
    if not 0.0 < val_fraction < 1.0:
        raise LoraDataError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_val = min(len(records) - 1, max(1, round(len(records) * val_fraction)))
    return [records[i] for i in order[n_val:]], [records[i] for i in order[:n_val]]
