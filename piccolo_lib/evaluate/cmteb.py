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

Introduced in notebooks/07_cmteb_eval.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import mteb

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
# Piccolo2 (sensenova/piccolo-large-zh-v2) per task, as its public result files store it: task -> (split,
# subset, {metric: value}). Source: embeddings-benchmark/results, results/sensenova__piccolo-large-zh-v2/external.
# Some files hold fractions, some percents; pair classification carries accuracy and AP, reranking the old
# `map` key. The cmteb-legacy conventions turn exactly these into REPORT_TABLE (notebooks/12_appendix_reference).
PICCOLO2_PUBLIC_SCORES = {
    "TNews": ("validation", "default", {"accuracy": 0.54521}),
    "IFlyTek": ("validation", "default", {"accuracy": 52.104655636783384}),
    "Waimai": ("test", "default", {"accuracy": 89.59}),
    "OnlineShopping": ("test", "default", {"accuracy": 94.62}),
    "JDReview": ("test", "default", {"accuracy": 88.57410881801127}),
    "MultilingualSentiment": ("validation", "default", {"accuracy": 79.08666666666666}),
    "AmazonReviewsClassification": ("test", "zh", {"accuracy": 49.44}),
    "MassiveIntentClassification": ("test", "zh-CN", {"accuracy": 77.71015467383997}),
    "MassiveScenarioClassification": ("test", "zh-CN", {"accuracy": 85.63214525891055}),
    "CLSClusteringP2P": ("test", "default", {"v_measure": 57.92713421071616}),
    "CLSClusteringS2S": ("test", "default", {"v_measure": 0.48096546680932234}),
    "ThuNewsClusteringP2P": ("test", "default", {"v_measure": 0.742003249023509}),
    "ThuNewsClusteringS2S": ("test", "default", {"v_measure": 68.4277378629746}),
    "Cmnli": ("validation", "default", {"max_accuracy": 86.08538785327721, "cos_sim_ap": 92.64373114205229}),
    "Ocnli": ("validation", "default", {"max_accuracy": 84.35300487276665, "cos_sim_ap": 87.83572265803564}),
    "T2Reranking": ("dev", "default", {"map": 0.6714759526113295}),
    "MMarcoReranking": ("dev", "default", {"map": 33.386980266936106}),
    "CMedQAv1-reranking": ("test", "default", {"map": 0.8931003741715936}),
    "CMedQAv2-reranking": ("test", "default", {"map": 0.9013769781784876}),
    "T2Retrieval": ("dev", "default", {"ndcg_at_10": 0.86136}),
    "MMarcoRetrieval": ("dev", "default", {"ndcg_at_10": 79.543}),
    "DuRetrieval": ("dev", "default", {"ndcg_at_10": 89.136}),
    "CovidRetrieval": ("dev", "default", {"ndcg_at_10": 86.777}),
    "CmedqaRetrieval": ("dev", "default", {"ndcg_at_10": 47.584}),
    "EcomRetrieval": ("dev", "default", {"ndcg_at_10": 67.755}),
    "MedicalRetrieval": ("dev", "default", {"ndcg_at_10": 0.64878}),
    "VideoRetrieval": ("dev", "default", {"ndcg_at_10": 73.099}),
    "AFQMC": ("validation", "default", {"cos_sim_spearman": 61.49271876861677}),
    "ATEC": ("test", "default", {"cos_sim_spearman": 59.19831457688953}),
    "BQ": ("test", "default", {"cos_sim_spearman": 72.87565357908989}),
    "LCQMC": ("test", "default", {"cos_sim_spearman": 79.5459672237356}),
    "PAWSX": ("test", "default", {"cos_sim_spearman": 46.48035295363829}),
    "QBQTC": ("test", "default", {"cos_sim_spearman": 45.906917552219156}),
    "STS22": ("test", "zh", {"cos_sim_spearman": 63.76187490245927}),
    "STSB": ("test", "default", {"cos_sim_spearman": 78.71478656159289}),
}
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
        from .local import local_main_scores

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
