"""Task-homogeneous, rank-aligned batching (the collator that builds each task's batch is in :mod:`piccolo_lib.tasks`).

Why hand-written: sentence-transformers' multi-dataset samplers emit one global sequence of
batches, and accelerate deals consecutive batches to different ranks, so under DDP two ranks can
run different losses at the same step (a rank gathering retrieval negatives while another runs
CoSENT deadlocks). :class:`TaskHomogeneousBatchSampler` emits batches in groups of
``world_size``, all from one dataset, with disjoint rows: rank r takes the r-th batch of each group
(accelerate's dealing), so every rank runs the same loss at every step.

Introduced in notebooks/01_data_formats.ipynb.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from sentence_transformers.base.sampler import MultiDatasetDefaultBatchSampler
from torch.utils.data import ConcatDataset

from ..errors import ConfigError
from ..tasks.batch import EpochState, PiccoloCollator, TaskSpec  # noqa: F401  (re-exported: their old home)
from ..text import text_id  # noqa: F401  (re-exported: its old home)


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
    a fresh permutation of the dataset (and again for each repeat). Within a step the W batches never
    share a row, also where one permutation ends and the next begins: a row already in the step waits
    for the next step (:func:`distinct_steps`; a spare permutation keeps the last step full). Only a dataset with fewer rows than one step can repeat
    a row within a step (``train`` warns about those). The order of steps is shuffled with ``seed + epoch``.
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
            if len(perms) > 1:  # a step can straddle two permutations: one more as slack, from its own generator
                perms.append(np.random.default_rng([self.seed, self.epoch, d]).permutation(self.sizes[d]))
            rows = (np.concatenate(perms) if perms else np.empty(0, int)) + offsets[d]
            streams.append(iter(distinct_steps(rows.tolist(), self.step_rows)[:n_steps]))
        order = rng.permutation(np.repeat(np.arange(len(steps)), steps))
        for d in order:
            rows = next(streams[d])
            for r in range(self.world_size):
                yield rows[r * self.batch_size:(r + 1) * self.batch_size]

    def __len__(self) -> int:
        return sum(self.steps_per_dataset()) * self.world_size


def distinct_steps(stream: Sequence[int], step_rows: int) -> list[list[int]]:
    """Cut a stream of rows into steps of ``step_rows`` rows with no row twice in a step.

    Rows are taken in stream order; a row already in the current step is held back and goes first into the next
    one, so every row keeps its place in the epoch's count. Only when the rows left cannot fill a step without a
    repeat (fewer distinct rows than one step) does a step repeat a row.

    Example:
        >>> distinct_steps([0, 1, 2, 2, 0, 1], 3)
        [[0, 1, 2], [2, 0, 1]]
        >>> distinct_steps([0, 1, 1, 0, 2, 3], 2)
        [[0, 1], [1, 0], [2, 3]]
    """
    pending, steps = deque(stream), []
    while pending:
        taken, seen, held = [], set(), []
        while pending and len(taken) < step_rows:
            row = pending.popleft()
            (held if row in seen else taken).append(row)
            seen.add(row)
        while held and len(taken) < step_rows:  # too few distinct rows left: repeat rather than drop
            taken.append(held.pop(0))
        pending.extendleft(reversed(held))
        steps.append(taken)
    return steps
