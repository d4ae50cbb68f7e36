"""Candidates from a rank window of a retriever's ranking: the one picker that mining and refreshing share.

Piccolo2 (report, 'Training data and settings') takes hard negatives from ranks 50 to 100 of a first-stage retriever:
the top ranks often hold unlabelled answers (false negatives). Mining (:mod:`piccolo_lib.train.mining`, before
training) and refreshing (:mod:`piccolo_lib.train.refresh`, during training) both rank a corpus for every query
and keep candidates of the window; they differ only in the similarity bounds they apply:

=============  ===========================================  ================================================
who            drops a candidate of the window when          why
=============  ===========================================  ================================================
both           it is a positive of the query, or the         a false negative by identity (the one text id,
               query's own text (:func:`piccolo_lib.text.     :func:`piccolo_lib.text.text_id`)
               text_id`), or already one of its negatives
mining         sim > sim_pos - abs(sim_pos) x margin         too close to the positive: probably an answer
refreshing     sim < sim_pos - threshold                     too easy: it would teach nothing
=============  ===========================================  ================================================

:func:`rank_topk` is blocked (a block of queries at a time against the whole corpus), so 100k queries against
200k passages never hold the full similarity matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

BLOCK_FLOATS = 2 ** 26  # a block's (queries x corpus) similarity matrix holds at most this many floats (256 MB)


def rank_topk(queries: Tensor, corpus: Tensor, k: int, *, block_floats: int = BLOCK_FLOATS) -> tuple[Tensor, Tensor]:
    """The ``k`` most similar corpus rows of every query, best first.

    Args:
        queries: (Q, D) unit vectors. corpus: (N, D) unit vectors (same dtype and device).
        k: how many ranks to keep (at most N).

    Returns:
        (sims (Q, k), indices (Q, k)) as ``torch.topk`` gives them, computed a block of queries at a time.
    """
    k = min(k, corpus.shape[0])
    sims = torch.empty(queries.shape[0], k, dtype=queries.dtype, device=queries.device)
    idx = torch.empty(queries.shape[0], k, dtype=torch.long, device=queries.device)
    block = max(1, block_floats // max(1, corpus.shape[0]))
    for s in range(0, queries.shape[0], block):
        sims[s:s + block], idx[s:s + block] = torch.topk(queries[s:s + block] @ corpus.T, k=k, dim=1)
    return sims, idx


@dataclass
class WindowCounts:
    """What the picker saw in the windows; ``seen == kept + excluded + too_close + too_easy``."""

    seen: int = 0
    kept: int = 0
    excluded: int = 0  # a positive, the query's own text, or already a negative of the row
    too_close: int = 0  # above max_sim
    too_easy: int = 0  # below min_sim


def window_candidates(sims: Sequence[float], indices: Sequence[int], doc_ids: Sequence[int], *,
                      exclude: set[int], max_sim: float = float("inf"), min_sim: float = float("-inf"),
                      counts: WindowCounts | None = None) -> list[int]:
    """The usable candidates of one query's window, in rank order.

    Args:
        sims, indices: the window's similarities and corpus rows (a slice of :func:`rank_topk`'s row).
        doc_ids: the text id of every corpus row.
        exclude: text ids never to take (the query's positives, its own text, its current negatives).
        max_sim, min_sim: a candidate must satisfy min_sim <= sim <= max_sim.
        counts: tallied in place when given.

    Returns:
        Corpus rows of the usable candidates.
    """
    out = []
    for sim, j in zip(sims, indices):
        if counts is not None:
            counts.seen += 1
        if doc_ids[j] in exclude:
            reason = "excluded"
        elif sim > max_sim:
            reason = "too_close"
        elif sim < min_sim:
            reason = "too_easy"
        else:
            out.append(j)
            reason = "kept"
        if counts is not None:
            setattr(counts, reason, getattr(counts, reason) + 1)
    return out
