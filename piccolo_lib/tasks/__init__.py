"""The task families of Piccolo2, one module each, and the registry that routes a record type to its task.

=====================  ==========================  ==================================  ===========
record ``type``        task families               loss                                 defaults
=====================  ==========================  ==================================  ===========
``retri_contrast``     retrieval, reranking        InfoNCE, in-batch + hard negatives   tau=0.01
``cosent``             STS, pair classification    CoSENT ranking on graded scores      tau=0.05, w=0.04
``cls_contrast``       classification, clustering  label-text contrast, no in-batch     tau=0.05, w=0.2
=====================  ==========================  ==================================  ===========

``TASKS`` is the one place a record type is known: validation reads a task's ``columns`` and ``rules``, the
collator its ``collate``, the trainer adapter its ``loss`` and defaults. A fourth family is a new module here
with a :class:`~piccolo_lib.tasks.base.Task` subclass, and one line in ``TASKS``.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import Draw, LossOptions, Rule, Task  # noqa: F401
from .batch import EpochState, PiccoloCollator, TaskSpec, TextTable, tokenize_table  # noqa: F401
from .label_contrast import LabelContrast
from .pair_score import PairScore
from .retrieval import Retrieval

TASKS: dict[str, Task] = {t.name: t for t in (Retrieval(), PairScore(), LabelContrast())}
ALIASES: dict[str, str] = {alias: t.name for t in TASKS.values() for alias in t.aliases}
DEFAULT_HPARAMS: dict[str, dict[str, float]] = {  # report, 'Training data and settings'
    name: {"temperature": t.temperature, "weight": t.weight} for name, t in TASKS.items()}
TASK_LOSSES = {name: type(t).loss_fn for name, t in TASKS.items()}  # record type -> its pure loss


def canonical_type(task_type: str) -> str:
    """Map a record type or alias (``sts``, ``retrieval``, ...) to a key of ``TASKS``; unknown types are an error."""
    name = ALIASES.get(task_type, task_type)
    if name not in TASKS:
        valid = sorted(TASKS) + sorted(ALIASES)
        raise ConfigError(f"unknown task type {task_type!r}; expected one of {valid}")
    return name


def get_task(task_type: str) -> Task:
    """The :class:`~piccolo_lib.tasks.base.Task` of a record type or alias."""
    return TASKS[canonical_type(task_type)]
