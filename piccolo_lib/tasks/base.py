"""What a task family is: its record columns and rules, how it collates a batch, how it calls its loss.

Piccolo2 (report, 'Multi-task hybrid loss training') routes every task-homogeneous batch to the loss that fits its
labels. Here each family is one module with one :class:`Task` object, and everything that depends on the family
lives on it:

==========================  =====================================================================================
``name``, ``aliases``       the record ``type`` (``retri_contrast``) and the C-MTEB families it covers
``columns``, ``rules``      what a row must hold, as data (:class:`Rule`), read by :mod:`piccolo_lib.data.validation`
``temperature``, ``weight`` the report's defaults ('Training data and settings')
:meth:`Task.collate`        rows -> the batch's texts in a :class:`~piccolo_lib.tasks.batch.TextTable` + index
                            tensors saying which row of the table each role of each row is
:meth:`Task.loss`           the (U, D) embeddings of the table's distinct texts + the index -> the pure loss
                            (:mod:`piccolo_lib.losses`), with Matryoshka nesting
==========================  =====================================================================================

A new task family is one new module with one :class:`Task` subclass, registered in :mod:`piccolo_lib.tasks`.
Nothing else changes: the collator, the encoder step and the trainer adapter only ever talk to a ``Task``.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor

from ..losses import matryoshka


@dataclass(frozen=True)
class Rule:
    """One check of a row's field, read by both validators (:mod:`piccolo_lib.data.validation`).

    Field kinds: ``text`` (a non-empty string), ``texts`` (a list of them), ``text|texts`` (either, non-empty),
    ``number`` (a finite number, not a bool). Row kinds: ``gold_not_negative`` (``text_neg`` must not hold
    ``text_pos``), ``negatives`` (``text_neg`` must not be empty). ``when``: ``always``, or ``neg_num`` (only
    when the dataset trains with hard negatives).
    """

    field: str
    kind: str
    when: str = "always"


@dataclass(frozen=True)
class LossOptions:
    """How a dataset's loss is called: its temperature and weight, MRL, and the retrieval-only switches."""

    temperature: float
    weight: float
    mrl_dims: Sequence[int] | None = None
    mrl_weights: Sequence[float] | None = None
    cross_device: bool = False  # retrieval: every rank's candidates (gather_candidates)
    false_negatives: str = "text"  # retrieval: text | margin | off (false_negative_mask)
    false_negative_margin: float = 0.0


@dataclass
class Draw:
    """Seeded choices for one batch: a row's positive and negatives depend on (seed, epoch, row) only, so the
    same seed gives the same batches whatever the rank, the batch size or a resume point.

    ``negatives_of(dataset, row)`` returns a row's current negative list (refreshed negatives override the
    file's, :mod:`piccolo_lib.train.refresh`).
    """

    seed: int = 0
    epoch: int = 0
    negatives_of: Callable[[str, dict], list[str]] = lambda dataset, row: row["text_neg"]
    warned: set = field(default_factory=set)

    def rng(self, row: dict) -> random.Random:
        return random.Random(f"{self.seed}/{self.epoch}/{row['_row']}")

    def positive(self, row: dict) -> str:
        """The row's positive: ``text_pos`` itself, or a seeded pick from a list of them."""
        pos = row["text_pos"]
        return self.rng(row).choice(pos) if isinstance(pos, list) else pos

    def negatives(self, dataset: str, row: dict, positive: str, k: int) -> list[str]:
        """k hard negatives other than ``positive`` (with replacement, and one warning, when fewer exist)."""
        pool = [n for n in self.negatives_of(dataset, row) if n != positive]
        rng = self.rng(row)
        if len(pool) >= k:
            return rng.sample(pool, k)
        if (dataset, "few") not in self.warned:
            self.warned.add((dataset, "few"))
            warnings.warn(f"dataset {dataset!r}: a row has {len(pool)} negatives < neg_num={k}; "
                          "sampling with replacement", stacklevel=3)
        return [rng.choice(pool) for _ in range(k)]


class Task:
    """A task family: subclass it, set the class attributes, implement :meth:`collate` and :meth:`loss`."""

    name: ClassVar[str]  # the record type, e.g. "retri_contrast"
    aliases: ClassVar[tuple[str, ...]] = ()  # C-MTEB families it covers, e.g. ("retrieval", "reranking")
    columns: ClassVar[tuple[str, ...]]  # the fields every row has
    rules: ClassVar[tuple[Rule, ...]]
    temperature: ClassVar[float]
    weight: ClassVar[float]
    loss_fn: ClassVar[Callable[..., Tensor]]  # the pure loss of piccolo_lib.losses
    loss_label: ClassVar[str]  # how a data summary names the loss
    index_keys: ClassVar[tuple[str, ...]]  # the entries of collate's output that are rows of the text table

    def collate(self, rows: list[dict], table: Any, draw: Draw, *, dataset: str, neg_num: int) -> dict[str, Any]:
        """Add the batch's texts to ``table`` (a :class:`~piccolo_lib.tasks.batch.TextTable`) and return the index
        tensors that say, for each row, which table row holds each of its texts (plus any scores or ids)."""
        raise NotImplementedError

    def loss(self, emb: Tensor, batch: dict[str, Any], options: LossOptions) -> Tensor:
        """The batch's loss from ``emb`` (U, D), the embeddings of the table's distinct texts."""
        raise NotImplementedError

    def _nested(self, args: Sequence[Tensor | None], options: LossOptions, **kwargs: Any) -> Tensor:
        """``loss_fn`` on ``args`` with the options' temperature and weight, averaged over MRL dims if any."""
        kwargs.update(temperature=options.temperature, weight=options.weight)
        if options.mrl_dims:
            return matryoshka(type(self).loss_fn, options.mrl_dims, args, options.mrl_weights, **kwargs)
        return type(self).loss_fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<task {self.name}: {self.loss_label}>"
