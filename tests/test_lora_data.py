"""LoRA data: record parsing, exact prompt masking, EOS handling, splits and padding."""

from __future__ import annotations

import json

import pytest

from scratchlab.training import lora_data as D

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def char_format(eos_id: int | None = 0) -> D.ChatFormat:
    """Ids = code points + 1 (0 is EOS): easy to check by hand."""
    return D.template_format(
        lambda s: [ord(c) + 1 for c in s], lambda ids: "".join(chr(i - 1) for i in ids if i), eos_id
    )


def test_alpaca_record_is_a_two_turn_chat():
    r = D.record_from_json({"instruction": "Add", "input": "2 and 3", "output": "5"}, "x:1")
    assert r.messages == [
        {"role": "user", "content": "Add\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]


def test_masking_is_exact_on_the_plain_template():
    fmt = char_format()
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    ex = D.tokenize_chat(fmt, msgs, D.TokenizeReport())
    prompt = "### Instruction:\nHi\n\n### Response:\n"
    n = len(prompt)
    assert ex.input_ids == [ord(c) + 1 for c in prompt + "Yo"] + [0]
    assert ex.labels[:n] == [D.IGNORE_INDEX] * n  # every prompt token masked ...
    assert ex.labels[n:] == [ord("Y") + 1, ord("o") + 1, 0]  # ... every answer token + EOS trained


def test_eos_is_appended_with_a_warning_when_the_template_has_none():
    report = D.TokenizeReport()
    D.tokenize_records(
        [D.Record(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])],
        char_format(),
        64,
        report,
    )
    assert report.eos_appended and "appending EOS" in report.warnings[0]


def test_no_eos_token_falls_back_to_stop_text():
    fmt = char_format(eos_id=None)
    fmt.stop_text = "\n\n###"
    ex = D.tokenize_chat(
        fmt, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], D.TokenizeReport()
    )
    assert fmt.decode([t for t in ex.labels if t != D.IGNORE_INDEX]) == "b\n\n###"


class _ToyHFTokenizer:
    """Minimal stand-in for a HF tokenizer with ChatML: specials are single ids, other chars code points."""

    SPECIALS = {"<|im_start|>": 1, "<|im_end|>": 2, "<|endoftext|>": 3}

    def __init__(self, template: str):
        from jinja2 import Template

        self.chat_template = template
        self._t = Template(template)
        self.eos_token_id = 3
        self.pad_token_id = 3

    def get_vocab(self):
        return dict(self.SPECIALS)

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        return self._t.render(messages=messages, add_generation_prompt=add_generation_prompt)

    def __call__(self, text, add_special_tokens=False):
        ids, i = [], 0
        while i < len(text):
            for s, j in self.SPECIALS.items():
                if text.startswith(s, i):
                    ids.append(j)
                    i += len(s)
                    break
            else:
                ids.append(ord(text[i]) + 10)
                i += 1
        return {"input_ids": ids}

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i - 10) for i in ids if i >= 10)


def test_chat_template_answer_ends_at_im_end_and_multi_turn_masks_only_answers():
    fmt = D.hf_chat_format(_ToyHFTokenizer(CHATML))
    assert fmt.stop_ids == {2, 3} and fmt.name == "chat_template"
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]  # fmt: skip
    report = D.TokenizeReport()
    ex = D.tokenize_chat(fmt, msgs, report)
    trained = [
        (i, t)
        for i, (t, lab) in enumerate(zip(ex.input_ids, ex.labels, strict=True))
        if lab != D.IGNORE_INDEX
    ]
    # exactly the two answers, each closed by <|im_end|> (id 2); nothing else
    assert [t for _, t in trained] == [ord("A") + 10, ord("1") + 10, 2, ord("A") + 10, ord("2") + 10, 2]
    assert ex.input_ids[-1] == 2  # the trailing "\n" after the last <|im_end|> is dropped
    assert not report.eos_appended
    # the sequence equals the rendered conversation (up to the dropped newline)
    full = fmt.encode(fmt.render(msgs, False))
    assert ex.input_ids == full[:-1]


def test_prompt_ids_match_the_masked_prefix():
    fmt = D.hf_chat_format(_ToyHFTokenizer(CHATML))
    msgs = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "there"}]
    ex = D.tokenize_chat(fmt, msgs, D.TokenizeReport())
    n_prompt = ex.labels.index(next(x for x in ex.labels if x != D.IGNORE_INDEX))
    assert ex.input_ids[:n_prompt] == fmt.prompt_ids(msgs[:1])


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "no records"),
        ("{not json\n", "not valid JSON"),
        ('{"instruction": "x"}\n', "output"),
        ('{"messages": [{"role": "user", "content": "x"}]}\n', "no assistant"),
        ('{"foo": 1}\n', "unknown record"),
        ("[1, 2]\n", "JSON object"),
        ('{"messages": [{"role": "robot", "content": "x"}]}\n', "bad message"),
    ],
)
def test_bad_jsonl_is_rejected_with_line_numbers(tmp_path, content, match):
    p = tmp_path / "d.jsonl"
    p.write_text(content)
    with pytest.raises(D.LoraDataError, match=match) as e:
        D.read_records(p)
    if content:
        assert "d.jsonl:1" in str(e.value)


def test_missing_file_and_truncation_and_split(tmp_path):
    with pytest.raises(D.LoraDataError, match="not found"):
        D.read_records(tmp_path / "nope.jsonl")
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps({"instruction": f"q{i}", "output": "a" * 30}) for i in range(10)))
    recs = D.read_records(p)
    report = D.TokenizeReport()
    exs = D.tokenize_records(recs, char_format(), max_len=40, report=report)
    assert all(len(e) <= 40 for e in exs) and report.n_truncated == 10
    # a prompt longer than the window: cut on the left so the answer is still trained
    short = D.tokenize_records(recs, char_format(), max_len=10)
    assert len(short) == 10 and all(len(e) == 10 and e.labels[-1] != -100 for e in short)
    train, val = D.split_examples(exs, 0.2, seed=1)
    assert len(val) == 2 and len(train) == 8
    assert D.split_examples(exs, 0.2, seed=1)[1][0].input_ids == val[0].input_ids  # deterministic


def test_collate_pads_right_with_masked_labels():
    a, b = D.Example([5, 6, 7], [-100, 6, 7]), D.Example([8], [8])
    batch = D.collate([a, b], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_plain_text_trains_every_token(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("abcdefghij")
    exs = D.tokenize_records(D.read_records(p), char_format(), max_len=4)
    assert [len(e) for e in exs] == [4, 4, 3]  # 10 chars + EOS, windows of 4
    assert all(e.labels == e.input_ids for e in exs)


def test_prompt_completion_record_is_a_two_turn_chat():
    r = D.record_from_json({"prompt": "Q: 2+2?\nA:", "completion": " 4."}, "x:1")
    assert r.messages == [{"role": "user", "content": "Q: 2+2?\nA:"}, {"role": "assistant", "content": " 4."}]
    with pytest.raises(D.LoraDataError, match="completion"):
        D.record_from_json({"prompt": "Q"}, "x:2")
