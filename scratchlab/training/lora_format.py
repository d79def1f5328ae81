"""How a base renders conversations to token ids: the `ChatFormat` of a LoRA run.

    fmt = hf_chat_format(tokenizer)                   # a Hugging Face base: its own chat template
    fmt = template_format(encode, decode, eos_id)     # our GPTs: "### Instruction / ### Response"
    fmt.prompt_ids([{"role": "user", "content": "Hi"}])   # ids generation starts from

Source: chat templates as in `transformers.apply_chat_template`; the alpaca prompt layout (Taori et
al., 2023, Stanford Alpaca).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

IGNORE_INDEX = -100  # label of tokens the loss skips (torch cross_entropy's default ignore_index)
# our GPT's template (a Hugging Face base uses its own chat template instead)
TEMPLATE_HEADERS = {"system": "### System:\n", "user": "### Instruction:\n", "assistant": "### Response:\n"}
TEMPLATE_SEP = "\n\n"
PREFIX_SLACK = 2  # tokens at a cached prefix's end that may merge with what follows when tokenized together


class LoraDataError(ValueError):
    """The instruction data is missing, empty or malformed; the message names the file, line and fix."""


def common_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    """How many leading token ids all of `seqs` share."""
    n = min(len(s) for s in seqs)
    for i in range(n):
        t = seqs[0][i]
        if any(s[i] != t for s in seqs):
            return i
    return n


# ---- formats ----------------------------------------------------------------------------------
@dataclass
class ChatFormat:
    """How a base renders conversations and maps text to token ids.

    Attributes:
        render: (messages, add_generation_prompt) -> text of the conversation.
        encode: text -> token ids (special tokens written in the text are parsed).
        decode: token ids -> text (special tokens skipped).
        eos_id: the end-of-sequence id appended to answers, or None if the vocabulary has none.
        stop_ids: ids that end an assistant turn (eos_id and the template's end-of-turn token).
        pad_id: id used for padding (its labels are always -100, so any valid id works).
        name: "chat_template" or "plain_template", for reports.
        stop_text: when `eos_id` is None, a text marker appended to every answer instead (trained,
            and generation stops once it appears).
    """

    render: Callable[[list[dict[str, str]], bool], str]
    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]
    eos_id: int | None
    stop_ids: set[int] = field(default_factory=set)
    pad_id: int = 0
    name: str = "plain_template"
    stop_text: str | None = None  # answer terminator when there is no EOS id (our char GPTs)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of `messages` followed by the assistant header (what generation starts from)."""
        return self.encode(self.render(messages, True))


def render_plain(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """Our GPT's template: "### Instruction:\\n...\\n\\n### Response:\\n..." blocks, blank-line separated."""
    parts = [TEMPLATE_HEADERS[m["role"]] + m["content"] for m in messages]
    text = TEMPLATE_SEP.join(parts)
    if add_generation_prompt:
        text = (text + TEMPLATE_SEP if text else "") + TEMPLATE_HEADERS["assistant"]
    return text


def template_format(
    encode: Callable[[str], list[int]],
    decode: Callable[[list[int]], str],
    eos_id: int | None,
    pad_id: int = 0,
) -> ChatFormat:
    """A `ChatFormat` for a base without a chat template (our char/BPE GPTs)."""
    return ChatFormat(render_plain, encode, decode, eos_id, {eos_id} if eos_id is not None else set(), pad_id)


def hf_chat_format(tokenizer: Any) -> ChatFormat:
    """A `ChatFormat` from a Hugging Face tokenizer, using its chat template (plain template if it has none).

    The stop ids are the tokenizer's EOS and, when the template closes turns with a special token
    (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`), that token.
    """
    eos = tokenizer.eos_token_id
    stops = {eos} if eos is not None else set()
    vocab = tokenizer.get_vocab()
    template = getattr(tokenizer, "chat_template", None) or ""
    for tok in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"):
        if tok in template and tok in vocab:
            stops.add(vocab[tok])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos if eos is not None else 0)

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=True)

    if template:

        def render(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
            return tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )

        return ChatFormat(render, encode, decode, eos, stops, pad, "chat_template")
    return ChatFormat(render_plain, encode, decode, eos, stops, pad, "plain_template")
