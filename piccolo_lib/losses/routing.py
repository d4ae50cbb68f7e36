"""The routing table: record type -> loss and its defaults (report, 'Training data and settings'), and friendly aliases.

Introduced in notebooks/02_three_losses.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ..errors import ConfigError
from .functions import cls_contrast, cosent, retrieval_infonce


TASK_LOSSES: dict[str, Callable[..., Tensor]] = {
    "retri_contrast": retrieval_infonce,
    "cosent": cosent,
    "cls_contrast": cls_contrast,
}
DEFAULT_HPARAMS: dict[str, dict[str, float]] = {  # report, 'Training data and settings'
    "retri_contrast": {"temperature": 0.01, "weight": 1.0},
    "cosent": {"temperature": 0.05, "weight": 0.04},
    "cls_contrast": {"temperature": 0.05, "weight": 0.2},
}
ALIASES = {
    "retrieval": "retri_contrast", "reranking": "retri_contrast",
    "sts": "cosent", "pair_classification": "cosent",
    "classification": "cls_contrast", "clustering": "cls_contrast",
}


def canonical_type(task_type: str) -> str:
    """Map a record type or friendly alias to one of ``TASK_LOSSES``; unknown types are an error."""
    name = ALIASES.get(task_type, task_type)
    if name not in TASK_LOSSES:
        valid = sorted(TASK_LOSSES) + sorted(ALIASES)
        raise ConfigError(f"unknown task type {task_type!r}; expected one of {valid}")
    return name
