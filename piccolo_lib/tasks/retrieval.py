"""Retrieval and reranking: InfoNCE over in-batch and hard negatives (report, 'Multi-task hybrid loss training').

Record ``retri_contrast``: ``text`` (the query), ``text_pos`` (a passage, or a list to draw one from per epoch),
``text_neg`` (hard negatives; ``neg_num`` of them are drawn per row and epoch). Every passage of the batch is a
candidate for every query; a candidate with the same text as a query's positive is masked for it (the text id
is the false-negative id). Defaults: tau 0.01, weight 1 (the reference loss).

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..losses import gather_candidates, retrieval_infonce
from ..text import text_id
from .base import Draw, LossOptions, Rule, Task


class Retrieval(Task):
    name = "retri_contrast"
    aliases = ("retrieval", "reranking")
    columns = ("text", "text_pos", "text_neg")
    rules = (Rule("text", "text"), Rule("text_pos", "text|texts"), Rule("text_neg", "texts"),
             Rule("text_neg", "negatives", when="neg_num"))
    temperature, weight = 0.01, 1.0
    loss_fn = staticmethod(retrieval_infonce)
    loss_label = "InfoNCE (tau 0.01)"
    index_keys = ("query", "positive", "negative")

    def collate(self, rows: list[dict], table, draw: Draw, *, dataset: str, neg_num: int) -> dict[str, Any]:
        """``query`` (B,), ``positive`` (B,), ``negative`` (B, K) table rows; ``ids`` (B, 1+K) text ids of the
        positive and the negatives (false-negative masking)."""
        positives = [draw.positive(r) for r in rows]
        negatives = [draw.negatives(dataset, r, p, neg_num) if neg_num else [] for r, p in zip(rows, positives)]
        return {
            "query": table.index("query", [r["text"] for r in rows]),
            "positive": table.index("passage", positives),
            "negative": table.index("passage", [n for ns in negatives for n in ns]).reshape(len(rows), neg_num),
            "ids": torch.tensor([[text_id(p)] + [text_id(n) for n in ns] for p, ns in zip(positives, negatives)],
                                dtype=torch.long).reshape(len(rows), 1 + neg_num),
        }

    def loss(self, emb: Tensor, batch: dict[str, Any], options: LossOptions) -> Tensor:
        query, positive = emb[batch["query"]], emb[batch["positive"]]  # (B, D), (B, D)
        negatives = emb[batch["negative"]] if batch["negative"].numel() else None  # (B, K, D) or None
        ids = batch.get("ids")
        pos_ids = None if ids is None else ids[:, 0]
        neg_ids = None if ids is None or negatives is None else ids[:, 1:]
        offset = 0
        if options.cross_device:
            positive, negatives, pos_ids, neg_ids, offset = gather_candidates(positive, negatives, pos_ids, neg_ids)
        return self._nested((query, positive, negatives), options, positive_ids=pos_ids, negative_ids=neg_ids,
                            target_offset=offset, false_negatives=options.false_negatives,
                            margin=options.false_negative_margin)
