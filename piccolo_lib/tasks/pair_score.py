"""STS and pair classification: CoSENT on graded pair scores (report, 'Multi-task hybrid loss training').

Record ``cosent``: ``text``, ``text_pair``, ``label`` (a number; only the order of the scores matters). Both sides
are "queries" (the reference prefixes both with the query prompt). Defaults: tau 0.05 (scale 20), weight 0.04.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..losses import cosent
from .base import Draw, LossOptions, Rule, Task


class PairScore(Task):
    name = "cosent"
    aliases = ("sts", "pair_classification")
    columns = ("text", "text_pair", "label")
    rules = (Rule("text", "text"), Rule("text_pair", "text"), Rule("label", "number"))
    temperature, weight = 0.05, 0.04
    loss_fn = staticmethod(cosent)
    loss_label = "CoSENT (tau 0.05, w 0.04)"
    index_keys = ("text", "text_pair")

    def collate(self, rows: list[dict], table, draw: Draw, *, dataset: str, neg_num: int) -> dict[str, Any]:
        """``text`` (B,), ``text_pair`` (B,) table rows; ``scores`` (B,) float gold scores."""
        return {"text": table.index("query", [r["text"] for r in rows]),
                "text_pair": table.index("query", [r["text_pair"] for r in rows]),
                "scores": torch.tensor([float(r["label"]) for r in rows])}

    def loss(self, emb: Tensor, batch: dict[str, Any], options: LossOptions) -> Tensor:
        return self._nested((emb[batch["text"]], emb[batch["text_pair"]]), options, scores=batch["scores"].float())
