"""Task-homogeneous, rank-aligned batching and the collator that builds each task's batch.

Why hand-written: sentence-transformers' multi-dataset samplers emit one global sequence of
batches, and accelerate deals consecutive batches to different ranks, so under DDP two ranks can
run different losses at the same step (a rank gathering retrieval negatives while another runs
CoSENT deadlocks). :class:`TaskHomogeneousBatchSampler` emits batches in groups of
``world_size``, all from one dataset, with disjoint rows: rank r takes the r-th batch of each group
(accelerate's dealing), so every rank runs the same loss at every step.

Introduced in notebooks/01_data_formats.ipynb.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sentence_transformers.base.sampler import MultiDatasetDefaultBatchSampler
from torch.utils.data import ConcatDataset

from ..errors import ConfigError


def text_id(text: str) -> int:
    """A 63-bit id of the normalised text (NFKC-free: strip + collapse spaces + lower).

    Used to spot the same passage twice in a batch (a false negative), by identity rather than
    by embedding similarity.
    """
    norm = " ".join(text.split()).lower()
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def dataset_weights(sizes: Sequence[int], repeats: Sequence[int], mode: str = "size",
                    explicit: Sequence[float] | None = None, temperature: float = 1.0) -> np.ndarray:
    """Sampling probability per dataset.

    ``size``: proportional to rows x repeat (the reference); ``explicit``: the given weights;
    ``temperature``: (rows x repeat) ** (1 / T), which flattens the mix for T > 1.
    """
    base = np.asarray(sizes, dtype=float) * np.asarray(repeats, dtype=float)
    if mode == "explicit":
        if explicit is None or len(explicit) != len(sizes):
            raise ConfigError("explicit sampling needs one weight per dataset")
        w = np.asarray(explicit, dtype=float)
    elif mode == "temperature":
        w = base ** (1.0 / temperature)
    elif mode == "size":
        w = base
    else:
        raise ConfigError(f"unknown sampling mode {mode!r}; expected size, explicit or temperature")
    return w / w.sum()


class TaskHomogeneousBatchSampler(MultiDatasetDefaultBatchSampler):
    """Yields index batches from one dataset at a time, ``world_size`` consecutive batches per step.

    Per epoch, dataset d gets ``steps_d`` steps (size mode: floor(rows_d x repeat_d / (B x W));
    other modes: the same total number of steps split by the weights, seeded). Rows are drawn from
    a fresh permutation of the dataset (and again for each repeat), so within a step the W batches
    never share a row. The order of steps is shuffled with ``seed + epoch``.
    """

    def __init__(self, dataset: ConcatDataset, batch_samplers: list, generator: torch.Generator | None = None,
                 seed: int = 0, *, world_size: int = 1, repeats: Sequence[int] | None = None,
                 mode: str = "size", weights: Sequence[float] | None = None, temperature: float = 1.0,
                 state: "EpochState | None" = None) -> None:
        super().__init__(dataset, batch_samplers, generator=generator, seed=seed)
        self.world_size = world_size
        self.sizes = [len(d) for d in dataset.datasets]
        self.repeats = list(repeats) if repeats is not None else [1] * len(self.sizes)
        self.mode, self.explicit, self.temperature = mode, weights, temperature
        self.state = state
        self.step_rows = self.batch_size * world_size

    def steps_per_dataset(self, rng: np.random.Generator | None = None) -> list[int]:
        """Steps each dataset gets this epoch (before shuffling their order)."""
        full = [s * r // self.step_rows for s, r in zip(self.sizes, self.repeats)]
        if self.mode == "size":
            return full
        p = dataset_weights(self.sizes, self.repeats, self.mode, self.explicit, self.temperature)
        rng = rng or np.random.default_rng(self.seed)
        return list(rng.multinomial(sum(full), p))

    def __iter__(self) -> Iterator[list[int]]:
        if self.state is not None:
            self.state.epoch = self.epoch
        rng = np.random.default_rng([self.seed, self.epoch])
        steps = self.steps_per_dataset(rng)
        offsets = np.cumsum([0] + self.sizes)
        streams = []
        for d, n_steps in enumerate(steps):
            need = n_steps * self.step_rows
            perms = [rng.permutation(self.sizes[d]) for _ in range(-(-need // max(self.sizes[d], 1)))]
            streams.append(iter((np.concatenate(perms) if perms else np.empty(0, int))[:need] + offsets[d]))
        order = rng.permutation(np.repeat(np.arange(len(steps)), steps))
        for d in order:
            rows = [int(next(streams[d])) for _ in range(self.step_rows)]
            for r in range(self.world_size):
                yield rows[r * self.batch_size:(r + 1) * self.batch_size]

    def __len__(self) -> int:
        return sum(self.steps_per_dataset()) * self.world_size


@dataclass
class EpochState:
    """Shared between sampler and collator so negatives are resampled each epoch."""

    epoch: int = 0


@dataclass
class TaskSpec:
    """How the collator builds one dataset's batches.

    Prompts: ``query_prompt`` prefixes retrieval queries, both texts of an STS/pair row and classification
    texts; ``passage_prompt`` prefixes retrieval passages (positives, negatives) and label texts.
    """

    task_type: str
    neg_num: int = 0
    query_prompt: str = ""
    passage_prompt: str = ""


@dataclass
class PiccoloCollator:
    """Turns rows of one dataset into the batch layout :class:`piccolo_lib.losses.PiccoloLoss` expects.

    Negatives and list-valued ``text_pos`` are sampled with an RNG keyed by (seed, epoch, row), so
    the same seed gives the same batches, whatever the rank or a resume point.
    """

    preprocess_fn: Callable
    specs: dict[str, TaskSpec]
    seed: int = 0
    query_max_len: int = 64
    passage_max_len: int = 128
    state: EpochState = field(default_factory=EpochState)
    valid_label_columns: list[str] = field(default_factory=lambda: ["label"])
    _warned: set = field(default_factory=set)
    # (dataset, row index) -> negatives replacing the row's text_neg (piccolo_lib.refresh, during training)
    negative_overrides: dict = field(default_factory=dict)
    batches_built: int = 0  # batches collated by this process (refresh dates its lists by it)

    def _tok(self, texts: list[str], max_len: int, prompt: str = "") -> dict[str, torch.Tensor]:
        return self.preprocess_fn([prompt + t for t in texts], max_length=max_len)

    def _rng(self, row: dict) -> random.Random:
        return random.Random(f"{self.seed}/{self.state.epoch}/{row['_row']}")

    def _negatives(self, name: str, rows: list[dict], k: int) -> list[list[str]]:
        out = []
        for row in rows:
            negs = self.negative_overrides.get((name, row["_row"]), row["text_neg"])
            pool = [n for n in negs if n != row["_pos"]]
            if len(pool) < k and (name, "few") not in self._warned:
                self._warned.add((name, "few"))
                warnings.warn(f"dataset {name!r}: a row has {len(pool)} negatives < neg_num={k}; "
                              "sampling with replacement", stacklevel=2)
            rng = self._rng(row)
            out.append(rng.sample(pool, k) if len(pool) >= k else [rng.choice(pool) for _ in range(k)])
        return out

    def _label_negatives(self, rows: list[dict], k: int) -> list[list[str]]:
        """min(k, available) distinct label negatives per row (the reference's rule): a binary sentiment
        set has one negative label, and trains with the report's cls_neg_num=10 on that one."""
        out = []
        for row in rows:
            pool = sorted({n for n in row["text_neg"] if n != row["_pos"]})
            out.append(self._rng(row).sample(pool, min(k, len(pool))))
        return out

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor | str]:
        self.batches_built += 1
        name = rows[0]["dataset_name"]
        spec = self.specs[name]
        for row in rows:
            pos = row.get("text_pos")
            row["_pos"] = self._rng(row).choice(pos) if isinstance(pos, list) else pos
        batch: dict[str, torch.Tensor | str] = {"dataset_name": name}

        def put(prefix: str, tokens: dict[str, torch.Tensor]) -> None:
            batch.update({f"{prefix}_{k}": v for k, v in tokens.items()})

        texts = [r["text"] for r in rows]
        if spec.task_type == "cosent":  # symmetric: both sides are "queries" (the reference prefixes both)
            put("text", self._tok(texts, self.query_max_len, spec.query_prompt))
            put("text_pair", self._tok([r["text_pair"] for r in rows], self.query_max_len, spec.query_prompt))
            batch["label"] = torch.tensor([float(r["label"]) for r in rows])
        elif spec.task_type == "retri_contrast":
            positives = [r["_pos"] for r in rows]
            put("query", self._tok(texts, self.query_max_len, spec.query_prompt))
            put("positive", self._tok(positives, self.passage_max_len, spec.passage_prompt))
            negs = self._negatives(name, rows, spec.neg_num) if spec.neg_num else [[] for _ in rows]
            if spec.neg_num:
                flat = [n for ns in negs for n in ns]
                put("negative", self._tok(flat, self.passage_max_len, spec.passage_prompt))
            batch["label"] = torch.tensor([[text_id(p)] + [text_id(n) for n in ns] for p, ns in zip(positives, negs)])
        else:  # cls_contrast: encode each distinct label text once, index into it
            negs = self._label_negatives(rows, spec.neg_num)
            distinct = sorted({r["_pos"] for r in rows} | {n for ns in negs for n in ns})
            index = {t: i for i, t in enumerate(distinct)}
            put("text", self._tok(texts, self.query_max_len, spec.query_prompt))  # the text is the query,
            put("labels", self._tok(distinct, self.query_max_len, spec.passage_prompt))  # its labels the candidates
            width = max(len(ns) for ns in negs)  # a row with fewer label negatives is padded with -1 (masked)
            batch["label"] = torch.tensor([[index[r["_pos"]]] + [index[n] for n in ns] + [-1] * (width - len(ns))
                                           for r, ns in zip(rows, negs)])
        return batch
