"""Run a named benchmark (``local``, ``cmteb``, ``cmteb-legacy``) on a model: one call for ``piccolo eval``.

The runner layer above the task definitions: it picks the tasks (:mod:`piccolo_lib.local_benchmark`,
:mod:`piccolo_lib.cmteb`, an offline :mod:`piccolo_lib.mirror`), adds zero-shot twins of classification
tasks, and scores them with :func:`piccolo_lib.evaluation.evaluate_model` at every Matryoshka dim.
Moved out of ``cmteb`` so that task definitions never import the runner (docs/architecture.md).

Introduced in notebooks/07_cmteb_eval.ipynb.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .cmteb import BENCHMARKS, benchmark_tasks
from .run import evaluate_model, label_names, zero_shot_task
from .local import local_tasks
from .mirror import hub_host, mirror_tasks, nested_splits
from ..paths import DATA_SAMPLES
from ..runtime import hub_reachable

logger = logging.getLogger(__name__)

def _with_zero_shot(tasks: list, required: bool) -> list:
    """``tasks`` plus a zero-shot twin of each classification task whose labels have names."""
    twins = []
    for task in (t for t in tasks if t.metadata.type == "Classification"):
        task.load_data()  # label names live in the data
        nested = nested_splits(task.dataset)
        split = nested[task.hf_subsets[0]][task.eval_splits[0]]
        if label_names(split, task.label_column_name) is not None:
            twins.append(zero_shot_task(task))
        elif required:
            logger.warning("%s: labels are integers without names, no zero-shot classification", task.metadata.name)
    return tasks + twins


def evaluate_benchmark(model: Any, benchmark: str, output_dir: str | Path, *, name: str,
                       tasks: list[str] | None = None, dims: list[int] | None = None,
                       data_dir: str | Path | None = None, zero_shot: bool | None = None,
                       batch_size: int = 64, show_progress: bool = True) -> list[dict]:
    """Evaluate a model on a benchmark at its full size and at each of ``dims``; cached and resumable.

    Args:
        model: A SentenceTransformer (its prompts apply: see ``evaluation.evaluate_model``).
        benchmark: ``local``, ``cmteb`` or ``cmteb-legacy``.
        output_dir: mteb result cache (``piccolo report output_dir`` reads it).
        name: The model's name in the cache (``org/name`` as on the hub, or a plain name).
        tasks: Only these tasks of the benchmark.
        dims: Matryoshka dims to evaluate besides the full embedding.
        data_dir: ``local``: folder of the jsonl eval files (default data_samples/eval); C-MTEB: an
            offline mirror written by :func:`piccolo_lib.mirror.download` (without it, data come from the hub).
        zero_shot: Add zero-shot classification by label retrieval (default: on for ``local``).

    Returns:
        One ``evaluate_model`` summary per dim (full first).
    """
    if benchmark == "local":
        task_list = local_tasks(Path(data_dir) if data_dir else DATA_SAMPLES / "eval")
        if tasks:
            unknown = sorted(set(tasks) - {t.metadata.name for t in task_list})
            if unknown:
                raise ValueError(f"{unknown} not in the local benchmark: {[t.metadata.name for t in task_list]}")
            task_list = [t for t in task_list if t.metadata.name in tasks]
    elif benchmark in ("cmteb", "cmteb-legacy"):
        task_list = benchmark_tasks(benchmark, tasks)
        if data_dir:
            task_list = mirror_tasks(task_list, data_dir)
        elif not hub_reachable(hub_host()):
            raise ConnectionError(
                f"C-MTEB data come from the Hugging Face hub, which cannot be reached from here (or offline mode "
                f"is on). Evaluate from an offline mirror: `piccolo cmteb download --to DIR --benchmark {benchmark}` "
                "on a machine with internet, then `piccolo eval MODEL --benchmark ... --data-dir DIR`.")
    else:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")
    if zero_shot or (zero_shot is None and benchmark == "local"):
        task_list = _with_zero_shot(task_list, required=bool(zero_shot))
    return [evaluate_model(model, task_list, output_dir, model_name=name, truncate_dim=d, batch_size=batch_size,
                           show_progress=show_progress) for d in [None, *(dims or [])]]
