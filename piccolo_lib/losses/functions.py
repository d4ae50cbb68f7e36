"""The three Piccolo2 losses as pure functions on embeddings, Matryoshka nesting, false-negative masks.

Every function takes embeddings in any float dtype and computes similarities and the softmax in
float32 (bf16/fp16 logits at temperature 0.01 overflow or lose the ranking). All three losses share one
signature shape: embedding tensors first (positional), then keyword-only ``temperature``, ``weight`` and
what the loss needs besides (scores, ids, masks). MRL (report, 'Matryoshka representation learning') is :func:`matryoshka`: the same loss
on nested prefixes of the embedding, averaged.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _unit(x: Tensor) -> Tensor:
    """L2-normalise the last dim, upcasting half precision to float32, so dots are cosines."""
    return F.normalize(x.float() if x.dtype in (torch.float16, torch.bfloat16) else x, dim=-1)


def retrieval_infonce(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None = None,
    *,
    temperature: float = 0.01,
    positive_ids: Tensor | None = None,
    negative_ids: Tensor | None = None,
    target_offset: int = 0,
    false_negatives: str = "text",
    margin: float = 0.0,
    weight: float = 1.0,
) -> Tensor:
    """InfoNCE with in-batch and hard negatives (report, 'Multi-task hybrid loss training': retrieval and reranking).

    Each query i is scored against every positive and every hard negative of the batch; its target
    is its own positive:

        loss = weight * mean_i -log softmax_j(cos(q_i, c_j) / tau)[target_i]

    Args:
        query: (B, D) query embeddings.
        positive: (P, D) positive passages; P = B, or more when positives were gathered from other
            ranks (then query i's positive is row ``target_offset + i``).
        negatives: (B', K, D) hard negatives (all B'*K are candidates for every query), or None.
        temperature: tau; the report uses 0.01.
        positive_ids, negative_ids: optional (P,) and (B', K) integer ids of the candidate texts
            (e.g. hashes of normalised text). A candidate whose id equals query i's positive id is
            a false negative (the same passage twice in the batch) and is masked out for query i.
        target_offset: index of this rank's first positive in ``positive``.
        false_negatives: how false negatives are removed (see :func:`false_negative_mask`):
            ``text`` (default) masks candidates with the positive's text id; ``margin`` also masks
            candidates scoring above cos(q_i, p_i) - ``margin``; ``off`` masks nothing.
        margin: the margin of the ``margin`` mode, in cosine units.
        weight: loss weight (1.0 in the report: retrieval is the reference loss).

    Returns:
        Scalar: weight x the mean cross-entropy over the B queries.

    Example:
        >>> q, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 2, 8)
        >>> retrieval_infonce(q, p, n, temperature=0.01).shape
        torch.Size([])
    """
    q = _unit(query)  # (B, D)
    candidates = _unit(positive)  # (P, D)
    cand_ids = positive_ids
    if negatives is not None and negatives.numel() > 0:
        candidates = torch.cat([candidates, _unit(negatives).reshape(-1, negatives.shape[-1])])  # (P + B'K, D)
        if cand_ids is not None and negative_ids is not None:
            cand_ids = torch.cat([cand_ids, negative_ids.reshape(-1)])
    sims = q @ candidates.T  # (B, P + B'K) cosines
    targets = torch.arange(q.shape[0], device=q.device) + target_offset  # (B,)
    if cand_ids is not None and cand_ids.numel() != candidates.shape[0]:
        cand_ids = None  # ids of the positives only, negatives without: no text masking
    mask = false_negative_mask(sims, targets, positive_ids, cand_ids, mode=false_negatives, margin=margin)
    logits = sims / temperature
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    return weight * F.cross_entropy(logits, targets)


FALSE_NEGATIVE_MODES = ("text", "margin", "off")


def false_negative_mask(sims: Tensor, targets: Tensor, positive_ids: Tensor | None, candidate_ids: Tensor | None,
                        *, mode: str = "text", margin: float = 0.0) -> Tensor | None:
    """Which candidates to drop from each query's softmax as likely false negatives.

    ========  =============================================================================
    mode      candidate j is dropped for query i when
    ========  =============================================================================
    text      ids[j] == ids[target_i] (the same passage text as the positive, found twice)
    margin    the ``text`` rule, or sims[i, j] > sims[i, target_i] - margin
    off       never
    ========  =============================================================================

    The ``margin`` rule is the false-negative filter of recent recipes (Qwen3-Embedding drops a
    candidate scoring above the positive plus 0.1, i.e. ``margin = -0.1`` here; a positive margin
    is stricter, like mining's ``relative_margin``). It reads the similarities without gradient,
    applies to in-batch positives of other rows and hard negatives alike, and works on gathered
    candidates since the positive's column is ``targets[i]``. The positive itself is never dropped.

    Args:
        sims: (B, C) cosine similarities of queries to candidates.
        targets: (B,) column of each query's positive.
        positive_ids: (P,) text ids of the positives (None: no text rule).
        candidate_ids: (C,) text ids of the candidates (None: no text rule).
        mode: ``text``, ``margin`` or ``off``.
        margin: cosine margin of the ``margin`` mode.

    Returns:
        (B, C) bool mask (True = dropped), or None when nothing is dropped by construction.
    """
    if mode not in FALSE_NEGATIVE_MODES:
        raise ValueError(f"false_negative_masking must be one of {FALSE_NEGATIVE_MODES}, got {mode!r}")
    if mode == "off":
        return None
    rows = torch.arange(sims.shape[0], device=sims.device)
    mask = None
    if positive_ids is not None and candidate_ids is not None:
        mask = candidate_ids[None, :] == positive_ids[targets][:, None]  # (B, C)
    if mode == "margin":
        s = sims.detach()
        too_close = s > (s[rows, targets] - margin)[:, None]  # (B, C)
        mask = too_close if mask is None else mask | too_close
    if mask is not None:
        mask[rows, targets] = False  # keep the real positive
    return mask


def cosent(
    text: Tensor,
    text_pair: Tensor,
    scores: Tensor,
    *,
    temperature: float = 0.05,
    weight: float = 0.04,
) -> Tensor:
    """CoSENT ranking loss on graded pair scores (report, 'Multi-task hybrid loss training': STS and pair classification).

    With s_i = cos(text_i, text_pair_i) / tau, every pair of rows (i, j) whose gold scores say
    i should rank above j (scores[i] > scores[j]) is penalised when s_j approaches s_i:

        loss = weight * log(1 + sum_{scores[i] > scores[j]} exp(s_j - s_i))

    Unlike a contrastive loss on binarised labels, it uses the full ordering of the scores.

    Args:
        text, text_pair: (B, D) embeddings of the two sides.
        scores: (B,) gold similarity scores (any scale; only their order matters).
        temperature: tau (0.05 in the report, i.e. scale 20).
        weight: loss weight (0.04 in the report).

    Returns:
        Scalar. Zero when no pair is ordered (all scores equal, or B = 1).

    Example:
        >>> a, b = torch.randn(4, 8), torch.randn(4, 8)
        >>> float(cosent(a, b, torch.tensor([3.0, 3.0, 3.0, 3.0])))  # no ordered pair: log(1) = 0
        0.0
    """
    sims = (_unit(text) * _unit(text_pair)).sum(-1) / temperature  # (B,)
    diff = sims[None, :] - sims[:, None]  # (B, B): entry (i, j) = s_j - s_i
    ordered = scores[:, None] > scores[None, :]  # (B, B): row i should rank above column j
    diff = diff.masked_fill(~ordered, float("-inf")).reshape(-1)
    zero = torch.zeros(1, device=diff.device, dtype=diff.dtype)
    return weight * torch.logsumexp(torch.cat([zero, diff]), dim=0)


def cls_contrast(
    text: Tensor,
    positive: Tensor,
    negatives: Tensor,
    *,
    temperature: float = 0.05,
    weight: float = 0.2,
    negative_mask: Tensor | None = None,
) -> Tensor:
    """Label-text contrastive loss (report, 'Multi-task hybrid loss training': classification and clustering).

    Each text is scored only against its own gold label text and its own K negative label texts:
    other rows' labels are *not* negatives, because in a classification batch they are often the
    same label (a false negative). Cross-entropy with target 0:

        loss = weight * mean_i -log softmax([cos(t_i, p_i), cos(t_i, n_i1), ..., cos(t_i, n_iK)] / tau)[0]

    Computed in O(B K D) with a batched dot product, never a B x (B K) matrix.

    Args:
        text: (B, D) text embeddings.
        positive: (B, D) gold label-text embeddings.
        negatives: (B, K, D) negative label-text embeddings.
        temperature: tau (0.05 in the report).
        weight: loss weight (0.2 in the report).
        negative_mask: (B, K) bool, False where a row has no K-th negative (rows take min(K, available)
            label negatives, as the reference does); those columns drop out of the softmax.

    Returns:
        Scalar.

    Example:
        >>> t, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 3, 8)
        >>> cls_contrast(t, p, n).shape
        torch.Size([])
    """
    t = _unit(text)  # (B, D)
    pos = (t * _unit(positive)).sum(-1, keepdim=True)  # (B, 1)
    neg = torch.einsum("bd,bkd->bk", t, _unit(negatives))  # (B, K)
    if negative_mask is not None:
        neg = neg.masked_fill(~negative_mask, float("-inf"))
    logits = torch.cat([pos, neg], dim=1) / temperature  # (B, 1 + K)
    targets = torch.zeros(t.shape[0], dtype=torch.long, device=t.device)
    return weight * F.cross_entropy(logits, targets)


def matryoshka(
    loss_fn: Callable[..., Tensor],
    dims: Sequence[int],
    embeddings: Sequence[Tensor | None],
    weights: Sequence[float] | None = None,
    **loss_kwargs,
) -> Tensor:
    """Matryoshka Representation Learning: the loss on nested prefixes, averaged (report, 'Matryoshka representation learning').

    ``loss_fn(*[e[..., :d] for e in embeddings], **loss_kwargs)`` for every d in ``dims``, then the
    weighted mean (equal weights by default, as in the report). The embeddings are computed once:
    only the cheap similarity part is repeated per dim.

    Args:
        loss_fn: one of the losses above (or any function of embedding tensors).
        dims: nesting dims, e.g. (256, 512, 768, 1024, 1280, 1536, 1792).
        embeddings: positional embedding arguments of ``loss_fn``; None passes through.
        weights: one weight per dim (default: all 1).
        **loss_kwargs: forwarded to ``loss_fn`` (scores, temperature, ids, ...).

    Returns:
        Scalar: sum_d w_d * loss_d / sum_d w_d.

    Example:
        >>> q, p = torch.randn(4, 16), torch.randn(4, 16)
        >>> full = retrieval_infonce(q[:, :8], p[:, :8]) + retrieval_infonce(q, p)
        >>> bool(torch.isclose(matryoshka(retrieval_infonce, [8, 16], [q, p]), full / 2))
        True
    """
    if not dims:
        raise ValueError("matryoshka needs at least one dim")
    weights = [1.0] * len(dims) if weights is None else list(weights)
    if len(weights) != len(dims):
        raise ValueError(f"got {len(weights)} weights for {len(dims)} dims")
    total = 0.0
    for d, w in zip(dims, weights):
        truncated = [e[..., :d] if e is not None else None for e in embeddings]
        total = total + w * loss_fn(*truncated, **loss_kwargs)
    return total / sum(weights)
