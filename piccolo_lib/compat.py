"""Every private API of our dependencies that piccolo_lib touches, in one list, checked by one test.

Overriding a private method is sometimes the narrowest way to get a behaviour (atomic checkpoints, atomic
result files, reproducible clustering resamples); the price is that a minor release may rename or reshape
it. The reference Piccolo2 code broke exactly so when transformers started passing ``num_items_in_batch``
to losses. So each touch lives in one module, is listed here with the signature it relies on, and
``tests/test_compat.py`` fails loudly, naming the module to fix, when an installed version differs.
``pyproject.toml`` caps these packages at the tested minor release.

Introduced in docs/architecture.md.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass


@dataclass(frozen=True)
class PrivateTouch:
    """``owner.attribute`` (importable path) with the parameter names we rely on, and where we use it."""

    owner: str  # "package.module:Class"
    attribute: str
    parameters: tuple[str, ...] | None  # None: an attribute, not a callable
    used_in: str
    why: str


TOUCHES = (
    PrivateTouch("transformers:Trainer", "_save_checkpoint", ("self", "model", "trial"), "piccolo_lib/train/checkpoints.py",
                 "write checkpoint-N under a temporary name and rename it into place (atomic checkpoints)"),
    PrivateTouch("transformers:Trainer", "_get_output_dir", ("self", "trial"), "piccolo_lib/train/checkpoints.py",
                 "redirect the checkpoint folder to tmp-checkpoint-N while it is written"),
    PrivateTouch("transformers.trainer_utils:rotate_checkpoints", "__call__", None, "piccolo_lib/train/checkpoints.py",
                 "the Trainer's save_total_limit rotation, re-run after the rename"),
    PrivateTouch("mteb.cache:ResultCache", "save_to_cache", ("self", "task_result", "model_name", "model_revision"),
                 "piccolo_lib/evaluate/run.py", "write each result file through a temp file + os.replace"),
    PrivateTouch("mteb.abstasks:AbsTaskClustering", "_evaluate_subset", ("self", "model", "data_split"),
                 "piccolo_lib/evaluate/local.py", "reseed the clustering resamples on every run"),
    PrivateTouch("mteb.abstasks:AbsTask", "_eval_splits", None, "piccolo_lib/evaluate/run.py, piccolo_lib/evaluate/mirror.py",
                 "a zero-shot or mirrored twin of a task keeps the original's splits"),
    PrivateTouch("sentence_transformers.base.trainer:BaseTrainer", "collect_features", ("self", "inputs"),
                 "benchmarks/recipes.py", "split a collated batch into features and labels as the Trainer does"),
)


@dataclass(frozen=True)
class Behaviour:
    """Something our code relies on a dependency doing (or not doing), checked by running it, not by a signature."""

    name: str
    relied_on_by: str
    what: str
    test: str  # the test that runs it


BEHAVIOURS = (
    Behaviour("ddp-broadcast-buffers", "piccolo_lib/train/loop.py (training_arguments), piccolo_lib/model/packing.py, "
              "piccolo_lib/train/adapter.py",
              "under DDP the ranks of one step run different numbers of encoder calls (packed chunks and GradCache "
              "mini-batches follow each rank's own text lengths); torch's DDP allows that only with broadcast_buffers "
              "off, which training_arguments sets (sentence-transformers' default too)",
              "tests/test_compat.py::test_ranks_may_run_different_numbers_of_forwards_because_buffers_are_not_broadcast"),
)


def _resolve(path: str):
    module, _, name = path.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, name) if name else obj


def check(touches: tuple[PrivateTouch, ...] = TOUCHES) -> list[str]:
    """One line per touch whose attribute is gone or whose leading parameters changed (empty: all fine)."""
    problems = []
    for t in touches:
        where = f"{t.owner.replace(':', '.')}.{t.attribute}"
        try:
            owner = _resolve(t.owner)
        except (ImportError, AttributeError) as e:
            problems.append(f"{where}: cannot import {t.owner} ({e}); fix {t.used_in}")
            continue
        if t.attribute == "__call__":
            target = owner
        elif not hasattr(owner, t.attribute):
            problems.append(f"{where} is gone; fix {t.used_in} ({t.why})")
            continue
        else:
            target = getattr(owner, t.attribute)
        if t.parameters is None:
            continue
        have = tuple(inspect.signature(target).parameters)[:len(t.parameters)]
        if have != t.parameters:
            problems.append(f"{where} takes {have}, piccolo_lib relies on {t.parameters}; fix {t.used_in} ({t.why})")
    return problems
