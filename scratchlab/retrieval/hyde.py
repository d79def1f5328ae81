"""HyDE: search with the embedding of a hypothetical answer written by a language model.

    from scratchlab.retrieval.hyde import hyde_vector
    qv = hyde_vector("what is QLoRA?", generate=lambda p: llm.invoke(p).content, embedder=index.embedder)
    hits = index.search("what is QLoRA?", query_vector=qv)

A short question and the passage that answers it look different to an embedding model; a fake
answer (even a wrong one) looks like the passages we want. The question's own vector is averaged
in so that a hallucinated detail cannot drag the search away entirely. The BM25 side of a hybrid
search still uses the original query. Source: Gao et al. 2022, "Precise Zero-Shot Dense Retrieval
without Relevance Labels". The engine takes any `generate(prompt) -> str`; the tools layer passes
the chat model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

HYDE_PROMPT = (
    "Write one short factual paragraph (at most 5 sentences) that answers the question below, "
    "as it might appear in a reference document. Do not mention the question.\n\n"
    "Question: {question}\n\nParagraph:"
)
MAX_HYPOTHETICAL_CHARS = 1200
QUESTION_WEIGHT = 0.5  # weight of the question vector in the average (the rest is the passage)


def hypothetical_document(question: str, generate: Callable[[str], str]) -> str:
    """Ask `generate` for a passage answering `question`; stripped and cut to MAX_HYPOTHETICAL_CHARS.

    Raises:
        ValueError: `generate` returned no text.
    """
    text = (generate(HYDE_PROMPT.format(question=question)) or "").strip()
    if not text:
        raise ValueError("HyDE: the language model returned an empty passage; search without HyDE")
    return text[:MAX_HYPOTHETICAL_CHARS]


def hyde_vector(
    question: str, generate: Callable[[str], str], embedder, question_weight: float = QUESTION_WEIGHT
) -> np.ndarray:
    """The normalized weighted mean of the question's and a hypothetical passage's embeddings.

    Returns:
        (dim,) float32, L2-normalized.
    """
    passage = hypothetical_document(question, generate)
    q = embedder.encode_query(question)
    p = embedder.encode([passage])[0]
    v = question_weight * q + (1.0 - question_weight) * p
    return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)
