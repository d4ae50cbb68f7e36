"""C-MTEB with mteb 2.26: the benchmarks, their reporting conventions, and one call to evaluate a model.

Benchmarks (``piccolo eval/report --benchmark``):

- ``cmteb``: mteb's ``MTEB(cmn, v1)``, 31 tasks, each scored by its mteb ``main_score`` on the splits
  the benchmark names (mean over them, as mteb's leaderboard does: MultilingualSentiment runs
  validation and test).
- ``cmteb-legacy``: the 35-task C-MTEB leaderboard that the Piccolo2 report's 70.95 averages: the 31
  plus AmazonReviewsClassification (zh), MassiveIntentClassification (zh-CN), MassiveScenarioClassification
  (zh-CN) and STS22 (zh), one split per task, and the old leaderboard's metrics: cosine AP for pair
  classification (not mteb 2's max_accuracy), MAP for reranking, cosine Spearman for STS, and task
  scores rounded to 2 decimals before averaging. These conventions reproduce the report's table
  (74.59 / 62.17 / 90.24 / 70.00 / 74.36 / 63.50, average 70.95) from the public result files of
  ``sensenova/piccolo-large-zh-v2`` (embeddings-benchmark/results, ``results/<model>/external``).
- ``local``: the six tasks of :mod:`piccolo_lib.local_benchmark`.

The data come from the hub or from an offline mirror (:mod:`piccolo_lib.mirror`).

Introduced in notebooks/06_cmteb_eval.ipynb.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mteb

from .mirror import _hub_host, _nested, mirror_tasks

logger = logging.getLogger(__name__)

CMTEB = "MTEB(cmn, v1)"
BENCHMARKS = ("local", "cmteb", "cmteb-legacy")
LEGACY_EXTRAS = {"AmazonReviewsClassification": "zh", "MassiveIntentClassification": "zh-CN",
                 "MassiveScenarioClassification": "zh-CN", "STS22": "zh"}  # task -> Chinese subset
# The legacy leaderboard's files hold one split per task; mteb 2 runs MultilingualSentiment on two.
LEGACY_SPLITS = {"MultilingualSentiment": ["validation"], **{t: ["test"] for t in LEGACY_EXTRAS}}
LEGACY_METRICS = {"Classification": "accuracy", "Clustering": "v_measure", "PairClassification": "cosine_ap",
                  "Reranking": "map_at_1000", "Retrieval": "ndcg_at_10", "STS": "cosine_spearman"}
# Piccolo2 (sensenova/piccolo-large-zh-v2) in the report's C-MTEB table: category means and the 35-task average.
# The legacy conventions below recompute exactly these from the model's public per-task result files.
REPORT_TABLE = {"Classification": 74.59, "Clustering": 62.17, "PairClassification": 90.24, "Reranking": 70.00,
                "Retrieval": 74.36, "STS": 63.50, "Average": 70.95}
# Older result files name some metrics differently (mteb < 1.11 and the legacy C-MTEB files).
METRIC_ALIASES = {"cosine_ap": ("cosine_ap", "cos_sim_ap"), "cosine_spearman": ("cosine_spearman", "cos_sim_spearman"),
                  "map_at_1000": ("map_at_1000", "map")}


@dataclass(frozen=True)
class TaskSpec:
    """How a benchmark scores one task: category, splits (mean over them), subsets and metric."""

    name: str
    category: str
    splits: tuple[str, ...]
    subsets: tuple[str, ...]
    metric: str

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return METRIC_ALIASES.get(self.metric, (self.metric,))


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    title: str
    tasks: tuple[TaskSpec, ...]
    round_tasks: int | None = None  # round each task's percent score before averaging (legacy leaderboard)


def benchmark_tasks(name: str, names: list[str] | None = None) -> list:
    """Fresh mteb task objects of a benchmark (``cmteb`` or ``cmteb-legacy``), optionally a subset.

    Each call builds new task instances (``mteb.get_task`` with the benchmark's splits and subsets), so
    callers may wrap or mutate them without touching mteb's shared benchmark objects.
    """
    if name not in ("cmteb", "cmteb-legacy"):
        raise ValueError(f"benchmark_tasks builds 'cmteb' or 'cmteb-legacy' (local: local_tasks); got {name!r}")
    wanted = [(t.metadata.name, list(t.eval_splits), None) for t in mteb.get_benchmark(CMTEB).tasks]
    if name == "cmteb-legacy":
        wanted = [(n, LEGACY_SPLITS.get(n, splits), None) for n, splits, _ in wanted]
        wanted += [(n, LEGACY_SPLITS[n], [subset]) for n, subset in LEGACY_EXTRAS.items()]
    if names:
        known = {n for n, _, _ in wanted}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{unknown} not in benchmark {name!r}; its tasks: {sorted(known)}")
        wanted = [w for w in wanted if w[0] in names]
    return [mteb.get_task(n, eval_splits=splits, hf_subsets=subsets) for n, splits, subsets in wanted]


def benchmark_spec(name: str, tasks: list[str] | None = None) -> BenchmarkSpec:
    """The tasks and metric conventions ``piccolo report`` applies for a benchmark (or some of its tasks)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {BENCHMARKS}")
    spec = _benchmark_spec(name)
    if not tasks:
        return spec
    unknown = sorted(set(tasks) - {t.name for t in spec.tasks})
    if unknown:
        raise ValueError(f"{unknown} not in benchmark {name!r}; its tasks: {[t.name for t in spec.tasks]}")
    kept = tuple(t for t in spec.tasks if t.name in tasks)
    return replace(spec, tasks=kept, title=f"{spec.title}: {len(kept)} of its tasks")


def _benchmark_spec(name: str) -> BenchmarkSpec:
    if name == "local":
        from .local_benchmark import local_main_scores

        types = {f"PiccoloLocal{c}": c for c in LEGACY_METRICS}
        tasks = tuple(TaskSpec(n, types[n], ("test",), ("default",), metric)
                      for n, metric in local_main_scores().items())
        return BenchmarkSpec(name, "local benchmark (data_samples/eval, 6 tasks)", tasks)
    legacy = name == "cmteb-legacy"
    tasks = tuple(TaskSpec(t.metadata.name, t.metadata.type, tuple(t.eval_splits), tuple(t.hf_subsets),
                           LEGACY_METRICS[t.metadata.type] if legacy else t.metadata.main_score)
                  for t in benchmark_tasks(name))
    title = ("legacy C-MTEB leaderboard (35 tasks, the Piccolo2 report's table)" if legacy
             else f"mteb {CMTEB} (31 tasks)")
    return BenchmarkSpec(name, title, tasks, round_tasks=2 if legacy else None)


# ---------------------------------------------------------------- one call for `piccolo eval`


def _with_zero_shot(tasks: list, required: bool) -> list:
    """``tasks`` plus a zero-shot twin of each classification task whose labels have names."""
    from .evaluation import label_names, zero_shot_task

    twins = []
    for task in (t for t in tasks if t.metadata.type == "Classification"):
        task.load_data()  # label names live in the data
        nested = _nested(task.dataset)
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
            offline mirror written by :func:`download` (without it, data come from the hub).
        zero_shot: Add zero-shot classification by label retrieval (default: on for ``local``).

    Returns:
        One ``evaluate_model`` summary per dim (full first).
    """
    from .evaluation import evaluate_model
    from .runtime import hub_reachable

    if benchmark == "local":
        from .backbones import DATA_SAMPLES
        from .local_benchmark import local_tasks

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
        elif not hub_reachable(_hub_host()):
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
