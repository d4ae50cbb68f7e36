"""The three Piccolo2 losses as pure functions on embeddings, plus Matryoshka (MRL) nesting.

Piccolo2 (arXiv 2405.06932; report, 'Multi-task hybrid loss training') routes each task-homogeneous batch to the
loss that fits its labels: InfoNCE with in-batch and hard negatives (retrieval, reranking; tau 0.01), CoSENT on
graded scores (STS, pair classification; tau 0.05, weight 0.04), label-text contrast with no in-batch negatives
(classification, clustering; tau 0.05, weight 0.2). This package is the math only, tested on random tensors
against independent computations:

* ``functions``: the three losses, :func:`matryoshka` and :func:`false_negative_mask`;
* ``distributed``: :func:`gather_candidates`, cross-device retrieval negatives.

Which record type goes to which loss, with which defaults, is the task families' business
(:mod:`piccolo_lib.tasks`); encoding a batch and calling the loss is the trainer adapter's
(:class:`piccolo_lib.train.adapter.PiccoloLoss`). Their old names here (``PiccoloLoss``, ``canonical_type``,
``DEFAULT_HPARAMS``, ``ALIASES``, ``TASK_LOSSES``) still resolve, to those modules.

Introduced in notebooks/02_three_losses.ipynb.
"""

import importlib

from .distributed import gather_candidates
from .functions import (FALSE_NEGATIVE_MODES, cls_contrast, cosent, false_negative_mask, matryoshka,
                        retrieval_infonce)

__all__ = ["FALSE_NEGATIVE_MODES", "cls_contrast", "cosent", "false_negative_mask", "gather_candidates", "matryoshka",
           "retrieval_infonce"]
_MOVED_NAMES = {"PiccoloLoss": "train.adapter", "canonical_type": "tasks", "DEFAULT_HPARAMS": "tasks",
                "ALIASES": "tasks", "TASK_LOSSES": "tasks"}


def __getattr__(name: str):
    """Old names of this package resolve to their new modules (imported on first use: they sit layers above)."""
    if name in _MOVED_NAMES:
        return getattr(importlib.import_module(f"piccolo_lib.{_MOVED_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
