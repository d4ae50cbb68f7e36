"""The loss the sentence-transformers Trainer calls: encode the batch's distinct texts once, then the task's loss.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from sentence_transformers.base.losses.gradcache import CachedLossMixin
from torch import Tensor

from ..losses import FALSE_NEGATIVE_MODES
from ..model.packing import autocast, autocast_state, encode_sorted
from ..tasks import LossOptions, get_task


class PiccoloLoss(CachedLossMixin, torch.nn.Module):
    """Adapter: one encoder step over the batch's distinct texts, then ``task.loss`` (with MRL over ``mrl_dims``).

    The batch is what :class:`piccolo_lib.tasks.PiccoloCollator` builds: one feature column (the U distinct
    texts, shortest first) and, as labels, the task's index tensors into those U rows. The encoder step is

    * **plain** (``packed=False``): one forward over the whole table, padded to its longest text;
    * **packed** (default): length-sorted chunks each cut to its longest row (:func:`encode_sorted`);
    * **cached** (``gradient_cache_minibatch`` > 0): GradCache, through sentence-transformers'
      :class:`CachedLossMixin`: the table in chunks of that many rows without a graph, the whole batch's loss
      and its gradient with respect to the embeddings, then each chunk re-encoded with a graph in the backward
      hook. The chunks are consecutive rows of the sorted table, each cut to its longest row by the mixin's
      mini-batching, so GradCache is packed too. Kept from the mixin: RNG replay, the DDP no_sync handling and
      the backward hook; added here: the autocast of the forward is re-entered when a chunk is re-encoded.

    Whatever the step, the loss and gradients are the same (up to float rounding and dropout masks).

    Why not sentence-transformers' own losses: MultipleNegativesRankingLoss (scale 1/tau) and CoSENTLoss
    (scale 20) compute the same numbers as the pure functions (tests/test_losses.py proves it), but they get one
    padded tensor per column, cannot mask false negatives by text identity or gather the ids across ranks, and
    there is no label-contrast loss; so the adapter calls :mod:`piccolo_lib.losses` through the task.
    Per-task loss logging stays in our metrics.jsonl (``tracker``): sentence-transformers'
    ``track_loss_components`` averages each component over every logged step, and here each step has one task.

    Extra keyword arguments from the Trainer (e.g. ``num_items_in_batch``) are accepted and ignored.
    """

    mini_batch_num_tokens = None
    show_progress_bar = False

    def __init__(
        self,
        model: torch.nn.Module,
        task_type: str,
        *,
        mrl_dims: Sequence[int] | None = None,
        mrl_weights: Sequence[float] | None = None,
        temperature: float | None = None,
        weight: float | None = None,
        dataset_name: str | None = None,
        tracker: list | None = None,
        cross_device: bool = False,
        false_negatives: str = "text",
        false_negative_margin: float = 0.0,
        gradient_cache_minibatch: int = 0,
        packed: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.task = get_task(task_type)
        self.task_type = self.task.name
        self.temperature = self.task.temperature if temperature is None else temperature
        self.weight = self.task.weight if weight is None else weight
        self.mrl_dims = list(mrl_dims) if mrl_dims else None
        self.mrl_weights = mrl_weights
        self.dataset_name = dataset_name
        self.tracker = tracker  # the metrics callback reads (dataset, task, loss) from here
        if false_negatives not in FALSE_NEGATIVE_MODES:
            raise ValueError(f"false_negative_masking must be one of {FALSE_NEGATIVE_MODES}, got {false_negatives!r}")
        self.options = LossOptions(self.temperature, self.weight, self.mrl_dims, mrl_weights, cross_device,
                                   false_negatives, false_negative_margin)
        self.cross_device, self.false_negatives = cross_device, false_negatives
        self.false_negative_margin = false_negative_margin
        self.gradient_cache_minibatch = self.mini_batch_size = gradient_cache_minibatch
        self.uses_gradient_cache = gradient_cache_minibatch > 0
        self.packed = packed
        self._amp = None

    def encode(self, feature: dict[str, Any], labels: dict[str, Any]) -> Tensor:
        """(U, D) embeddings of the batch's distinct texts: one call (plain) or length-sorted chunks (packed)."""
        lengths = labels.get("lengths")
        if lengths is None and isinstance(feature.get("attention_mask"), torch.Tensor):
            lengths = feature["attention_mask"].sum(1).tolist()
        if lengths is None:  # no token lengths (an encoder of other inputs): one call
            return self.model(feature)["sentence_embedding"]
        return encode_sorted(lambda f: self.model(f)["sentence_embedding"], feature, lengths,
                             padding=labels.get("padding", "right"), packed=self.packed)

    def loss_from_table(self, emb: Tensor, labels: dict[str, Any]) -> Tensor:
        """The task's loss (with MRL) from the (U, D) embeddings of the batch's distinct texts."""
        return self.task.loss(emb, labels, self.options)

    def forward(self, features: list[dict[str, Any]], labels: dict[str, Any] | None = None, **_: object) -> Tensor:
        if len(features) != 1 or not isinstance(labels, dict):
            raise TypeError("PiccoloLoss takes the batch of piccolo_lib.tasks.PiccoloCollator: one feature column "
                            f"(the distinct texts) and the task's index dict as labels; got {len(features)} "
                            f"column(s) and labels of type {type(labels).__name__}")
        if self.uses_gradient_cache and torch.is_grad_enabled():
            self._amp = autocast_state()  # re-entered when the backward hook re-encodes a chunk
            loss = self.forward_cached(features, labels)
        else:
            loss = self.loss_from_table(self.encode(features[0], labels), labels)
        if self.tracker is not None:
            self.tracker.append((self.dataset_name, self.task_type, float(loss.detach())))
        return loss

    # -- CachedLossMixin: the whole-batch loss from the chunks' embeddings, and a chunk's forward
    def calculate_loss(self, reps: list[list[Tensor]], labels: dict[str, Any] | None = None, *,
                       with_backward: bool = False) -> Tensor:
        loss = self.loss_from_table(torch.cat(reps[0]), labels)
        if with_backward:
            loss.backward()
            return loss.detach()
        return loss

    def embed_minibatch(self, sentence_feature, begin, end, with_grad, copy_random_state, random_state=None):
        with autocast(self._amp):
            return super().embed_minibatch(sentence_feature, begin, end, with_grad, copy_random_state, random_state)
