"""The two BPE merge loops used by the encoder: greedy lowest rank, and its heap version for long chunks.

    from scratchlab.models.bpe_merge import merge_greedy, merge_heap
    ids = merge_greedy([97, 97, 97, 98], {(97, 97): 256, (256, 97): 257})  # -> [257, 98]

Both take the chunk's base ids and `merges` ((a, b) -> new id, where the new id is the merge's rank)
and return the same token ids. Source: karpathy/minbpe `encode` (the greedy loop); the heap over a
linked list is the usual O(n log n) formulation (as in HF `tokenizers`' `Word::merge_all`).
"""

from __future__ import annotations

import heapq

NO_RANK = 1 << 62


def merge_greedy(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Merge the lowest-ranked adjacent pair, all its occurrences left to right, until none is left.

    O(n^2) in the chunk length, fast for the short chunks of regex pre-tokenization.

    Args:
        ids: base ids of one chunk.
        merges: (a, b) -> merged id; the merged id is also the rank (lower merges first).

    Returns:
        the chunk's token ids.
    """
    while len(ids) >= 2:
        best, best_rank = None, NO_RANK
        for p in zip(ids, ids[1:], strict=False):
            r = merges.get(p)
            if r is not None and r < best_rank:
                best, best_rank = p, r
        if best is None:
            break
        a, b = best
        out, i, n = [], 0, len(ids)
        while i < n:
            if i < n - 1 and ids[i] == a and ids[i + 1] == b:
                out.append(best_rank)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return ids


def merge_heap(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Same result as `merge_greedy` in O(n log n): a heap of (rank, position) over a linked list.

    Used for long chunks (the "none" preset makes the whole text one chunk). Among equal ranks
    the leftmost position pops first, which reproduces the left-to-right merge of `merge_greedy`;
    a merge only creates pairs of higher rank, so processing in heap order is exact.
    """
    n = len(ids)
    vals = list(ids)
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    prv = list(range(-1, n - 1))
    alive = [True] * n
    heap = [(r, i) for i in range(n - 1) if (r := merges.get((vals[i], vals[i + 1]))) is not None]
    heapq.heapify(heap)
    while heap:
        r, i = heapq.heappop(heap)
        if not alive[i]:
            continue
        j = nxt[i]
        if j < 0 or merges.get((vals[i], vals[j])) != r:
            continue  # stale entry
        vals[i] = r
        alive[j] = False
        k = nxt[j]
        nxt[i] = k
        if k >= 0:
            prv[k] = i
            r2 = merges.get((r, vals[k]))
            if r2 is not None:
                heapq.heappush(heap, (r2, i))
        h = prv[i]
        if h >= 0:
            r2 = merges.get((vals[h], r))
            if r2 is not None:
                heapq.heappush(heap, (r2, h))
    out, i = [], 0
    while i >= 0:
        out.append(vals[i])
        i = nxt[i]
    return out
