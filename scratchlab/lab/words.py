"""Words of a text, for matching by overlap: a memory to a query, an artifact to a request.

    words_in("Train the 4-layer GPT_run!")    # {"train", "the", "layer", "gpt", "run"}

Letters and digits in any script (`[^\\W_]+`), lower-cased, at least two characters. The agent's
router and the lab's memory search share it, so both read a sentence the same way.
"""

from __future__ import annotations

import re

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
MIN_WORD_CHARS = 2


def words_in(text: str) -> set[str]:
    """The set of lower-cased words of `text` (see the module docstring)."""
    return {w.lower() for w in WORD_RE.findall(text) if len(w) >= MIN_WORD_CHARS}
