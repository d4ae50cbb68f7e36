"""The three Piccolo2 losses as pure functions on embeddings, plus Matryoshka (MRL) nesting.

Piccolo2 (arXiv 2405.06932; report, 'Multi-task hybrid loss training') routes each task-homogeneous batch to the
loss that fits its labels:

=====================  ==========================  ==================================  ===========
record ``type``        task families               loss                                 defaults
=====================  ==========================  ==================================  ===========
``retri_contrast``     retrieval, reranking        InfoNCE, in-batch + hard negatives   tau=0.01
``cosent``             STS, pair classification    CoSENT ranking on graded scores      tau=0.05, w=0.04
``cls_contrast``       classification, clustering  label-text contrast, no in-batch     tau=0.05, w=0.2
=====================  ==========================  ==================================  ===========

The package keeps the math apart from the plumbing:

* ``functions``: the three losses, :func:`matryoshka` and :func:`false_negative_mask`, pure functions on
  embedding tensors (tested on random tensors against independent computations);
* ``routing``: record type -> loss, the report's temperatures and weights, aliases (:func:`canonical_type`);
* ``adapter``: :class:`PiccoloLoss`, what the sentence-transformers Trainer calls;
* ``distributed``: :func:`gather_candidates`, cross-device retrieval negatives.

Everything is importable from ``piccolo_lib.losses`` as before.

Introduced in notebooks/02_three_losses.ipynb.
"""

from .adapter import PiccoloLoss
from .distributed import gather_candidates
from .functions import (FALSE_NEGATIVE_MODES, cls_contrast, cosent, false_negative_mask, matryoshka,
                        retrieval_infonce)
from .routing import ALIASES, DEFAULT_HPARAMS, TASK_LOSSES, canonical_type

__all__ = ["ALIASES", "DEFAULT_HPARAMS", "FALSE_NEGATIVE_MODES", "PiccoloLoss", "TASK_LOSSES", "canonical_type",
           "cls_contrast", "cosent", "false_negative_mask", "gather_candidates", "matryoshka", "retrieval_infonce"]
