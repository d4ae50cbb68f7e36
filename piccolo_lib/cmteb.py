"""C-MTEB with mteb 2.26: the benchmarks, their reporting conventions, and an offline mirror of the data.

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

Offline mirror (``piccolo cmteb download`` / ``piccolo eval --data-dir``): the data of each task as mteb
holds it after ``load_data`` (downloaded and transformed), one folder per task:
``DIR/<task>/<subset>/<split>/`` holding a ``datasets.save_to_disk`` folder, or for retrieval tasks
``corpus/``, ``queries/``, ``relevant_docs.json`` and ``top_ranked.json``, plus ``DIR/<task>/mirror.json``
(revision, source, mteb version, subsets and splits) and ``DIR/manifest.json`` listing the tasks.
Mirrored tasks load from there and never touch the network.

Introduced in notebooks/06_cmteb_eval.ipynb.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import datasets
import mteb
from datasets import Dataset, DatasetDict

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
MIRROR_FORMAT = 1


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


# ---------------------------------------------------------------- offline mirror


def _nested(dataset: Any) -> dict[str, dict[str, Any]]:
    """``task.dataset`` as {subset: {split: data}} (monolingual tasks may hold {split: Dataset})."""
    first = next(iter(dataset.values()))
    return {"default": dict(dataset)} if isinstance(first, Dataset) else {k: dict(v) for k, v in dataset.items()}


def write_mirror_task(root: str | Path, task_name: str, dataset: dict, *, revision: str, source: str) -> Path:
    """Write one task's data ({subset: {split: Dataset or retrieval dict}}) into the mirror layout.

    The task folder is assembled under a temporary name and renamed into place when complete, so an
    interrupted download leaves no half-written task behind.
    """
    root = Path(root)
    final, tmp = root / task_name, root / f".{task_name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    layout: dict[str, list[str]] = {}
    for subset, splits in _nested(dataset).items():
        for split, data in splits.items():
            folder = tmp / subset / split
            if isinstance(data, Dataset):
                data.save_to_disk(str(folder))
            else:  # mteb 2 retrieval split: corpus, queries, relevant_docs, top_ranked
                folder.mkdir(parents=True)
                data["corpus"].save_to_disk(str(folder / "corpus"))
                data["queries"].save_to_disk(str(folder / "queries"))
                (folder / "relevant_docs.json").write_text(json.dumps(data["relevant_docs"]), encoding="utf-8")
                if data.get("top_ranked") is not None:
                    (folder / "top_ranked.json").write_text(json.dumps(data["top_ranked"]), encoding="utf-8")
            layout.setdefault(subset, []).append(split)
    info = {"format": MIRROR_FORMAT, "task": task_name, "revision": revision, "source": source,
            "mteb_version": mteb.__version__, "subsets": layout,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    (tmp / "mirror.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    manifest.setdefault("format", MIRROR_FORMAT)
    keep = ("revision", "source", "mteb_version", "subsets")
    manifest.setdefault("tasks", {})[task_name] = {k: info[k] for k in keep}
    tmp_manifest = root / ".manifest.json.tmp"
    tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp_manifest, manifest_path)
    return final


def mirror_info(root: str | Path, task_name: str) -> dict:
    """The ``mirror.json`` of a mirrored task; FileNotFoundError saying how to make it if absent."""
    path = Path(root) / task_name / "mirror.json"
    if not path.is_file():
        raise FileNotFoundError(f"no mirror of {task_name} in {root} ({path} missing): run "
                                f"`piccolo cmteb download --to {root} --tasks {task_name}` where the hub is reachable")
    info = json.loads(path.read_text(encoding="utf-8"))
    if info.get("format") != MIRROR_FORMAT:
        raise ValueError(f"{path}: mirror format {info.get('format')!r}, this piccolo_lib reads {MIRROR_FORMAT}")
    return info


def read_mirror_task(root: str | Path, task_name: str, subsets: list[str]) -> dict[str, dict[str, Any]]:
    """Load the given subsets (all their splits) of a mirrored task as {subset: {split: data}}."""
    info = mirror_info(root, task_name)
    out: dict[str, dict[str, Any]] = {}
    for subset in subsets:
        if subset not in info["subsets"]:
            raise FileNotFoundError(f"mirror of {task_name} in {root} lacks subset {subset!r} "
                                    f"(has {sorted(info['subsets'])})")
        splits: dict[str, Any] = {}
        for split in info["subsets"][subset]:
            folder = Path(root) / task_name / subset / split
            if (folder / "corpus").is_dir():
                top, qrels = folder / "top_ranked.json", folder / "relevant_docs.json"
                splits[split] = {"corpus": Dataset.load_from_disk(str(folder / "corpus")),
                                 "queries": Dataset.load_from_disk(str(folder / "queries")),
                                 "relevant_docs": json.loads(qrels.read_text(encoding="utf-8")),
                                 "top_ranked": json.loads(top.read_text(encoding="utf-8")) if top.is_file() else None}
            else:
                splits[split] = Dataset.load_from_disk(str(folder))
        retrieval = any(isinstance(v, dict) for v in splits.values())
        out[subset] = splits if retrieval else DatasetDict(splits)
    return out


class _MirrorLoad:
    """Mixin: ``load_data`` reads the task's mirror folder instead of the hub."""

    mirror_root: Path

    def load_data(self, *args: Any, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        self.dataset = read_mirror_task(self.mirror_root, self.metadata.name, list(self.hf_subsets))
        gaps = [f"{sub}/{split}" for sub in self.hf_subsets for split in self.eval_splits
                if split not in self.dataset[sub]]
        if gaps:
            raise FileNotFoundError(f"mirror of {self.metadata.name} in {self.mirror_root} lacks {gaps}")
        self.data_loaded = True


def mirror_tasks(tasks: list, root: str | Path) -> list:
    """The same tasks, loading their data from the mirror at ``root`` (no network).

    Each task keeps its name, splits and subsets; its dataset revision becomes the mirror's, so result
    files say which data they were computed on.
    """
    out = []
    for task in tasks:
        info = mirror_info(root, task.metadata.name)
        if info["revision"] != task.metadata.revision and info["source"].startswith("hf://"):
            logger.warning("mirror of %s holds revision %s, mteb pins %s: results are filed under %s",
                           task.metadata.name, info["revision"], task.metadata.revision, info["revision"])
        if info["mteb_version"] != mteb.__version__:
            logger.warning("mirror of %s was written by mteb %s (this is %s): the data are those of its "
                           "dataset_transform", task.metadata.name, info["mteb_version"], mteb.__version__)
        metadata = task.metadata.model_copy(update={"dataset": {**task.metadata.dataset, "revision": info["revision"]}})
        cls = type(type(task).__name__, (_MirrorLoad, type(task)),
                   {"metadata": metadata, "mirror_root": Path(root), "__module__": __name__})
        mirrored = cls()
        mirrored._eval_splits, mirrored.hf_subsets = list(task.eval_splits), list(task.hf_subsets)
        out.append(mirrored)
    return out


def _hub_host() -> str:
    return urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"


def download(root: str | Path, tasks: list, force: bool = False) -> list[Path]:
    """Mirror the data of ``tasks`` (``benchmark_tasks(...)``) into ``root``; skips tasks already there.

    Raises:
        ConnectionError: The hub (``HF_ENDPOINT`` or huggingface.co) is unreachable or offline mode is on.
    """
    from .runtime import hub_reachable

    host = _hub_host()
    if not hub_reachable(host):
        raise ConnectionError(
            f"piccolo cmteb download needs the Hugging Face hub, and {host}:443 cannot be reached from here "
            "(or HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set). Run it on a machine with internet (or set "
            f"HF_ENDPOINT to a mirror), copy {root} to this machine, then evaluate offline with "
            f"`piccolo eval MODEL --benchmark cmteb --data-dir {root}`.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for task in tasks:
        name = task.metadata.name
        try:
            info = mirror_info(root, name)
            have = info["revision"] == task.metadata.revision and all(
                split in info["subsets"].get(sub, []) for sub in task.hf_subsets for split in task.eval_splits)
        except FileNotFoundError:
            have = False
        if have and not force:
            logger.info("%s already mirrored at revision %s", name, task.metadata.revision)
            continue
        task.load_data()
        source = f"hf://datasets/{task.metadata.dataset['path']}@{task.metadata.revision}"
        written.append(write_mirror_task(root, name, task.dataset, revision=task.metadata.revision, source=source))
        task.unload_data()
    return written


def sample_mirror(root: str | Path, data_dir: str | Path | None = None) -> list[str]:
    """Write a tiny mirror of one real C-MTEB task per category, with data_samples as their data.

    Same layout and loader as a downloaded mirror, with the real mteb task classes (TNews,
    CLSClusteringS2S, Ocnli, T2Reranking, T2Retrieval, LCQMC) and their splits and column names. The
    data are the course's samples, not those datasets: the mirror tests the offline path and its
    ``source``/``revision`` say so. Returns the task names.
    """
    from .backbones import DATA_SAMPLES
    from .local_benchmark import local_tasks

    local = {t.metadata.type: t for t in local_tasks(Path(data_dir) if data_dir else DATA_SAMPLES / "eval")}
    for task in local.values():
        task.load_data()
    data = {c: t.dataset["default"] for c, t in local.items()}
    cls_task, pair_task = mteb.get_task("TNews"), mteb.get_task("Ocnli")
    rename_cls = {"text": cls_task.input_column_name, "label": cls_task.label_column_name}
    clusters = data["Clustering"]["test"]
    legacy_rows = Dataset.from_list([{"sentences": list(clusters["text"]), "labels": list(clusters["label"])}])
    content = {
        "TNews": {"train": data["Classification"]["train"].rename_columns(rename_cls),
                  "validation": data["Classification"]["test"].rename_columns(rename_cls)},
        "CLSClusteringS2S": {"test": legacy_rows},
        "Ocnli": {"validation": data["PairClassification"]["test"].rename_columns(
            {"label": pair_task.label_column_name})},
        "T2Reranking": {"dev": data["Reranking"]["test"]},
        "T2Retrieval": {"dev": data["Retrieval"]["test"]},
        "LCQMC": {"test": data["STS"]["test"]},
    }
    revisions = {"TNews": "Classification", "CLSClusteringS2S": "Clustering", "Ocnli": "PairClassification",
                 "T2Reranking": "Reranking", "T2Retrieval": "Retrieval", "LCQMC": "STS"}
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # a few hundred rows per split: no "Saving the dataset" bars
    try:
        for name, splits in content.items():
            revision = f"data_samples-{local[revisions[name]].metadata.revision}"
            write_mirror_task(root, name, {"default": splits}, revision=revision,
                              source="data_samples (course samples in this task's layout, not the real dataset)")
    finally:
        if bars:
            datasets.enable_progress_bars()
    return list(content)


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
