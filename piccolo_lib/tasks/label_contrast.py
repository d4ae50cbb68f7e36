"""Classification and clustering: each text against its gold label text and K other label texts, no in-batch
negatives (report, 'Multi-task hybrid loss training').

Record ``cls_contrast``: ``text``, ``text_pos`` (the gold label text), ``text_neg`` (other label texts). A row
takes min(``neg_num``, available) label negatives (the reference's rule: a binary set trains with its one
negative label). Each distinct label text of the batch is encoded once and indexed (the reference encodes every
label string of every row: same loss and gradient, far more rows). Defaults: tau 0.05, weight 0.2.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..losses import cls_contrast
from .base import Draw, LossOptions, Rule, Task


class LabelContrast(Task):
    name = "cls_contrast"
    aliases = ("classification", "clustering")
    columns = ("text", "text_pos", "text_neg")
    rules = (Rule("text", "text"), Rule("text_pos", "text|texts"), Rule("text_neg", "texts"),
             Rule("text_neg", "gold_not_negative"), Rule("text_neg", "negatives"))
    temperature, weight = 0.05, 0.2
    loss_fn = staticmethod(cls_contrast)
    loss_label = "label contrast (tau 0.05, w 0.2)"
    index_keys = ("text", "labels")

    def collate(self, rows: list[dict], table, draw: Draw, *, dataset: str, neg_num: int) -> dict[str, Any]:
        """``text`` (B,) table rows; ``labels`` (B, 1+K): the gold label text's row, then the negatives', -1 where
        a row has fewer than K label negatives. Label texts are added to the table in sorted order."""
        texts = table.index("query", [r["text"] for r in rows])
        gold = [draw.positive(r) for r in rows]
        negs = []
        for row, pos in zip(rows, gold):
            pool = sorted({n for n in draw.negatives_of(dataset, row) if n != pos})
            negs.append(draw.rng(row).sample(pool, min(neg_num, len(pool))))
        for label in sorted(set(gold) | {n for ns in negs for n in ns}):
            table.add("passage", label)
        width = max(len(ns) for ns in negs)
        labels = torch.tensor([[table.add("passage", p)] + [table.add("passage", n) for n in ns]
                               + [-1] * (width - len(ns)) for p, ns in zip(gold, negs)], dtype=torch.long)
        return {"text": texts, "labels": labels}

    def loss(self, emb: Tensor, batch: dict[str, Any], options: LossOptions) -> Tensor:
        labels = batch["labels"]  # (B, 1+K)
        negatives = labels[:, 1:]
        args = (emb[batch["text"]], emb[labels[:, 0]], emb[negatives.clamp(min=0)])  # (B, D), (B, D), (B, K, D)
        return self._nested(args, options, negative_mask=negatives >= 0)
