"""An offline mirror of C-MTEB's data: ``piccolo cmteb download`` writes it, ``piccolo eval --data-dir`` reads it.

Compute nodes of a cluster often have no internet. The mirror holds the data of each task as mteb holds it
after ``load_data`` (downloaded and transformed, mteb 2.26), one folder per task:
``DIR/<task>/<subset>/<split>/`` holding a ``datasets.save_to_disk`` folder, or for retrieval tasks
``corpus/``, ``queries/``, ``relevant_docs.json`` and ``top_ranked.json`` (mteb 2's retrieval split), plus
``DIR/<task>/mirror.json`` (revision, source, mteb version, subsets and splits) and ``DIR/manifest.json``
listing the tasks. Mirrored tasks (:func:`mirror_tasks`) load from there and never touch the network.

Saving the loaded data, rather than the hub repositories, works for every task whatever its own loading
code (C-MTEB's retrieval sets span several repositories, some tasks transform or subsample after loading),
and the loaded data are exactly what the evaluators see.

Introduced in notebooks/12_appendix_reference.ipynb (section 4); `piccolo eval --data-dir` in
notebooks/07_cmteb_eval.ipynb.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import datasets
import mteb
from datasets import Dataset, DatasetDict

from ..io import atomic_path, atomic_write

logger = logging.getLogger(__name__)
MIRROR_FORMAT = 1


def nested_splits(dataset: Any) -> dict[str, dict[str, Any]]:
    """``task.dataset`` as {subset: {split: data}} (monolingual tasks may hold {split: Dataset})."""
    first = next(iter(dataset.values()))
    return {"default": dict(dataset)} if isinstance(first, Dataset) else {k: dict(v) for k, v in dataset.items()}


def write_mirror_task(root: str | Path, task_name: str, dataset: dict, *, revision: str, source: str) -> Path:
    """Write one task's data ({subset: {split: Dataset or retrieval dict}}) into the mirror layout.

    The task folder is assembled under a temporary name and renamed into place when complete, so an
    interrupted download leaves no half-written task behind.
    """
    root = Path(root)
    final = root / task_name
    layout: dict[str, list[str]] = {}
    with atomic_path(final) as tmp:  # a temp folder beside it, renamed into place when complete
        for subset, splits in nested_splits(dataset).items():
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
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    manifest.setdefault("format", MIRROR_FORMAT)
    keep = ("revision", "source", "mteb_version", "subsets")
    manifest.setdefault("tasks", {})[task_name] = {k: info[k] for k in keep}
    atomic_write(manifest_path, json.dumps(manifest, indent=2, sort_keys=True))
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


def hub_host() -> str:
    return urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"


def download(root: str | Path, tasks: list, force: bool = False) -> list[Path]:
    """Mirror the data of ``tasks`` (``benchmark_tasks(...)``) into ``root``; skips tasks already there.

    Raises:
        ConnectionError: The hub (``HF_ENDPOINT`` or huggingface.co) is unreachable or offline mode is on.
    """
    from ..runtime import hub_reachable

    host = hub_host()
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
    from ..model.backbones import DATA_SAMPLES
    from .local import local_tasks

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
