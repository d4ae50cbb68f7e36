"""Cross-device negatives: every rank's retrieval candidates gathered, with gradients flowing back.

Introduced in notebooks/06_multi_device.ipynb.
"""

from __future__ import annotations

from torch import Tensor


def gather_candidates(positive: Tensor, negatives: Tensor | None, positive_ids: Tensor | None,
                      negative_ids: Tensor | None):
    """Cross-device negatives: concatenate every rank's positives and negatives (gradients flow back).

    Each rank's queries then score against W*B positives and W*B*K negatives; its own positives
    start at row ``rank * B``. Under DDP (gradients averaged over ranks) this gives the same update
    as one process holding the whole global batch. Outside torch.distributed it changes nothing.

    Returns:
        (positive (W*B, D), negatives (W*B, K, D) or None, positive_ids, negative_ids, target_offset)
    """
    import torch.distributed as dist
    from sentence_transformers.util.distributed import all_gather

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return positive, negatives, positive_ids, negative_ids, 0
    offset = dist.get_rank() * positive.shape[0]
    positive = all_gather(positive, with_grad=True)
    if negatives is not None:
        negatives = all_gather(negatives.contiguous(), with_grad=True)
    positive_ids = None if positive_ids is None else all_gather(positive_ids.contiguous())
    negative_ids = None if negative_ids is None else all_gather(negative_ids.contiguous())
    return positive, negatives, positive_ids, negative_ids, offset
