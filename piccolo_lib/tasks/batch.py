"""One training batch: its distinct texts, each tokenized once, sorted by length; and the task's index tensors.

A batch of retrieval rows holds queries, positives and hard negatives; a classification batch holds texts and
label texts. The same text often appears several times (a passage that is one row's positive and another's
negative; a label text shared by many rows). :class:`TextTable` keeps each text once per role, keyed by the one
text identity (:func:`piccolo_lib.text.text_id`, also the false-negative id), and :class:`PiccoloCollator`
tokenizes the table once and sorts it by length, so the encoder step (:mod:`piccolo_lib.model.packing`) can cut it
into chunks each padded only to its own longest row, and nothing is encoded twice.

The collated batch is what the sentence-transformers Trainer hands the loss:

=======================  =================================================================================
``texts_input_ids`` ...  (U, L) the U distinct texts, shortest first (one feature column for the Trainer)
``label``                the task's index tensors into those U rows, plus ``lengths`` (U real-token counts)
                         and ``padding`` (right or left): a dict, see each task's :meth:`collate`
``dataset_name``         which dataset (and so which loss) the batch belongs to
=======================  =================================================================================

Introduced in notebooks/01_data_formats.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..text import text_id
from .base import Draw, Task

ROLES = ("query", "passage")  # a role decides a text's prompt and maximum length


class TextTable:
    """The distinct texts of one batch: each (role, text identity) once, in first-seen order."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []  # (role, text)
        self._rows: dict[tuple[str, int], int] = {}

    def add(self, role: str, text: str) -> int:
        """The table row of ``text`` in ``role`` (added if new)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        key = (role, text_id(text))
        if key not in self._rows:
            self._rows[key] = len(self.entries)
            self.entries.append((role, text))
        return self._rows[key]

    def index(self, role: str, texts: list[str]) -> Tensor:
        """(len(texts),) int64 table rows of ``texts``."""
        return torch.tensor([self.add(role, t) for t in texts], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.entries)


def _left_padded(mask: Tensor) -> bool:
    """True when some row's padding comes first (a decoder tokenizer padding on the left)."""
    return mask.dim() == 2 and mask.shape[1] > 1 and bool((mask[:, 1:] > mask[:, :-1]).any())


def _stack(parts: list[dict[str, Any]], pad_token_id: int) -> tuple[dict[str, Any], str]:
    """Concatenate tokenized parts row-wise, padding each to the widest on its padding side."""
    width = max(p["input_ids"].shape[1] for p in parts)
    side = "left" if any(_left_padded(p["attention_mask"]) for p in parts) else "right"
    out: dict[str, Any] = {}
    for key, first in parts[0].items():
        if not isinstance(first, Tensor):
            out[key] = first
            continue
        fill = pad_token_id if key == "input_ids" else 0
        padded = [torch.nn.functional.pad(p[key], (width - p[key].shape[1], 0) if side == "left"
                                          else (0, width - p[key].shape[1]), value=fill) for p in parts]
        out[key] = torch.cat(padded)
    return out, side


def tokenize_table(table: TextTable, tokenize: Callable[..., dict], prompts: dict[str, str],
                   max_lengths: dict[str, int], pad_token_id: int = 0) -> tuple[dict[str, Any], Tensor, list[int], str]:
    """Tokenize every text of ``table`` once (one call per role, with the role's prompt and max length), then
    sort the rows by length (stable).

    Returns:
        (features: (U, L) tensors, shortest row first; position: (U,) the sorted row of each table row;
        lengths: the U real-token counts in sorted order; padding side: "right" or "left")
    """
    parts, rows = [], []
    for role in ROLES:
        mine = [i for i, (r, _) in enumerate(table.entries) if r == role]
        if not mine:
            continue
        tokens = tokenize([prompts.get(role, "") + table.entries[i][1] for i in mine], max_length=max_lengths[role])
        if "attention_mask" not in tokens:  # a bare tokenizer (notebook 02's toy): padding is pad_token_id
            tokens = {**tokens, "attention_mask": (tokens["input_ids"] != pad_token_id).long()}
        parts.append(tokens)
        rows += mine
    features, side = _stack(parts, pad_token_id)
    lengths = features["attention_mask"].sum(1)
    order = torch.sort(lengths, stable=True).indices  # sorted position -> stacked row
    features = {k: v.index_select(0, order) if isinstance(v, Tensor) else v for k, v in features.items()}
    stacked_row = torch.tensor(rows, dtype=torch.long)[order]  # sorted position -> table row
    position = torch.empty(len(rows), dtype=torch.long)
    position[stacked_row] = torch.arange(len(rows))
    return features, position, lengths[order].tolist(), side


@dataclass
class TaskSpec:
    """How one dataset is collated: its task (a record type or alias), hard negatives per row, prompts.

    ``query_prompt`` prefixes the "query" role (retrieval queries, both texts of an STS/pair row, classification
    texts); ``passage_prompt`` the "passage" role (retrieval positives and negatives, label texts).
    """

    task_type: str
    neg_num: int = 0
    query_prompt: str = ""
    passage_prompt: str = ""


@dataclass
class EpochState:
    """The epoch the sampler is in, read by the collator (negatives are redrawn every epoch)."""

    epoch: int = 0


@dataclass
class PiccoloCollator:
    """Rows of one dataset -> one batch: the task's :meth:`~piccolo_lib.tasks.base.Task.collate`, then the distinct
    texts tokenized once and sorted by length (:func:`tokenize_table`).

    Negatives and list-valued ``text_pos`` are drawn with an RNG keyed by (seed, epoch, row): the same seed gives
    the same batches, whatever the rank or a resume point. ``negative_overrides``: {(dataset, row index):
    negatives} replacing a row's ``text_neg`` (refreshed negatives, :mod:`piccolo_lib.train.refresh`);
    ``batches_built`` counts the batches this process collated (refreshes are dated by it).
    """

    preprocess_fn: Callable[..., dict]
    specs: dict[str, TaskSpec]
    seed: int = 0
    query_max_len: int = 64
    passage_max_len: int = 128
    state: EpochState = field(default_factory=EpochState)
    valid_label_columns: list[str] = field(default_factory=lambda: ["label"])
    pad_token_id: int = 0  # fills input_ids where a role's rows are padded to the batch's widest
    negative_overrides: Any = field(default_factory=dict)
    batches_built: int = 0
    _draw: Draw = field(default_factory=Draw)

    def task(self, dataset: str) -> Task:
        from . import get_task  # the registry imports every task module, which import this one

        return get_task(self.specs[dataset].task_type)

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        self.batches_built += 1
        name = rows[0]["dataset_name"]
        spec, task = self.specs[name], self.task(name)
        self._draw.seed, self._draw.epoch = self.seed, self.state.epoch
        self._draw.negatives_of = lambda dataset, row: self.negative_overrides.get((dataset, row["_row"]),
                                                                                   row["text_neg"])
        table = TextTable()
        label = task.collate(rows, table, self._draw, dataset=name, neg_num=spec.neg_num)
        features, position, lengths, side = tokenize_table(
            table, self.preprocess_fn, {"query": spec.query_prompt, "passage": spec.passage_prompt},
            {"query": self.query_max_len, "passage": self.passage_max_len}, self.pad_token_id)
        for key in task.index_keys:  # table rows -> sorted rows; -1 (no such text) stays -1
            idx = label[key]
            label[key] = torch.where(idx >= 0, position[idx.clamp(min=0)], idx)
        label.update(lengths=lengths, padding=side)
        return {"dataset_name": name, **{f"texts_{k}": v for k, v in features.items()}, "label": label}
