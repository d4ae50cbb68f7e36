"""The adapter the sentence-transformers Trainer calls: encode a collated batch, then the routed pure loss.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..model.packing import packed_embed
from .distributed import gather_candidates
from .functions import FALSE_NEGATIVE_MODES, cls_contrast, cosent, matryoshka, retrieval_infonce
from .routing import DEFAULT_HPARAMS, canonical_type


class PiccoloLoss(torch.nn.Module):
    """Adapter: encodes a collated batch once, then calls the pure loss (with MRL over ``mrl_dims``).

    The batch layout is the one :class:`piccolo_lib.data.PiccoloCollator` builds:

    ==================  ===================================  ==========================================
    task type           features (one forward pass each)     labels
    ==================  ===================================  ==========================================
    ``retri_contrast``  query (B), positive (B), neg (B*K)   (B, 1+K) int64 text ids (false negatives)
    ``cosent``          text (B), text_pair (B)              (B,) scores
    ``cls_contrast``    text (B), distinct label texts (U)   (B, 1+K) indices into the U label texts
    ==================  ===================================  ==========================================

    Encoding each distinct label text once per batch (instead of B*(1+K) label strings) gives the
    same loss and gradient as the reference code's strategy with far fewer rows encoded.

    Why not sentence-transformers' own losses here: MultipleNegativesRankingLoss (scale 1/tau) and
    CoSENTLoss (scale 20) compute the same numbers as :func:`retrieval_infonce` and :func:`cosent`
    (tests/test_losses.py proves it), but wrapped in MatryoshkaLoss they cannot mask false negatives
    by text identity, gather cross-device candidates with the ids, or reuse one set of embeddings
    for the label-deduplicated classification loss; so the adapter calls the pure functions.

    ``false_negatives`` / ``false_negative_margin`` choose the retrieval false-negative rule
    (:func:`false_negative_mask`). ``gradient_cache_minibatch`` > 0 computes the same loss and
    gradients with GradCache (:mod:`piccolo_lib.gradcache`): activations of that many rows at a time.

    Extra keyword arguments from the Trainer (e.g. ``num_items_in_batch``) are accepted and ignored.
    """

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
        self.task_type = canonical_type(task_type)
        hp = DEFAULT_HPARAMS[self.task_type]
        self.temperature = hp["temperature"] if temperature is None else temperature
        self.weight = hp["weight"] if weight is None else weight
        self.mrl_dims = list(mrl_dims) if mrl_dims else None
        self.mrl_weights = mrl_weights
        self.dataset_name = dataset_name
        self.tracker = tracker  # the training callback reads (dataset, task, loss) from here
        self.cross_device = cross_device  # retrieval: positives/negatives of every rank are candidates
        if false_negatives not in FALSE_NEGATIVE_MODES:
            raise ValueError(f"false_negative_masking must be one of {FALSE_NEGATIVE_MODES}, got {false_negatives!r}")
        self.false_negatives, self.false_negative_margin = false_negatives, false_negative_margin
        self.gradient_cache_minibatch = gradient_cache_minibatch  # > 0: GradCache in chunks of this many rows
        self.packed = packed  # encode each distinct row once, length-sorted chunks (piccolo_lib.packing)

    def _embed(self, feature: dict[str, Tensor]) -> Tensor:
        return self.model(feature)["sentence_embedding"]

    def embed_columns(self, features: list[dict[str, Tensor]]) -> list[Tensor]:
        """One (B_c, D) embedding tensor per feature column; packed (:func:`packed_embed`) unless ``packed=False``."""
        if not self.packed:
            return [self._embed(f) for f in features]
        pad = getattr(getattr(self.model, "tokenizer", None), "pad_token_id", None)
        return packed_embed(self._embed, features, pad_token_id=pad or 0)

    def forward(self, features: list[dict[str, Tensor]], labels: Tensor | None = None, **_: object) -> Tensor:
        if self.gradient_cache_minibatch > 0 and torch.is_grad_enabled():
            from ..model.gradcache import cached_loss  # embed in chunks without a graph, backprop chunk by chunk

            loss = cached_loss(self, features, labels, self.gradient_cache_minibatch)
        else:
            loss = self.loss_from_embeddings(self.embed_columns(features), labels)
        if self.tracker is not None:
            self.tracker.append((self.dataset_name, self.task_type, float(loss.detach())))
        return loss

    def loss_from_embeddings(self, embs: list[Tensor], labels: Tensor | None) -> Tensor:
        """The routed loss (with MRL) on the embeddings of each feature column, in ``forward``'s order."""
        fn, args, kwargs = getattr(self, f"_{self.task_type}_inputs")(embs, labels)
        kwargs.update(temperature=self.temperature, weight=self.weight)
        if self.mrl_dims:
            return matryoshka(fn, self.mrl_dims, args, self.mrl_weights, **kwargs)
        return fn(*args, **kwargs)

    def _retri_contrast_inputs(self, embs: list[Tensor], labels: Tensor | None):
        """query (B, D), positive (B, D), negatives (B, K, D); labels (B, 1+K) text ids."""
        query, positive = embs[0], embs[1]
        negatives = embs[2].reshape(query.shape[0], -1, embs[2].shape[-1]) if len(embs) > 2 else None
        pos_ids = None if labels is None else labels[:, 0]
        neg_ids = None if labels is None or negatives is None else labels[:, 1:]
        offset = 0
        if self.cross_device:
            positive, negatives, pos_ids, neg_ids, offset = gather_candidates(positive, negatives, pos_ids, neg_ids)
        return retrieval_infonce, (query, positive, negatives), dict(
            positive_ids=pos_ids, negative_ids=neg_ids, target_offset=offset,
            false_negatives=self.false_negatives, margin=self.false_negative_margin)

    def _cosent_inputs(self, embs: list[Tensor], labels: Tensor | None):
        """text (B, D), text_pair (B, D); labels (B,) gold scores."""
        return cosent, (embs[0], embs[1]), dict(scores=labels.float())

    def _cls_contrast_inputs(self, embs: list[Tensor], labels: Tensor | None):
        """text (B, D), the U distinct label texts (U, D); labels (B, 1+K) indices into them, -1 = none."""
        text, distinct = embs
        neg_ids = labels[:, 1:]  # (B, K); -1: this row has fewer label negatives
        args = (text, distinct[labels[:, 0]], distinct[neg_ids.clamp(min=0)])  # gather: (B, D), (B, K, D)
        return cls_contrast, args, dict(negative_mask=neg_ids >= 0)
